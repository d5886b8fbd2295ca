package app_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

const customerC = "9a4d2c61-7e3b-4f08-b5a1-c3e9d7f20a03"

// TestSetUserCustomers: an owner or admin (users:admin) or an operator assigns a broker's
// customers; the change is audited, read back on the user and carried by the broker's next access
// token. Only brokers have assigned customers; without users:admin the RPC is denied.
func TestSetUserCustomers(t *testing.T) {
	m := startAuth(t, nil)
	m.createUser("", &authv1.CreateUserRequest{Email: "owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
	ownerTok := m.login("owner@example.com", pw).GetAccessToken()
	admin := m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "admin@example.com", Password: pw, Role: authv1.Role_ROLE_ADMIN})
	broker := m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "broker@example.com", Password: pw, Role: authv1.Role_ROLE_BROKER})
	client := m.createUser(ownerTok, &authv1.CreateUserRequest{
		Email: "client@example.com", Password: pw, Role: authv1.Role_ROLE_CLIENT, CustomerId: customerA,
	})
	adminTok := m.login("admin@example.com", pw).GetAccessToken()
	brokerTok := m.login("broker@example.com", pw).GetAccessToken()

	scopeOf := func(t *testing.T, tok string) []string {
		t.Helper()
		me, err := m.gw.GetMe(m.as(tok), &authv1.GetMeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if me.GetPrincipal().GetAllCustomers() {
			t.Fatal("broker token sees all customers")
		}
		return me.GetPrincipal().GetCustomerIds()
	}
	if got := scopeOf(t, brokerTok); len(got) != 0 {
		t.Fatalf("new broker's scope = %v, want none", got)
	}

	t.Run("admin assigns customers; the next token carries them", func(t *testing.T) {
		// Upper-case input is stored canonically.
		resp, err := m.gw.SetUserCustomers(m.as(adminTok), &authv1.SetUserCustomersRequest{
			Id: broker.GetId(), CustomerIds: []string{customerB, "0B7E7A34-9C2F-4D55-8F0E-2D1C5B7A9E01"},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{customerA, customerB}
		if got := resp.GetUser().GetCustomerIds(); !slices.Equal(got, want) {
			t.Fatalf("user customer_ids = %v, want %v", got, want)
		}
		got, err := m.gw.GetUser(m.as(ownerTok), &authv1.GetUserRequest{Id: broker.GetId()})
		if err != nil || !slices.Equal(got.GetUser().GetCustomerIds(), want) {
			t.Fatalf("GetUser = %v, %v; want customer_ids %v", got, err, want)
		}
		// The token issued before the change keeps its scope; a new login carries the new one.
		if s := scopeOf(t, brokerTok); len(s) != 0 {
			t.Errorf("old token's scope changed to %v", s)
		}
		if s := scopeOf(t, m.login("broker@example.com", pw).GetAccessToken()); !slices.Equal(s, want) {
			t.Errorf("new token's scope = %v, want %v", s, want)
		}
		events := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "customers_changed"})
		if len(events) != 1 {
			t.Fatalf("%d customers_changed events, want 1", len(events))
		}
		e := events[0]
		d := e.GetDetails().AsMap()
		if e.GetUserId() != admin.GetId() || e.GetCategory() != "user_management" || d["target_user_id"] != broker.GetId() ||
			len(d["added"].([]any)) != 2 || len(d["removed"].([]any)) != 0 {
			t.Errorf("audit event %v", e)
		}
	})

	t.Run("operator replaces the set; the same set again changes nothing", func(t *testing.T) {
		resp, err := m.op.SetUserCustomers(m.ctx(), &authv1.SetUserCustomersRequest{
			Id: broker.GetId(), CustomerIds: []string{customerC, customerB},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetUser().GetCustomerIds(); !slices.Equal(got, []string{customerB, customerC}) {
			t.Fatalf("customer_ids = %v", got)
		}
		if _, err := m.op.SetUserCustomers(m.ctx(), &authv1.SetUserCustomersRequest{
			Id: broker.GetId(), CustomerIds: []string{customerB, customerC},
		}); err != nil {
			t.Fatal(err)
		}
		events := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "customers_changed", Actor: "operator/conformance"})
		if len(events) != 1 {
			t.Fatalf("%d customers_changed events by the operator, want 1 (an unchanged set is not audited)", len(events))
		}
		d := events[0].GetDetails().AsMap()
		if !slices.Equal(d["added"].([]any), []any{customerC}) || !slices.Equal(d["removed"].([]any), []any{customerA}) {
			t.Errorf("details %v, want added [C] removed [A]", d)
		}
	})

	t.Run("an empty set removes every assignment", func(t *testing.T) {
		resp, err := m.gw.SetUserCustomers(m.as(ownerTok), &authv1.SetUserCustomersRequest{Id: broker.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetUser().GetCustomerIds()) != 0 {
			t.Fatalf("customer_ids = %v, want none", resp.GetUser().GetCustomerIds())
		}
		if s := scopeOf(t, m.login("broker@example.com", pw).GetAccessToken()); len(s) != 0 {
			t.Errorf("scope after clearing = %v", s)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cred string
			id   string
			code codes.Code
			ec   errcode.Code
		}{
			{"a client user", ownerTok, client.GetId(), codes.FailedPrecondition, errcode.Precondition},
			{"an admin user", ownerTok, admin.GetId(), codes.FailedPrecondition, errcode.Precondition},
			{"an unknown user", ownerTok, customerC, codes.NotFound, errcode.NotFound},
			{"a broker without users:admin", brokerTok, broker.GetId(), codes.PermissionDenied, errcode.AuthForbidden},
			{"no credential", "", broker.GetId(), codes.Unauthenticated, errcode.AuthRequired},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.gw.SetUserCustomers(m.as(tc.cred), &authv1.SetUserCustomersRequest{Id: tc.id, CustomerIds: []string{customerA}})
				wantCode(t, err, tc.code, tc.ec)
			})
		}
		got, err := m.gw.GetUser(m.as(ownerTok), &authv1.GetUserRequest{Id: client.GetId()})
		if err != nil || got.GetUser().GetCustomerId() != customerA || len(got.GetUser().GetCustomerIds()) != 0 {
			t.Fatalf("client after a refused assignment = %v, %v", got, err)
		}
		refusals := listAudit(t, m, ownerTok, &authv1.ListAuditEventsRequest{Action: "customers_changed", Actor: admin.GetId()})
		for _, e := range refusals {
			if e.GetStatus() != "success" {
				t.Errorf("unexpected refusal by the admin: %v", e)
			}
		}
	})
}

// TestListAuditEventsByActor: the actor filter selects entries by the acting identity as stored,
// a user id or a non-user identity such as the operator's, and combines with the other filters.
func TestListAuditEventsByActor(t *testing.T) {
	m := startAuth(t, nil)
	owner := m.createUser("", &authv1.CreateUserRequest{Email: "owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
	ownerTok := m.login("owner@example.com", pw).GetAccessToken()
	m.createUser(ownerTok, &authv1.CreateUserRequest{Email: "broker@example.com", Password: pw, Role: authv1.Role_ROLE_BROKER})
	m.createUser("", &authv1.CreateUserRequest{Email: "admin@example.com", Password: pw, Role: authv1.Role_ROLE_ADMIN})

	for _, tc := range []struct {
		name    string
		req     *authv1.ListAuditEventsRequest
		want    int
		actorID string
	}{
		{"operator", &authv1.ListAuditEventsRequest{Actor: "operator/conformance"}, 2, "operator/conformance"},
		{"operator and action", &authv1.ListAuditEventsRequest{Actor: "operator/conformance", Action: "user_create"}, 2, "operator/conformance"},
		{"operator and another action", &authv1.ListAuditEventsRequest{Actor: "operator/conformance", Action: "login"}, 0, ""},
		{"user id as actor", &authv1.ListAuditEventsRequest{Actor: owner.GetId(), Action: "user_create"}, 1, owner.GetId()},
		{"actor and user_id agree", &authv1.ListAuditEventsRequest{Actor: owner.GetId(), UserId: owner.GetId(), Action: "user_create"}, 1, owner.GetId()},
		{"actor and user_id differ", &authv1.ListAuditEventsRequest{Actor: "operator/conformance", UserId: owner.GetId()}, 0, ""},
		{"unknown operator", &authv1.ListAuditEventsRequest{Actor: "operator/mallory"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := listAudit(t, m, ownerTok, tc.req)
			if len(events) != tc.want {
				t.Fatalf("%d events, want %d: %v", len(events), tc.want, events)
			}
			for _, e := range events {
				if e.GetUserId() != tc.actorID {
					t.Errorf("event by %q, want %q", e.GetUserId(), tc.actorID)
				}
			}
		})
	}
}
