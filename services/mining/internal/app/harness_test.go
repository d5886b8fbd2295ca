package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/service/servicetest"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/app"
)

// Identities with certificates from the harness CA.
var (
	operatorID = mtls.Operator("conformance")
	gatewayID  = mtls.Service("gateway")
)

// mesh is one running mining service (real wiring, real Postgres) with the stand-in auth that
// issues its credentials, and clients for the gateway and an operator.
type mesh struct {
	t    *testing.T
	h    *servicetest.Harness
	auth *servicetest.Auth
	gw   miningv1.MiningServiceClient // svc/gateway: calls need a credential (see as)
	op   miningv1.MiningServiceClient // operator/conformance: a full principal without a credential
}

// startMining runs the mining service against a fresh database, with env over the harness
// defaults.
func startMining(t *testing.T, env map[string]string) *mesh {
	t.Helper()
	base, certs := servicetest.Environment(t, app.Spec())
	auth := servicetest.StartAuth(t, certs, base["AUTH_GRPC_ADDR"])
	for k, v := range env {
		base[k] = v
	}
	cfg, err := app.LoadConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	h := servicetest.Start(t, app.Spec(), app.Register(cfg), base)
	h.Certs = certs
	return &mesh{
		t:    t,
		h:    h,
		auth: auth,
		gw:   miningv1.NewMiningServiceClient(h.Dial(gatewayID)),
		op:   miningv1.NewMiningServiceClient(h.Dial(operatorID)),
	}
}

// ctx returns a call context with a deadline.
func (m *mesh) ctx() context.Context {
	ctx, cancel := context.WithTimeout(m.t.Context(), 30*time.Second)
	m.t.Cleanup(cancel)
	return ctx
}

// as returns a call context carrying an access token for p, as the gateway forwards it.
func (m *mesh) as(p *authn.Principal) context.Context {
	tok := m.auth.Token(m.t, p, time.Now())
	return metadata.NewOutgoingContext(m.ctx(), metadata.Pairs("authorization", "Bearer "+tok))
}

// Principals of each role. Subjects are fixed uuids so tests read well.
func owner() *authn.Principal {
	return user("00000000-0000-4000-8000-000000000001", authn.RoleOwner, nil)
}

func admin() *authn.Principal {
	return user("00000000-0000-4000-8000-000000000002", authn.RoleAdmin, nil)
}

// client is a client user bound to customer.
func client(customer string) *authn.Principal {
	return user("00000000-0000-4000-8000-000000000003", authn.RoleClient, []string{customer})
}

// broker is a broker user assigned customers.
func broker(customers ...string) *authn.Principal {
	return user("00000000-0000-4000-8000-000000000004", authn.RoleBroker, customers)
}

func user(id, role string, customers []string) *authn.Principal {
	return &authn.Principal{
		Kind:         authn.KindUser,
		Subject:      id,
		Email:        role + "@example.test",
		Role:         role,
		Permissions:  authn.PermissionsForRole(role),
		AllCustomers: authn.RoleSeesAllCustomers(role),
		CustomerIDs:  customers,
	}
}

// Customers used across tests.
const (
	customerA = "aaaaaaaa-0000-4000-8000-00000000000a"
	customerB = "bbbbbbbb-0000-4000-8000-00000000000b"
)

// wantCode fails the test unless err is a status with code and HashInsight error code ec
// ("" skips the error-code check).
func wantCode(t *testing.T, err error, code codes.Code, ec errcode.Code) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("status %v (%v), want %v", st.Code(), err, code)
	}
	if ec != "" {
		if got, _ := errcode.FromStatus(st); got != ec {
			t.Fatalf("error code %s (%v), want %s", got, err, ec)
		}
	}
}

// wantField fails the test unless err has code (with its HashInsight error code: VALIDATION_001,
// CONFLICT_001 for AlreadyExists, AUTH_002 for PermissionDenied) and a field violation for field.
func wantField(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	ec := errcode.Validation
	switch code {
	case codes.AlreadyExists:
		ec = errcode.Conflict
	case codes.PermissionDenied:
		ec = errcode.AuthForbidden
	}
	wantCode(t, err, code, ec)
	st, _ := status.FromError(err)
	var fields []string
	for _, fv := range errcode.FieldViolations(st) {
		fields = append(fields, fv.Field)
	}
	if !slices.Contains(fields, field) {
		t.Fatalf("field violations %v (%v), want %q", fields, err, field)
	}
}
