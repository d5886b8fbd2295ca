package app_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/service/servicetest"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	"github.com/hashinsight/platform/services/auth/internal/app"
)

// Identities with certificates from the harness CA.
var (
	operatorID = mtls.Operator("conformance")
	gatewayID  = mtls.Service("gateway")
)

// mesh is one running auth service with clients for the gateway and an operator.
type mesh struct {
	t  *testing.T
	h  *servicetest.Harness
	gw authv1.AuthServiceClient // svc/gateway: no principal without a credential
	op authv1.AuthServiceClient // operator/conformance: an operator principal without a credential
}

// startAuth runs the real wiring of the auth service (service.Run + app.Register) against a fresh
// database, with env over the harness defaults.
func startAuth(t *testing.T, env map[string]string) *mesh {
	t.Helper()
	base, certs := servicetest.Environment(t, app.Spec())
	base["AUDIT_LOG_PATH"] = filepath.Join(t.TempDir(), "audit.jsonl")
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
		t:  t,
		h:  h,
		gw: authv1.NewAuthServiceClient(h.Dial(gatewayID)),
		op: authv1.NewAuthServiceClient(h.Dial(operatorID)),
	}
}

// ctx returns a call context with a deadline.
func (m *mesh) ctx() context.Context {
	ctx, cancel := context.WithTimeout(m.t.Context(), 20*time.Second)
	m.t.Cleanup(cancel)
	return ctx
}

// as returns a call context carrying "authorization: Bearer <cred>" (as the gateway forwards it)
// and the client IP the gateway resolved.
func (m *mesh) as(cred string) context.Context {
	return m.from(cred, "198.51.100.1")
}

// from is as with an explicit client IP.
func (m *mesh) from(cred, ip string) context.Context {
	kv := []string{"x-forwarded-for", ip}
	if cred != "" {
		kv = append(kv, "authorization", "Bearer "+cred)
	}
	return metadata.NewOutgoingContext(m.ctx(), metadata.Pairs(kv...))
}

// login logs in through the gateway and returns the token pair.
func (m *mesh) login(email, password string) *authv1.TokenPair {
	m.t.Helper()
	resp, err := m.gw.Login(m.from("", "203.0.113.250"), &authv1.LoginRequest{Email: email, Password: password})
	if err != nil {
		m.t.Fatalf("login %s: %v", email, err)
	}
	return resp.GetTokens()
}

// createUser creates a user as the holder of cred (operator certificate when cred is "").
func (m *mesh) createUser(cred string, req *authv1.CreateUserRequest) *authv1.User {
	m.t.Helper()
	c, ctx := m.gw, m.as(cred)
	if cred == "" {
		c, ctx = m.op, m.ctx()
	}
	resp, err := c.CreateUser(ctx, req)
	if err != nil {
		m.t.Fatalf("create user %s: %v", req.GetEmail(), err)
	}
	return resp.GetUser()
}

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

// retryDelay returns the RetryInfo delay of err, or 0.
func retryDelay(err error) time.Duration {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const day = 24 * time.Hour

// restart starts the auth service again on m's database and certificates.
func restart(t *testing.T, m *mesh, cfg app.Config) *mesh {
	t.Helper()
	h := servicetest.Start(t, app.Spec(), app.Register(cfg), m.h.Env)
	h.Certs = m.h.Certs
	return &mesh{
		t:  t,
		h:  h,
		gw: authv1.NewAuthServiceClient(h.Dial(gatewayID)),
		op: authv1.NewAuthServiceClient(h.Dial(operatorID)),
	}
}
