package commands

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// SetUserCustomers answers like the auth service: the broker with the customers set.
func (f *fakeAuth) SetUserCustomers(ctx context.Context, r *authv1.SetUserCustomersRequest) (*authv1.SetUserCustomersResponse, error) {
	if err := f.enter(ctx, "SetUserCustomers", r); err != nil {
		return nil, err
	}
	return &authv1.SetUserCustomersResponse{User: &authv1.User{
		Id: r.GetId(), Email: "b@example.com", Role: authv1.Role_ROLE_BROKER, CustomerIds: r.GetCustomerIds(),
	}}, nil
}

const custB = "9a4d2c61-7e3b-4f08-b5a1-c3e9d7f20a03"

func TestUserCustomersAndAuditActor(t *testing.T) {
	env := startAuth(t)
	tests := []struct {
		name     string
		args     []string
		fail     error
		wantCode int
		wantOut  string
		wantErr  string
		want     proto.Message
	}{
		{
			name:    "customers",
			args:    []string{"user", "customers", userA, "--customer", custA, "--customer", custB},
			wantOut: "User customers set\nID: " + userA + "\nEmail: b@example.com\nRole: broker\nCustomers: " + custA + ", " + custB + "\n",
			want:    &authv1.SetUserCustomersRequest{Id: userA, CustomerIds: []string{custA, custB}},
		},
		{
			name:    "customers --none",
			args:    []string{"user", "customers", userA, "--none"},
			wantOut: "User customers set\nID: " + userA + "\nEmail: b@example.com\nRole: broker\nCustomers: -\n",
			want:    &authv1.SetUserCustomersRequest{Id: userA},
		},
		{name: "customers without any", args: []string{"user", "customers", userA}, wantCode: ExitUsage, wantErr: "--none"},
		{name: "customers and --none", args: []string{"user", "customers", userA, "--none", "--customer", custA}, wantCode: ExitUsage, wantErr: "exclude"},
		{name: "customers of a non-uuid", args: []string{"user", "customers", "123", "--customer", custA}, wantCode: ExitUsage, wantErr: `BROKER_USER_ID "123" is not a UUID`},
		{name: "customers with a bad customer", args: []string{"user", "customers", userA, "--customer", "x"}, wantCode: ExitUsage, wantErr: `--customer "x" is not a UUID`},
		{
			name:     "customers of a client",
			args:     []string{"user", "customers", userA, "--customer", custA},
			fail:     errcode.Error(errcode.Precondition, codes.FailedPrecondition, "only broker users have assigned customers"),
			wantCode: ExitError,
			wantErr:  "set customers:",
			want:     &authv1.SetUserCustomersRequest{Id: userA, CustomerIds: []string{custA}},
		},
		{
			name: "audit tail --actor",
			args: []string{"audit", "tail", "--actor", "operator/alice", "-n", "5"},
			want: &authv1.ListAuditEventsRequest{Actor: "operator/alice", PageSize: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.fake.reset()
			env.fake.setFail("SetUserCustomers", tt.fail)
			r := env.run(t, runOpts{}, tt.args...)
			r.check(t, tt.wantCode, tt.wantOut, tt.wantErr)
			checkSent(t, requests[proto.Message](env.fake), tt.want)
		})
	}
}
