package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// TestBadInputs sends an invalid request to every write RPC (and the reads that take an id) and
// expects InvalidArgument VALIDATION_001 naming the offending field, whether the field rule is in
// the proto (protovalidate) or in the domain (password policy, permission vocabulary, ...).
func TestBadInputs(t *testing.T) {
	m := startAuth(t, nil)
	m.createUser("", &authv1.CreateUserRequest{Email: "owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
	tok := m.login("owner@example.com", pw).GetAccessToken()
	c := m.gw
	const badUUID = "not-a-uuid"

	tests := []struct {
		name  string
		call  func(ctx context.Context) error
		field string
	}{
		{"CreateUser invalid email", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "not an email", Password: pw, Role: authv1.Role_ROLE_ADMIN})
			return err
		}, "email"},
		{"CreateUser password under 8 bytes", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: "short", Role: authv1.Role_ROLE_ADMIN})
			return err
		}, "password"},
		{"CreateUser password under 12 characters", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: "elevenchars", Role: authv1.Role_ROLE_ADMIN})
			return err
		}, "password"},
		{"CreateUser password over 128 characters", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: strings.Repeat("p", 129), Role: authv1.Role_ROLE_ADMIN})
			return err
		}, "password"},
		{"CreateUser unknown role", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: pw, Role: authv1.Role(42)})
			return err
		}, "role"},
		{"CreateUser no role", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: pw})
			return err
		}, "role"},
		{"CreateUser client without customer", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: pw, Role: authv1.Role_ROLE_CLIENT})
			return err
		}, "customer_id"},
		{"CreateUser customer for an admin", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: pw, Role: authv1.Role_ROLE_ADMIN, CustomerId: customerA})
			return err
		}, "customer_id"},
		{"CreateUser bad customer uuid", func(ctx context.Context) error {
			_, err := c.CreateUser(ctx, &authv1.CreateUserRequest{Email: "a@example.com", Password: pw, Role: authv1.Role_ROLE_CLIENT, CustomerId: badUUID})
			return err
		}, "customer_id"},
		{"GetUser bad uuid", func(ctx context.Context) error {
			_, err := c.GetUser(ctx, &authv1.GetUserRequest{Id: badUUID})
			return err
		}, "id"},
		{"ListUsers bad page token", func(ctx context.Context) error {
			_, err := c.ListUsers(ctx, &authv1.ListUsersRequest{PageToken: "garbage"})
			return err
		}, "page_token"},
		{"ChangeUserRole bad uuid", func(ctx context.Context) error {
			_, err := c.ChangeUserRole(ctx, &authv1.ChangeUserRoleRequest{Id: badUUID, Role: authv1.Role_ROLE_ADMIN})
			return err
		}, "id"},
		{"ChangeUserRole unknown role", func(ctx context.Context) error {
			_, err := c.ChangeUserRole(ctx, &authv1.ChangeUserRoleRequest{Id: customerA, Role: authv1.Role(42)})
			return err
		}, "role"},
		{"ChangeUserRole client without customer", func(ctx context.Context) error {
			_, err := c.ChangeUserRole(ctx, &authv1.ChangeUserRoleRequest{Id: customerA, Role: authv1.Role_ROLE_CLIENT})
			return err
		}, "customer_id"},
		{"DisableUser bad uuid", func(ctx context.Context) error {
			_, err := c.DisableUser(ctx, &authv1.DisableUserRequest{Id: badUUID})
			return err
		}, "id"},
		{"Login invalid email", func(ctx context.Context) error {
			_, err := c.Login(ctx, &authv1.LoginRequest{Email: "nope", Password: pw})
			return err
		}, "email"},
		{"Refresh empty token", func(ctx context.Context) error {
			_, err := c.Refresh(ctx, &authv1.RefreshRequest{})
			return err
		}, "refresh_token"},
		{"CreateApiKey empty name", func(ctx context.Context) error {
			_, err := c.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{Permissions: []string{"miners:read"}})
			return err
		}, "name"},
		{"CreateApiKey malformed permission", func(ctx context.Context) error {
			_, err := c.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{Name: "k", Permissions: []string{"everything"}})
			return err
		}, "permissions"},
		{"CreateApiKey unknown permission", func(ctx context.Context) error {
			_, err := c.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{Name: "k", Permissions: []string{"rockets:launch"}})
			return err
		}, "permissions"},
		{"CreateApiKey bad owner uuid", func(ctx context.Context) error {
			_, err := c.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{Name: "k", Permissions: []string{"miners:read"}, UserId: badUUID})
			return err
		}, "user_id"},
		{"RotateApiKey bad uuid", func(ctx context.Context) error {
			_, err := c.RotateApiKey(ctx, &authv1.RotateApiKeyRequest{Id: badUUID})
			return err
		}, "id"},
		{"RotateApiKey overlap over 90 days", func(ctx context.Context) error {
			_, err := c.RotateApiKey(ctx, &authv1.RotateApiKeyRequest{Id: customerA, Overlap: durationpb.New(91 * day)})
			return err
		}, "overlap"},
		{"RevokeApiKey bad uuid", func(ctx context.Context) error {
			_, err := c.RevokeApiKey(ctx, &authv1.RevokeApiKeyRequest{Id: badUUID})
			return err
		}, "id"},
		{"CreateCollectorToken empty site", func(ctx context.Context) error {
			_, err := c.CreateCollectorToken(ctx, &authv1.CreateCollectorTokenRequest{Name: "edge-1"})
			return err
		}, "site_id"},
		{"CreateCollectorToken negative lifetime", func(ctx context.Context) error {
			_, err := c.CreateCollectorToken(ctx, &authv1.CreateCollectorTokenRequest{SiteId: "s", Name: "edge-1", ExpiresInDays: -1})
			return err
		}, "expires_in_days"},
		{"RevokeCollectorToken bad uuid", func(ctx context.Context) error {
			_, err := c.RevokeCollectorToken(ctx, &authv1.RevokeCollectorTokenRequest{Id: badUUID})
			return err
		}, "id"},
		{"ListAuditEvents bad user uuid", func(ctx context.Context) error {
			_, err := c.ListAuditEvents(ctx, &authv1.ListAuditEventsRequest{UserId: badUUID})
			return err
		}, "user_id"},
		{"ListAuditEvents malformed actor", func(ctx context.Context) error {
			_, err := c.ListAuditEvents(ctx, &authv1.ListAuditEventsRequest{Actor: "operator alice; drop"})
			return err
		}, "actor"},
		{"ListAuditEvents oversized actor", func(ctx context.Context) error {
			_, err := c.ListAuditEvents(ctx, &authv1.ListAuditEventsRequest{Actor: "operator/" + strings.Repeat("a", 130)})
			return err
		}, "actor"},
		{"SetUserCustomers bad uuid", func(ctx context.Context) error {
			_, err := c.SetUserCustomers(ctx, &authv1.SetUserCustomersRequest{Id: badUUID})
			return err
		}, "id"},
		{"SetUserCustomers bad customer uuid", func(ctx context.Context) error {
			_, err := c.SetUserCustomers(ctx, &authv1.SetUserCustomersRequest{Id: customerA, CustomerIds: []string{customerB, badUUID}})
			return err
		}, "customer_ids"},
		{"SetUserCustomers repeated customer", func(ctx context.Context) error {
			_, err := c.SetUserCustomers(ctx, &authv1.SetUserCustomersRequest{Id: customerA, CustomerIds: []string{customerB, customerB}})
			return err
		}, "customer_ids"},
		{"SetUserCustomers over 1000 customers", func(ctx context.Context) error {
			ids := make([]string, 1001)
			for i := range ids {
				ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			}
			_, err := c.SetUserCustomers(ctx, &authv1.SetUserCustomersRequest{Id: customerA, CustomerIds: ids})
			return err
		}, "customer_ids"},
		{"Logout oversized refresh token", func(ctx context.Context) error {
			_, err := c.Logout(ctx, &authv1.LogoutRequest{RefreshToken: strings.Repeat("r", 600)})
			return err
		}, "refresh_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(m.as(tok))
			wantCode(t, err, codes.InvalidArgument, errcode.Validation)
			if !namesField(err, tc.field) {
				t.Errorf("error %v (fields %v) does not name %q", err, errcode.FieldViolations(statusOf(err)), tc.field)
			}
		})
	}
}

// namesField reports whether err's field violations (or, for a message-level rule, its message)
// name field.
func namesField(err error, field string) bool {
	st := statusOf(err)
	for _, v := range errcode.FieldViolations(st) {
		if v.Field == field || strings.HasPrefix(v.Field, field+"[") || strings.HasPrefix(v.Field, field+".") {
			return true
		}
		if v.Field == "" && strings.Contains(v.Description, field) {
			return true
		}
	}
	return false
}
