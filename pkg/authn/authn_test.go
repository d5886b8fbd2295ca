package authn_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/authn"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

func TestPermissionsForRole(t *testing.T) {
	all := authn.AllPermissions()
	cases := []struct {
		role    string
		has     []string
		hasNot  []string
		wantAll bool
	}{
		{role: authn.RoleOwner, wantAll: true},
		{role: authn.RoleAdmin, wantAll: true},
		{
			role: authn.RoleBroker,
			has: []string{"miners:read", "miners:write", "customers:read", "customers:write", "billing:read",
				"sla:read", "analytics:read", "apikeys:manage", "self"},
			hasNot: []string{"miners:delete", "models:write", "billing:write", "sla:write", "analytics:write",
				"users:admin", "audit:read", "collector:write"},
		},
		{
			role: authn.RoleClient,
			has:  []string{"miners:read", "billing:read", "sla:read", "analytics:read", "apikeys:manage", "self"},
			hasNot: []string{"miners:write", "miners:delete", "models:write", "customers:read", "customers:write",
				"billing:write", "sla:write", "analytics:write", "users:admin", "audit:read", "collector:write"},
		},
		{role: "root", hasNot: all},
		{role: "", hasNot: all},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			got := authn.PermissionsForRole(tc.role)
			if tc.wantAll {
				if !slices.Equal(got, all) {
					t.Fatalf("%s = %v, want every permission", tc.role, got)
				}
				return
			}
			if len(got) != len(tc.has) {
				t.Errorf("%s has %d permissions %v, want exactly %v", tc.role, len(got), got, tc.has)
			}
			for _, p := range tc.has {
				if !slices.Contains(got, p) {
					t.Errorf("%s lacks %s", tc.role, p)
				}
			}
			for _, p := range tc.hasNot {
				if slices.Contains(got, p) {
					t.Errorf("%s has %s", tc.role, p)
				}
			}
			for _, p := range got {
				if !authn.ValidPermission(p) {
					t.Errorf("%s grants %s, which is not in the vocabulary", tc.role, p)
				}
			}
		})
	}
	// Fresh slices: a caller cannot change the table.
	authn.PermissionsForRole(authn.RoleClient)[0] = "users:admin"
	authn.AllPermissions()[0] = "x"
	if slices.Contains(authn.PermissionsForRole(authn.RoleClient), "users:admin") || authn.AllPermissions()[0] == "x" {
		t.Error("the role table was modified through a returned slice")
	}
	if len(all) != 17 {
		t.Errorf("vocabulary has %d permissions, want 17", len(all))
	}
	if !slices.Equal(authn.Roles(), []string{"owner", "admin", "broker", "client"}) {
		t.Errorf("roles %v", authn.Roles())
	}
}

func TestCanAssignRole(t *testing.T) {
	cases := []struct {
		actor, target string
		want          bool
	}{
		{"owner", "owner", true}, {"owner", "admin", true}, {"owner", "client", true},
		{"admin", "owner", false}, {"admin", "admin", true}, {"admin", "broker", true}, {"admin", "client", true},
		{"broker", "client", false}, {"client", "client", false}, {"owner", "root", false}, {"", "client", false},
	}
	for _, tc := range cases {
		if got := authn.CanAssignRole(tc.actor, tc.target); got != tc.want {
			t.Errorf("CanAssignRole(%s, %s) = %v, want %v", tc.actor, tc.target, got, tc.want)
		}
	}
	if m := authn.Missing([]string{"miners:read", "self", "users:admin"}, authn.PermissionsForRole("client")); !slices.Equal(m, []string{"users:admin"}) {
		t.Errorf("Missing = %v", m)
	}
}

func TestPrincipal(t *testing.T) {
	client := &authn.Principal{Kind: authn.KindUser, Role: "client", Permissions: []string{"miners:read"}, CustomerIDs: []string{"a"}}
	broker := &authn.Principal{Kind: authn.KindUser, Role: "broker", CustomerIDs: []string{"a", "b"}}
	owner := &authn.Principal{Kind: authn.KindUser, Role: "owner", AllCustomers: true}
	var none *authn.Principal
	cases := []struct {
		name     string
		p        *authn.Principal
		customer string
		see      bool
		all      bool
		ids      []string
	}{
		{"client own customer", client, "a", true, false, []string{"a"}},
		{"client other customer", client, "b", false, false, []string{"a"}},
		{"client empty id", client, "", false, false, []string{"a"}},
		{"broker assigned", broker, "b", true, false, []string{"a", "b"}},
		{"broker unassigned", broker, "c", false, false, []string{"a", "b"}},
		{"owner any", owner, "z", true, true, nil},
		{"nil principal", none, "a", false, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.CanSeeCustomer(tc.customer); got != tc.see {
				t.Errorf("CanSeeCustomer(%q) = %v", tc.customer, got)
			}
			all, ids := authn.CustomerFilter(tc.p)
			if all != tc.all || !slices.Equal(ids, tc.ids) {
				t.Errorf("CustomerFilter = %v %v, want %v %v", all, ids, tc.all, tc.ids)
			}
		})
	}
	if !client.Has("self") || !client.Has("miners:read") || client.Has("miners:write") || client.Has("") || none.Has("self") {
		t.Error("Has")
	}
	c := client.Clone()
	c.Permissions[0] = "users:admin"
	if client.Permissions[0] != "miners:read" {
		t.Error("Clone shares slices")
	}

	ctx := context.Background()
	if _, ok := authn.FromContext(ctx); ok {
		t.Error("principal in an empty context")
	}
	if got, ok := authn.FromContext(authn.NewContext(ctx, owner)); !ok || got != owner {
		t.Error("FromContext(NewContext)")
	}
	if _, ok := authn.FromContext(authn.NewContext(ctx, nil)); ok {
		t.Error("nil principal reported present")
	}
}

func TestProtoRoundTrip(t *testing.T) {
	exp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []*authn.Principal{
		{Kind: authn.KindUser, Subject: "u1", Email: "a@b.c", Role: "broker", Permissions: []string{"miners:read"}, CustomerIDs: []string{"c1", "c2"}, ExpiresAt: exp},
		{Kind: authn.KindAPIKey, Subject: "u1", Role: "client", Permissions: []string{"miners:read"}, CustomerIDs: []string{"c1"}, APIKeyID: "k1", ExpiresAt: exp},
		{Kind: authn.KindCollector, Permissions: []string{"collector:write"}, CollectorTokenID: "t1", SiteID: "site-a", AllCustomers: true},
		{Kind: authn.KindService, Subject: "svc/billing", Permissions: []string{"miners:read"}, AllCustomers: true},
		{Kind: authn.KindOperator, Subject: "operator/alice", Permissions: []string{"miners:read"}, AllCustomers: true},
	}
	for _, p := range cases {
		got := authn.FromProto(authn.ToProto(p))
		if got == nil || got.Kind != p.Kind || got.Subject != p.Subject || got.Role != p.Role || got.Email != p.Email ||
			!slices.Equal(got.Permissions, p.Permissions) || !slices.Equal(got.CustomerIDs, p.CustomerIDs) ||
			got.AllCustomers != p.AllCustomers || got.APIKeyID != p.APIKeyID || got.SiteID != p.SiteID ||
			got.CollectorTokenID != p.CollectorTokenID || !got.ExpiresAt.Equal(p.ExpiresAt) {
			t.Errorf("round trip of %+v = %+v", p, got)
		}
	}
	if authn.FromProto(&authv1.Principal{}) != nil || authn.FromProto(nil) != nil || authn.ToProto(nil) != nil {
		t.Error("empty conversions")
	}
	for _, r := range authn.Roles() {
		if authn.RoleFromProto(authn.RoleToProto(r)) != r {
			t.Errorf("role %s does not round-trip", r)
		}
	}
}
