package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

const pw = "correct horse battery"

// Customers the client users are bound to (billing ids).
const (
	customerA = "0b7e7a34-9c2f-4d55-8f0e-2d1c5b7a9e01"
	customerB = "5f0c8e21-3b6d-4a7e-9c14-8e2f6a0d3b02"
)

// TestUsersAndSessions runs the user and session flows end to end over gRPC against the real
// wiring: bootstrap, creation rules, logins, throttling, refresh rotation and reuse, logout, role
// changes, disabling, tenancy and the audit trail they leave.
func TestUsersAndSessions(t *testing.T) {
	m := startAuth(t, nil)
	var owner, admin, broker, client, clientB *authv1.User
	var ownerTok, adminTok, clientTok string

	t.Run("operator bootstraps the first owner", func(t *testing.T) {
		owner = m.createUser("", &authv1.CreateUserRequest{
			Email: "Owner@Example.com", Password: pw, DisplayName: "Owner", Role: authv1.Role_ROLE_OWNER,
		})
		if owner.GetEmail() != "owner@example.com" || owner.GetRole() != authv1.Role_ROLE_OWNER {
			t.Fatalf("owner = %v", owner)
		}
		if !slices.Contains(owner.GetPermissions(), "users:admin") {
			t.Errorf("owner permissions %v lack users:admin", owner.GetPermissions())
		}
		// hictl dev up runs again: the same owner already exists.
		_, err := m.op.CreateUser(m.ctx(), &authv1.CreateUserRequest{
			Email: "owner@example.com", Password: pw, DisplayName: "Owner", Role: authv1.Role_ROLE_OWNER,
		})
		wantCode(t, err, codes.AlreadyExists, errcode.Conflict)
		// Once an owner exists, the operator certificate cannot make another.
		_, err = m.op.CreateUser(m.ctx(), &authv1.CreateUserRequest{
			Email: "second-owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER,
		})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	})

	t.Run("owner creates admin, broker and client", func(t *testing.T) {
		ownerTok = m.login("owner@example.com", pw).GetAccessToken()
		admin = m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "admin@example.com", Password: pw, Role: authv1.Role_ROLE_ADMIN})
		broker = m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "broker@example.com", Password: pw, Role: authv1.Role_ROLE_BROKER})
		client = m.createUser(ownerTok, &authv1.CreateUserRequest{
			Email: "client@example.com", Password: pw, Role: authv1.Role_ROLE_CLIENT, CustomerId: customerA,
		})
		clientB = m.createUser(ownerTok, &authv1.CreateUserRequest{
			Email: "client-b@example.com", Password: pw, Role: authv1.Role_ROLE_CLIENT, CustomerId: customerB,
		})
		if client.GetCustomerId() != customerA || slices.Contains(client.GetPermissions(), "users:admin") {
			t.Errorf("client = %v", client)
		}
		adminTok = m.login("admin@example.com", pw).GetAccessToken()
		clientTok = m.login("client@example.com", pw).GetAccessToken()

		// An admin creates anything but owners.
		m.createUser(adminTok, &authv1.CreateUserRequest{Email: "broker2@example.com", Password: pw, Role: authv1.Role_ROLE_BROKER})
		_, err := m.gw.CreateUser(m.as(adminTok), &authv1.CreateUserRequest{Email: "x@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		// An owner creates owners.
		m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "owner2@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
		// A client creates nobody (users:admin, enforced by the interceptor).
		_, err = m.gw.CreateUser(m.as(clientTok), &authv1.CreateUserRequest{Email: "y@example.com", Password: pw, Role: authv1.Role_ROLE_BROKER})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	})

	t.Run("email is unique case-insensitively", func(t *testing.T) {
		_, err := m.gw.CreateUser(m.as(ownerTok), &authv1.CreateUserRequest{Email: "ADMIN@Example.COM", Password: pw, Role: authv1.Role_ROLE_BROKER})
		wantCode(t, err, codes.AlreadyExists, errcode.Conflict)
	})

	t.Run("login", func(t *testing.T) {
		resp, err := m.gw.Login(m.from("", "203.0.113.1"), &authv1.LoginRequest{Email: "Broker@Example.com", Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		tp := resp.GetTokens()
		if tp.GetAccessToken() == "" || tp.GetRefreshToken() == "" || tp.GetTokenType() != "Bearer" {
			t.Fatalf("token pair %v", tp)
		}
		if life := time.Until(tp.GetAccessTokenExpireTime().AsTime()); life <= 0 || life > 15*time.Minute {
			t.Errorf("access token lives %v, want (0, 15m]", life)
		}
		if life := time.Until(tp.GetRefreshTokenExpireTime().AsTime()); life < 29*24*time.Hour || life > 30*24*time.Hour {
			t.Errorf("refresh token lives %v, want 30 days", life)
		}
		if resp.GetUser().GetId() != broker.GetId() || resp.GetUser().GetLastLoginTime() == nil {
			t.Errorf("login user %v", resp.GetUser())
		}
		me, err := m.gw.GetMe(m.as(tp.GetAccessToken()), &authv1.GetMeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if p := me.GetPrincipal(); p.GetKind() != authv1.PrincipalKind_PRINCIPAL_KIND_USER || p.GetUserId() != broker.GetId() ||
			p.GetRole() != authv1.Role_ROLE_BROKER || p.GetAllCustomers() || me.GetUser().GetEmail() != "broker@example.com" {
			t.Errorf("GetMe = %v", me)
		}

		for _, tc := range []struct{ name, email, password string }{
			{"bad password", "broker@example.com", pw + "x"},
			{"unknown email", "nobody@example.com", pw},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.gw.Login(m.from("", "203.0.113.2"), &authv1.LoginRequest{Email: tc.email, Password: tc.password})
				wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
			})
		}
	})

	t.Run("operator sees itself in GetMe", func(t *testing.T) {
		me, err := m.op.GetMe(m.ctx(), &authv1.GetMeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if me.GetPrincipal().GetService() != "operator/conformance" || me.GetUser() != nil {
			t.Errorf("GetMe as operator = %v", me)
		}
	})

	t.Run("a client sees only itself", func(t *testing.T) {
		got, err := m.gw.GetUser(m.as(clientTok), &authv1.GetUserRequest{Id: client.GetId()})
		if err != nil || got.GetUser().GetId() != client.GetId() {
			t.Fatalf("client reads itself: %v, %v", got, err)
		}
		for _, other := range []*authv1.User{clientB, admin, owner} {
			_, err := m.gw.GetUser(m.as(clientTok), &authv1.GetUserRequest{Id: other.GetId()})
			wantCode(t, err, codes.NotFound, errcode.NotFound)
		}
		_, err = m.gw.GetUser(m.as(clientTok), &authv1.GetUserRequest{Id: "6a1f0c3e-0000-4000-8000-000000000000"})
		wantCode(t, err, codes.NotFound, errcode.NotFound)
		list, err := m.gw.ListUsers(m.as(clientTok), &authv1.ListUsersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetUsers()) != 1 || list.GetUsers()[0].GetId() != client.GetId() {
			t.Errorf("client lists %d users, want only itself", len(list.GetUsers()))
		}
		if _, err := m.gw.GetUser(m.as(adminTok), &authv1.GetUserRequest{Id: client.GetId()}); err != nil {
			t.Errorf("admin reads the client: %v", err)
		}
		// Billing checks broker assignments as svc/billing; an operator reads anyone.
		if _, err := m.op.GetUser(m.ctx(), &authv1.GetUserRequest{Id: client.GetId()}); err != nil {
			t.Errorf("operator reads the client: %v", err)
		}
	})

	t.Run("list users pages in creation order", func(t *testing.T) {
		var ids []string
		token := ""
		for range 10 {
			resp, err := m.gw.ListUsers(m.as(ownerTok), &authv1.ListUsersRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range resp.GetUsers() {
				ids = append(ids, u.GetId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(ids) != 7 {
			t.Fatalf("listed %d users, want 7", len(ids))
		}
		if len(ids) != len(slices.Compact(slices.Sorted(slices.Values(ids)))) {
			t.Errorf("duplicate users across pages: %v", ids)
		}
		if ids[0] != owner.GetId() {
			t.Errorf("first user %s, want the owner (creation order)", ids[0])
		}
		brokers, err := m.gw.ListUsers(m.as(ownerTok), &authv1.ListUsersRequest{Role: authv1.Role_ROLE_BROKER, Query: "BROKER2"})
		if err != nil || len(brokers.GetUsers()) != 1 {
			t.Errorf("filtered list = %v, %v; want broker2 only", brokers, err)
		}
	})

	t.Run("refresh rotates and reuse revokes the family", func(t *testing.T) {
		first := m.login("broker@example.com", pw)
		resp, err := m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()})
		if err != nil {
			t.Fatal(err)
		}
		second := resp.GetTokens()
		if second.GetRefreshToken() == first.GetRefreshToken() || second.GetAccessToken() == "" {
			t.Fatal("refresh did not rotate the refresh token")
		}
		// The spent token comes back: someone copied it. The whole session dies.
		_, err = m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		_, err = m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: second.GetRefreshToken()})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)

		events := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "token_reuse"})
		if len(events) != 1 || events[0].GetLevel() != authv1.AuditLevel_AUDIT_LEVEL_SECURITY || events[0].GetUserId() != broker.GetId() {
			t.Fatalf("token_reuse events = %v", events)
		}
		// Another session of the same user is unaffected.
		other := m.login("broker@example.com", pw)
		if _, err := m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: other.GetRefreshToken()}); err != nil {
			t.Errorf("refresh of another session: %v", err)
		}
		_, err = m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: "not-a-refresh-token"})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
	})

	t.Run("logout revokes the session", func(t *testing.T) {
		pair := m.login("broker@example.com", pw)
		if _, err := m.gw.Logout(m.as(pair.GetAccessToken()), &authv1.LogoutRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: pair.GetRefreshToken()})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)

		pair = m.login("broker@example.com", pw)
		if _, err := m.gw.Logout(m.as(pair.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: pair.GetRefreshToken()}); err != nil {
			t.Fatal(err)
		}
		_, err = m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: pair.GetRefreshToken()})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		// Someone else's session is not the caller's to end.
		victim := m.login("admin@example.com", pw)
		_, err = m.gw.Logout(m.as(clientTok), &authv1.LogoutRequest{RefreshToken: victim.GetRefreshToken()})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		if _, err := m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: victim.GetRefreshToken()}); err != nil {
			t.Errorf("the victim's session was ended: %v", err)
		}
		if n := len(listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "logout", UserId: broker.GetId()})); n != 2 {
			t.Errorf("%d logout events, want 2", n)
		}
	})

	t.Run("role change is audited and reaches the next refresh", func(t *testing.T) {
		b2, err := m.gw.ListUsers(m.as(ownerTok), &authv1.ListUsersRequest{Query: "broker2@"})
		if err != nil || len(b2.GetUsers()) != 1 {
			t.Fatalf("find broker2: %v, %v", b2, err)
		}
		target := b2.GetUsers()[0]
		session := m.login("broker2@example.com", pw)
		resp, err := m.gw.ChangeUserRole(m.as(ownerTok), &authv1.ChangeUserRoleRequest{Id: target.GetId(), Role: authv1.Role_ROLE_ADMIN})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetUser().GetRole() != authv1.Role_ROLE_ADMIN {
			t.Fatalf("role after change: %v", resp.GetUser().GetRole())
		}
		events := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "role_change", UserId: owner.GetId()})
		if len(events) != 1 {
			t.Fatalf("role_change events: %v", events)
		}
		d := events[0].GetDetails().AsMap()
		if d["target_user_id"] != target.GetId() || d["old_role"] != "broker" || d["new_role"] != "admin" {
			t.Errorf("role_change details %v", d)
		}
		refreshed, err := m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: session.GetRefreshToken()})
		if err != nil {
			t.Fatal(err)
		}
		me, err := m.gw.GetMe(m.as(refreshed.GetTokens().GetAccessToken()), &authv1.GetMeRequest{})
		if err != nil || me.GetPrincipal().GetRole() != authv1.Role_ROLE_ADMIN || !me.GetPrincipal().GetAllCustomers() {
			t.Errorf("principal after refresh = %v, %v; want the new admin role", me.GetPrincipal(), err)
		}

		// Only owners touch owners; the last active owner stays.
		_, err = m.gw.ChangeUserRole(m.as(adminTok), &authv1.ChangeUserRoleRequest{Id: broker.GetId(), Role: authv1.Role_ROLE_OWNER})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		_, err = m.gw.ChangeUserRole(m.as(adminTok), &authv1.ChangeUserRoleRequest{Id: owner.GetId(), Role: authv1.Role_ROLE_ADMIN})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		_, err = m.op.ChangeUserRole(m.ctx(), &authv1.ChangeUserRoleRequest{Id: owner.GetId(), Role: authv1.Role_ROLE_ADMIN})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
	})

	t.Run("the last active owner can be neither demoted nor disabled", func(t *testing.T) {
		o2, err := m.gw.ListUsers(m.as(ownerTok), &authv1.ListUsersRequest{Query: "owner2@"})
		if err != nil || len(o2.GetUsers()) != 1 {
			t.Fatalf("find owner2: %v", err)
		}
		if _, err := m.gw.DisableUser(m.as(ownerTok), &authv1.DisableUserRequest{Id: o2.GetUsers()[0].GetId(), Reason: "left"}); err != nil {
			t.Fatal(err)
		}
		_, err = m.gw.ChangeUserRole(m.as(ownerTok), &authv1.ChangeUserRoleRequest{Id: owner.GetId(), Role: authv1.Role_ROLE_ADMIN})
		wantCode(t, err, codes.FailedPrecondition, errcode.Precondition)
		_, err = m.gw.DisableUser(m.as(ownerTok), &authv1.DisableUserRequest{Id: owner.GetId()})
		wantCode(t, err, codes.FailedPrecondition, errcode.Precondition)
	})

	t.Run("a disabled user can neither log in nor refresh", func(t *testing.T) {
		leaver := m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "leaver@example.com", Password: pw, Role: authv1.Role_ROLE_BROKER})
		session := m.login("leaver@example.com", pw)
		resp, err := m.gw.DisableUser(m.as(adminTok), &authv1.DisableUserRequest{Id: leaver.GetId(), Reason: "left the company"})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetUser().GetDisabled() || resp.GetUser().GetDisableTime() == nil {
			t.Fatalf("disabled user = %v", resp.GetUser())
		}
		_, err = m.gw.Login(m.from("", "203.0.113.3"), &authv1.LoginRequest{Email: "leaver@example.com", Password: pw})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		_, err = m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: session.GetRefreshToken()})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		_, err = m.gw.GetMe(m.as(session.GetAccessToken()), &authv1.GetMeRequest{})
		wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		events := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "user_disable", UserId: admin.GetId()})
		if len(events) != 1 || events[0].GetDetails().AsMap()["reason"] != "left the company" {
			t.Errorf("user_disable events = %v", events)
		}
		list, err := m.gw.ListUsers(m.as(ownerTok), &authv1.ListUsersRequest{Query: "leaver"})
		if err != nil || len(list.GetUsers()) != 0 {
			t.Errorf("disabled user listed without include_disabled: %v, %v", list, err)
		}
		_, err = m.gw.DisableUser(m.as(adminTok), &authv1.DisableUserRequest{Id: admin.GetId()})
		wantCode(t, err, codes.FailedPrecondition, errcode.Precondition)
	})

	t.Run("failed logins are throttled with exponential backoff", func(t *testing.T) {
		target := m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "target@example.com", Password: pw, Role: authv1.Role_ROLE_BROKER})
		const ip = "192.0.2.77"
		for i := 1; i <= 5; i++ {
			_, err := m.gw.Login(m.from("", ip), &authv1.LoginRequest{Email: "target@example.com", Password: "wrong password!"})
			wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		}
		// Locked now: even the right password is refused without being checked.
		_, err := m.gw.Login(m.from("", ip), &authv1.LoginRequest{Email: "target@example.com", Password: pw})
		wantCode(t, err, codes.ResourceExhausted, errcode.RateLimited)
		if d := retryDelay(err); d <= 0 || d > time.Second {
			t.Errorf("retry delay %v, want (0, 1s]", d)
		}
		// Another account from the same address is not locked.
		if _, err := m.gw.Login(m.from("", ip), &authv1.LoginRequest{Email: "admin@example.com", Password: pw}); err != nil {
			t.Errorf("another account from the same IP: %v", err)
		}
		failed := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "login_failed", UserId: target.GetId()})
		if len(failed) != 6 {
			t.Fatalf("%d login_failed events, want 6 (5 bad passwords, 1 throttled)", len(failed))
		}
		if failed[0].GetDetails().AsMap()["reason"] != "throttled" || failed[0].GetIpAddress() != ip ||
			failed[0].GetLevel() != authv1.AuditLevel_AUDIT_LEVEL_SECURITY {
			t.Errorf("throttled event = %v", failed[0])
		}
		// The lock ends after a second.
		eventually(t, 5*time.Second, "the lock to end", func() bool {
			_, err := m.gw.Login(m.from("", ip), &authv1.LoginRequest{Email: "target@example.com", Password: pw})
			return err == nil
		})
	})

	t.Run("unknown emails are throttled too", func(t *testing.T) {
		for range 5 {
			_, err := m.gw.Login(m.from("", "192.0.2.78"), &authv1.LoginRequest{Email: "ghost@example.com", Password: "wrong password!"})
			wantCode(t, err, codes.Unauthenticated, errcode.AuthRequired)
		}
		_, err := m.gw.Login(m.from("", "192.0.2.78"), &authv1.LoginRequest{Email: "ghost@example.com", Password: "wrong password!"})
		wantCode(t, err, codes.ResourceExhausted, errcode.RateLimited)
	})

	t.Run("permission denials are audited", func(t *testing.T) {
		_, err := m.gw.ListAuditEvents(m.as(clientTok), &authv1.ListAuditEventsRequest{})
		wantCode(t, err, codes.PermissionDenied, errcode.AuthForbidden)
		events := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "permission_denied", UserId: client.GetId()})
		if len(events) == 0 {
			t.Fatal("no permission_denied event")
		}
		d := events[0].GetDetails().AsMap()
		if d["permission"] != "audit:read" || !strings.HasSuffix(d["method"].(string), "/ListAuditEvents") ||
			events[0].GetCategory() != "authorization" {
			t.Errorf("permission_denied event %v", events[0])
		}
	})

	t.Run("audit events filter by category and time", func(t *testing.T) {
		now := time.Now()
		all := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{
			Category: "user_management", From: timestamppb.New(now.Add(-time.Hour)), To: timestamppb.New(now.Add(time.Minute)),
		})
		if len(all) == 0 {
			t.Fatal("no user_management events in the last hour")
		}
		for _, e := range all {
			if e.GetCategory() != "user_management" {
				t.Errorf("category filter let %q through", e.GetCategory())
			}
		}
		future := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{From: timestamppb.New(now.Add(time.Hour))})
		if len(future) != 0 {
			t.Errorf("%d events in the future", len(future))
		}
		creates := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "user_create"})
		var bootstrap bool
		for _, e := range creates {
			if e.GetUserId() == "operator/conformance" && e.GetDetails().AsMap()["bootstrap"] == true {
				bootstrap = true
			}
		}
		if !bootstrap {
			t.Error("the bootstrap owner's user_create by the operator is not audited")
		}
	})

	t.Run("the audit chain verifies and a changed row is named", func(t *testing.T) {
		resp, err := m.gw.VerifyAuditChain(m.as(ownerTok), &authv1.VerifyAuditChainRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetValid() || resp.GetCheckedCount() < 10 {
			t.Fatalf("verify = %v", resp)
		}
		db := m.h.Runtime.DB
		ctx := m.ctx()
		if _, err := db.Exec(ctx, `ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `UPDATE audit_events SET ip_address = '10.6.6.6' WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		resp, err = m.gw.VerifyAuditChain(m.as(ownerTok), &authv1.VerifyAuditChainRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetValid() || resp.GetFirstBrokenSequence() != 3 || resp.GetFirstBrokenEventId() == "" || resp.GetCheckedCount() != 2 {
			t.Errorf("verify after tampering = %v, want entry 3 broken", resp)
		}
	})
}

// listAudit lists every audit event matching req (all pages) as the holder of cred.
func listAudit(t *testing.T, m *mesh, cred string, req *authv1.ListAuditEventsRequest) []*authv1.AuditEvent {
	t.Helper()
	var out []*authv1.AuditEvent
	for {
		resp, err := m.gw.ListAuditEvents(m.as(cred), req)
		if err != nil {
			t.Fatalf("list audit events: %v", err)
		}
		out = append(out, resp.GetAuditEvents()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// statusOf is status.FromError for table tests.
func statusOf(err error) *status.Status {
	st, _ := status.FromError(err)
	return st
}

// TestDevMeshOwnerBootstrap sends exactly what `hictl dev up` sends (cmd/hictl/internal/devmesh
// AuthOwnerCreator: CreateUser with role owner over the operator certificate, its generated login
// owner@hashinsight.local and a 24-character random password) and expects what it relies on: OK
// the first time, AlreadyExists on every later run, and a working login.
func TestDevMeshOwnerBootstrap(t *testing.T) {
	m := startAuth(t, nil)
	req := &authv1.CreateUserRequest{
		Email:       "owner@hashinsight.local",
		Password:    "q3Jx0_m9ZtWcVb-4Lr8KpNaE", // base64url of 18 random bytes, as generated
		DisplayName: "Owner",
		Role:        authv1.Role_ROLE_OWNER,
	}
	if _, err := m.op.CreateUser(m.ctx(), req); err != nil {
		t.Fatalf("first dev up: %v", err)
	}
	_, err := m.op.CreateUser(m.ctx(), req)
	wantCode(t, err, codes.AlreadyExists, errcode.Conflict)
	if tp := m.login(req.GetEmail(), req.GetPassword()); tp.GetAccessToken() == "" {
		t.Fatal("the bootstrap owner cannot log in")
	}
}
