package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// TestAPIKeysAndAuthenticate covers API keys and collector tokens from creation to the
// Authenticate RPC the gateway and the services call: valid, rotated, revoked, malformed,
// checksum-failing, of a disabled owner, of a demoted owner, and collector site binding.
func TestAPIKeysAndAuthenticate(t *testing.T) {
	m := startAuth(t, map[string]string{"HASHINSIGHT_ENV": "test"})
	owner := m.createUser("", &authv1.CreateUserRequest{Email: "owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
	ownerTok := m.login("owner@example.com", pw).GetAccessToken()
	authenticate := func(cred, site string) (*authv1.AuthenticateResponse, error) {
		return m.gw.Authenticate(m.ctx(), &authv1.AuthenticateRequest{Credential: cred, SiteId: site})
	}

	var key *authv1.ApiKey
	var secret string
	t.Run("create shows the secret once", func(t *testing.T) {
		resp, err := m.gw.CreateApiKey(m.as(ownerTok), &authv1.CreateApiKeyRequest{
			Name: "ci", Permissions: []string{"miners:read", "users:admin"}, ExpiresInDays: 30,
		})
		if err != nil {
			t.Fatal(err)
		}
		key, secret = resp.GetApiKey(), resp.GetSecret()
		if !strings.HasPrefix(secret, "hsi_test_key_") || !strings.HasPrefix(secret, key.GetDisplayPrefix()) || len(key.GetDisplayPrefix()) >= len(secret) {
			t.Fatalf("secret/display prefix: %q / %q", secret[:14], key.GetDisplayPrefix())
		}
		if key.GetState() != authv1.ApiKeyState_API_KEY_STATE_ACTIVE || key.GetUserId() != owner.GetId() {
			t.Errorf("key = %v", key)
		}
		if life := time.Until(key.GetExpireTime().AsTime()); life < 29*day || life > 30*day {
			t.Errorf("key lives %v, want 30 days", life)
		}
		list, err := m.gw.ListApiKeys(m.as(ownerTok), &authv1.ListApiKeysRequest{})
		if err != nil || len(list.GetApiKeys()) != 1 || list.GetApiKeys()[0].GetId() != key.GetId() {
			t.Fatalf("list = %v, %v", list, err)
		}
	})

	t.Run("authenticate a valid key", func(t *testing.T) {
		resp, err := authenticate(secret, "")
		if err != nil {
			t.Fatal(err)
		}
		p := resp.GetPrincipal()
		if p.GetKind() != authv1.PrincipalKind_PRINCIPAL_KIND_API_KEY || p.GetUserId() != owner.GetId() ||
			p.GetApiKeyId() != key.GetId() || !p.GetAllCustomers() {
			t.Errorf("principal = %v", p)
		}
		for _, want := range []string{"miners:read", "users:admin", "self"} {
			if !slices.Contains(p.GetPermissions(), want) {
				t.Errorf("permissions %v lack %s", p.GetPermissions(), want)
			}
		}
		if slices.Contains(p.GetPermissions(), "billing:write") {
			t.Errorf("permissions %v exceed the key's scope", p.GetPermissions())
		}
		if ttl := resp.GetCacheTtl().AsDuration(); ttl <= 0 || ttl > 30*time.Second {
			t.Errorf("cache ttl %v, want (0, 30s]", ttl)
		}
		// The key works as a bearer credential on auth's own RPCs (resolved in-process).
		me, err := m.gw.GetMe(m.as(secret), &authv1.GetMeRequest{})
		if err != nil || me.GetPrincipal().GetKind() != authv1.PrincipalKind_PRINCIPAL_KIND_API_KEY {
			t.Errorf("GetMe with the key = %v, %v", me, err)
		}
		_, err = m.gw.ListAuditEvents(m.as(secret), &authv1.ListAuditEventsRequest{})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	})

	t.Run("malformed and checksum-failing keys are rejected", func(t *testing.T) {
		last := secret[len(secret)-1]
		flipped := byte('A')
		if last == 'A' {
			flipped = 'B'
		}
		for name, cred := range map[string]string{
			"truncated":      secret[:len(secret)-3],
			"checksum":       secret[:len(secret)-1] + string(flipped),
			"other env":      strings.Replace(secret, "hsi_test_", "hsi_prod_", 1),
			"garbage":        "hello",
			"api key shaped": "hsi_test_key_" + strings.Repeat("A", 38),
			"collector typo": strings.Replace(secret, "_key_", "_col_", 1),
		} {
			t.Run(name, func(t *testing.T) {
				_, err := authenticate(cred, "")
				wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
			})
		}
	})

	var rotated string
	t.Run("rotation keeps both keys valid during the overlap", func(t *testing.T) {
		resp, err := m.gw.RotateApiKey(m.as(ownerTok), &authv1.RotateApiKeyRequest{Id: key.GetId(), Overlap: durationpb.New(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		rotated = resp.GetSecret()
		prev := resp.GetPrevious()
		if prev.GetState() != authv1.ApiKeyState_API_KEY_STATE_ROTATED || prev.GetRotatedToId() != resp.GetApiKey().GetId() ||
			resp.GetApiKey().GetRotatedFromId() != key.GetId() {
			t.Errorf("rotation = %v", resp)
		}
		if until := time.Until(prev.GetExpireTime().AsTime()); until <= 0 || until > time.Hour {
			t.Errorf("old key expires in %v, want within the 1h overlap", until)
		}
		for _, cred := range []string{secret, rotated} {
			if _, err := authenticate(cred, ""); err != nil {
				t.Errorf("authenticate during the overlap: %v", err)
			}
		}
		// A rotated key cannot be rotated again.
		_, err = m.gw.RotateApiKey(m.as(ownerTok), &authv1.RotateApiKeyRequest{Id: key.GetId()})
		wantCode(t, err, codes.FailedPrecondition, errcode.Conflict)
	})

	t.Run("a revoked key stops working", func(t *testing.T) {
		list, err := m.gw.ListApiKeys(m.as(ownerTok), &authv1.ListApiKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range list.GetApiKeys() {
			if _, err := m.gw.RevokeApiKey(m.as(ownerTok), &authv1.RevokeApiKeyRequest{Id: k.GetId()}); err != nil {
				t.Fatal(err)
			}
		}
		for _, cred := range []string{secret, rotated} {
			_, err := authenticate(cred, "")
			wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		}
		active, err := m.gw.ListApiKeys(m.as(ownerTok), &authv1.ListApiKeysRequest{})
		if err != nil || len(active.GetApiKeys()) != 0 {
			t.Errorf("active keys after revoking all: %v, %v", active, err)
		}
		all, err := m.gw.ListApiKeys(m.as(ownerTok), &authv1.ListApiKeysRequest{IncludeInactive: true})
		if err != nil || len(all.GetApiKeys()) != 2 || all.GetApiKeys()[0].GetState() != authv1.ApiKeyState_API_KEY_STATE_REVOKED {
			t.Errorf("all keys = %v, %v", all, err)
		}
	})

	t.Run("a key follows its owner", func(t *testing.T) {
		admin := m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "admin@example.com", Password: pw, Role: authv1.Role_ROLE_ADMIN})
		resp, err := m.gw.CreateApiKey(m.as(ownerTok), &authv1.CreateApiKeyRequest{
			Name: "admin tooling", Permissions: []string{"users:admin", "miners:read"}, UserId: admin.GetId(),
		})
		if err != nil {
			t.Fatal(err)
		}
		adminKey := resp.GetSecret()
		if resp.GetApiKey().GetUserId() != admin.GetId() {
			t.Fatalf("key owner %s, want the admin", resp.GetApiKey().GetUserId())
		}
		// Demoted to broker: the key keeps only what a broker holds.
		if _, err := m.gw.ChangeUserRole(m.as(ownerTok), &authv1.ChangeUserRoleRequest{Id: admin.GetId(), Role: authv1.Role_ROLE_BROKER}); err != nil {
			t.Fatal(err)
		}
		got, err := authenticate(adminKey, "")
		if err != nil {
			t.Fatal(err)
		}
		if perms := got.GetPrincipal().GetPermissions(); slices.Contains(perms, "users:admin") || !slices.Contains(perms, "miners:read") ||
			got.GetPrincipal().GetAllCustomers() {
			t.Errorf("demoted owner's key principal = %v", got.GetPrincipal())
		}
		// A broker cannot mint a key beyond its own permissions.
		brokerTok := m.login("admin@example.com", pw).GetAccessToken()
		_, err = m.gw.CreateApiKey(m.as(brokerTok), &authv1.CreateApiKeyRequest{Name: "x", Permissions: []string{"users:admin"}})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		// Disabled: the key is invalid.
		if _, err := m.gw.DisableUser(m.as(ownerTok), &authv1.DisableUserRequest{Id: admin.GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = authenticate(adminKey, "")
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
	})

	t.Run("collector tokens are bound to their site", func(t *testing.T) {
		resp, err := m.gw.CreateCollectorToken(m.as(ownerTok), &authv1.CreateCollectorTokenRequest{SiteId: "site-1", Name: "edge-1"})
		if err != nil {
			t.Fatal(err)
		}
		tok := resp.GetSecret()
		if !strings.HasPrefix(tok, "hsi_test_col_") || resp.GetCollectorToken().GetSiteId() != "site-1" {
			t.Fatalf("collector token = %v", resp.GetCollectorToken())
		}
		got, err := authenticate(tok, "site-1")
		if err != nil {
			t.Fatal(err)
		}
		p := got.GetPrincipal()
		if p.GetKind() != authv1.PrincipalKind_PRINCIPAL_KIND_COLLECTOR || p.GetSiteId() != "site-1" ||
			!slices.Equal(p.GetPermissions(), []string{"collector:write"}) || p.GetAllCustomers() {
			t.Errorf("collector principal = %v", p)
		}
		_, err = authenticate(tok, "site-2")
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		list, err := m.gw.ListCollectorTokens(m.as(ownerTok), &authv1.ListCollectorTokensRequest{SiteId: "site-1"})
		if err != nil || len(list.GetCollectorTokens()) != 1 {
			t.Fatalf("list collector tokens = %v, %v", list, err)
		}
		if _, err := m.gw.RevokeCollectorToken(m.as(ownerTok), &authv1.RevokeCollectorTokenRequest{Id: resp.GetCollectorToken().GetId()}); err != nil {
			t.Fatal(err)
		}
		_, err = authenticate(tok, "site-1")
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
	})

	t.Run("key management is audited", func(t *testing.T) {
		for action, want := range map[string]int{
			"api_key_create": 2, "api_key_rotate": 1, "api_key_revoke": 2,
			"collector_token_create": 1, "collector_token_revoke": 1,
		} {
			events := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: action, Category: "api_key_management", UserId: owner.GetId()})
			ok := 0
			for _, e := range events {
				if e.GetStatus() == "success" {
					ok++
				}
			}
			if ok != want {
				t.Errorf("%d successful %s events by the owner, want %d", ok, action, want)
			}
		}
	})
}
