// Package servicetest starts a service's real wiring (service.Run with its Spec and Register) over
// loopback mutual TLS against a real, throwaway Postgres database, and checks the guarantees every
// HashInsight service gives: callers without a certificate, with another CA's certificate or not on
// a method's allow-list are refused; every method enforces its declared permission (no credential
// AUTH_001, expired token AUTH_003, missing permission AUTH_002, the right permission passes);
// health and reflection answer; start-up refuses bad configuration naming the variable; a second
// start applies no migration and changes nothing.
//
// Services other than auth check credentials with a stand-in auth (StartAuth), whose Token and
// APIKey mint credentials for a service's own tests (tenancy, scopes).
package servicetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/pkg/testkit/freeport"
)

// Main runs the package's tests and stops the throwaway Postgres cluster afterwards.
func Main(m *testing.M) { pgtest.Main(m) }

// Identities used by the harness besides the service's own.
var (
	operator = mtls.Operator("conformance")
	gateway  = mtls.Service("gateway")
	intruder = mtls.Service("intruder")
)

// Harness is one running service.
type Harness struct {
	t        *testing.T
	Spec     service.Spec
	Certs    devca.Files
	Env      map[string]string
	GRPCAddr string
	HTTPAddr string
	Runtime  *service.Runtime

	stop func() int
}

// Start runs the service with env (over the harness defaults) until the test ends. It fails the
// test if the service does not become ready.
func Start(t *testing.T, spec service.Spec, register service.RegisterFunc, env map[string]string) *Harness {
	t.Helper()
	h := &Harness{t: t, Spec: spec, Env: env}
	h.GRPCAddr, h.HTTPAddr = env["GRPC_ADDR"], env["HTTP_ADDR"]

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *service.Runtime, 1)
	done := make(chan int, 1)
	var logs lockedBuffer
	go func() {
		done <- service.Run(ctx, spec, register, service.Options{
			Environ: env,
			Stderr:  &logs,
			Ready:   func(rt *service.Runtime) { ready <- rt },
		})
	}()
	select {
	case rt := <-ready:
		h.Runtime = rt
	case code := <-done:
		cancel()
		t.Fatalf("%s exited with %d before serving:\n%s", spec.Name, code, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("%s did not become ready in 30s:\n%s", spec.Name, logs.String())
	}
	var once sync.Once
	code := 0
	h.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", spec.Name)
				code = -1
			}
		})
		return code
	}
	t.Cleanup(func() { h.stop() })
	if err := waitServing(t, h); err != nil {
		t.Fatalf("%s: %v\n%s", spec.Name, err, logs.String())
	}
	return h
}

// Stop stops the service (as SIGTERM would) and returns its exit code.
func (h *Harness) Stop() int { return h.stop() }

// Dial connects to the service as id (a certificate from the harness CA).
func (h *Harness) Dial(id mtls.Identity) *grpc.ClientConn {
	h.t.Helper()
	src, err := mtls.NewSource(h.Certs.Config(id), nil)
	if err != nil {
		h.t.Fatalf("client source for %s: %v", id, err)
	}
	conn, err := grpcclient.Dial(context.Background(), h.GRPCAddr, src, mtls.Service(h.Spec.Name))
	if err != nil {
		h.t.Fatalf("dial as %s: %v", id, err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Environment returns a complete, valid environment for spec with fresh certificates, free
// loopback ports and a database owned by the service's own role.
func Environment(t *testing.T, spec service.Spec) (map[string]string, devca.Files) {
	t.Helper()
	dir := t.TempDir()
	certs, err := devca.Ensure(filepath.Join(dir, "certs"), []mtls.Identity{mtls.Service(spec.Name), operator, gateway, intruder})
	if err != nil {
		t.Fatalf("devca: %v", err)
	}
	db := pgtest.NewDatabase(t, pgtest.Options{Schema: spec.Name, Role: true})
	self := certs.Config(mtls.Service(spec.Name))
	return map[string]string{
		"DATABASE_URL":          db.DSN,
		"SESSION_SECRET":        strings.Repeat("s", 40),
		"ENCRYPTION_PASSWORD":   strings.Repeat("e", 40),
		"REDIS_URL":             "memory",
		"LOG_FORMAT":            "text",
		"LOG_LEVEL":             "warn",
		"MTLS_CA_CERT_PATH":     self.CACertPath,
		"MTLS_SERVER_CERT_PATH": self.CertPath,
		"MTLS_SERVER_KEY_PATH":  self.KeyPath,
		"GRPC_ADDR":             freeport.Addr(t),
		// Nothing listens here unless the test starts one (StartAuth): tests never reach a real auth.
		"AUTH_GRPC_ADDR":         freeport.Addr(t),
		"HTTP_ADDR":              freeport.Addr(t),
		"SHUTDOWN_DRAIN_TIMEOUT": "5s",
	}, certs
}

// Option adjusts Conformance.
type Option func(*options)

type options struct {
	allowEmptyOK map[string]bool
	env          map[string]string
}

// AllowEmptySuccess lists full method names ("/hashinsight.auth.v1.AuthService/GetSigningKeys")
// that may answer OK to an empty request from an allowed caller, because an empty request is a
// complete, meaningful one for them. Every other method must still refuse it.
func AllowEmptySuccess(methods ...string) Option {
	return func(o *options) {
		for _, m := range methods {
			o.allowEmptyOK[m] = true
		}
	}
}

// WithEnv adds (or overrides) environment variables of the service under test, e.g. a file path
// that must point into the test's temporary directory.
func WithEnv(env map[string]string) Option {
	return func(o *options) {
		for k, v := range env {
			o.env[k] = v
		}
	}
}

// Conformance runs every platform check against spec and register.
func Conformance(t *testing.T, spec service.Spec, register service.RegisterFunc, opts ...Option) {
	o := options{allowEmptyOK: map[string]bool{}, env: map[string]string{}}
	for _, opt := range opts {
		opt(&o)
	}
	env, certs := Environment(t, spec)
	for k, v := range o.env {
		env[k] = v
	}
	var auth *Auth
	if spec.Name != "auth" { // auth checks credentials in-process
		auth = StartAuth(t, certs, env["AUTH_GRPC_ADDR"])
	}

	t.Run("config errors name the variable", func(t *testing.T) { checkConfigErrors(t, spec, register, env) })

	h := Start(t, spec, register, env)
	h.Certs = certs
	wantMigrations := countMigrations(t, spec)
	if h.Runtime.Migrated != wantMigrations {
		t.Errorf("first start applied %d migrations, want %d", h.Runtime.Migrated, wantMigrations)
	}

	t.Run("refuses a client without a certificate", func(t *testing.T) { checkNoCertificate(t, h) })
	t.Run("refuses a certificate from another CA", func(t *testing.T) { checkOtherCA(t, h) })
	t.Run("allow-lists every method", func(t *testing.T) { checkAllowLists(t, h, o.allowEmptyOK) })
	t.Run("authenticates every method", func(t *testing.T) { checkAuthentication(t, h, auth) })
	t.Run("health and reflection", func(t *testing.T) { checkHealthAndReflection(t, h) })
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, h) })

	before := schemaSnapshot(t, h)
	if code := h.Stop(); code != 0 {
		t.Fatalf("first run exited with %d, want a clean drain (0)", code)
	}
	t.Run("second start applies no migration and changes nothing", func(t *testing.T) {
		h2 := Start(t, spec, register, env)
		h2.Certs = certs
		if h2.Runtime.Migrated != 0 {
			t.Errorf("second start applied %d migrations, want 0", h2.Runtime.Migrated)
		}
		if after := schemaSnapshot(t, h2); after != before {
			t.Errorf("schema changed by a second start:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

func checkConfigErrors(t *testing.T, spec service.Spec, register service.RegisterFunc, env map[string]string) {
	cases := []struct {
		name string
		edit func(map[string]string)
		want string
	}{
		{"missing DATABASE_URL", func(e map[string]string) { delete(e, "DATABASE_URL") }, "DATABASE_URL"},
		{"20-character SESSION_SECRET", func(e map[string]string) { e["SESSION_SECRET"] = strings.Repeat("x", 20) }, "SESSION_SECRET"},
		{"missing ENCRYPTION_PASSWORD", func(e map[string]string) { delete(e, "ENCRYPTION_PASSWORD") }, "ENCRYPTION_PASSWORD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := clone(env)
			tc.edit(e)
			var stderr bytes.Buffer
			code := service.Run(t.Context(), spec, register, service.Options{Environ: e, Stderr: &stderr})
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("message %q does not name %s", stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), strings.Repeat("x", 20)) {
				t.Errorf("message leaks the secret value: %q", stderr.String())
			}
		})
	}
}

func checkNoCertificate(t *testing.T, h *Harness) {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(h.Certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13})
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	expectRefused(t, conn)
}

func checkOtherCA(t *testing.T, h *Harness) {
	other, err := devca.Ensure(filepath.Join(t.TempDir(), "other-ca"), []mtls.Identity{operator})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(other.Config(operator).CertPath, other.Config(operator).KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(h.Certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	creds := credentials.NewTLS(&tls.Config{
		RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
	})
	conn, err := grpc.NewClient(h.GRPCAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	expectRefused(t, conn)
}

// expectRefused checks that a health check over conn fails: the handshake is rejected, so no RPC
// ever reaches the server.
func expectRefused(t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		t.Fatal("health check succeeded; want the connection refused")
	}
	if c := status.Code(err); c != codes.Unavailable {
		t.Errorf("code %v, want Unavailable (handshake refused): %v", c, err)
	}
}

func checkAllowLists(t *testing.T, h *Harness, allowEmptyOK map[string]bool) {
	policy, err := access.Load(h.Spec.Services...)
	if err != nil {
		t.Fatal(err)
	}
	conns := map[mtls.Identity]*grpc.ClientConn{}
	conn := func(id mtls.Identity) *grpc.ClientConn {
		if c, ok := conns[id]; ok {
			return c
		}
		c := h.Dial(id)
		conns[id] = c
		return c
	}
	methods := policy.Methods()
	if len(methods) == 0 {
		t.Fatal("the service declares no methods")
	}
	for _, full := range methods {
		rule, _ := policy.Rule(full)
		md := methodDescriptor(t, full)
		t.Run(strings.TrimPrefix(full, "/"), func(t *testing.T) {
			denied, ok := firstNotMatching(rule.Callers, intruder, operator, gateway)
			if ok {
				code := invoke(t, conn(denied), full, md)
				if code != codes.PermissionDenied {
					t.Errorf("caller %s not on the allow-list %v got %v, want PermissionDenied", denied, rule.Callers, code)
				}
			}
			allowed, ok := firstMatching(rule.Callers, gateway, operator, intruder)
			if !ok {
				t.Fatalf("no harness identity is on the allow-list %v", rule.Callers)
			}
			code := invoke(t, conn(allowed), full, md)
			if code == codes.PermissionDenied || code == codes.Unavailable {
				t.Errorf("caller %s on the allow-list %v got %v", allowed, rule.Callers, code)
			}
			if code == codes.OK && !allowEmptyOK[full] {
				t.Errorf("an empty request to %s succeeded; nothing is built yet that could answer it", full)
			}
		})
	}
}

// checkAuthentication calls every method with each kind of credential. With auth nil (the auth
// service itself, whose keys the harness cannot sign with) only the no-credential case is checked.
func checkAuthentication(t *testing.T, h *Harness, auth *Auth) {
	policy, err := access.Load(h.Spec.Services...)
	if err != nil {
		t.Fatal(err)
	}
	conns := map[mtls.Identity]*grpc.ClientConn{}
	conn := func(id mtls.Identity) *grpc.ClientConn {
		if c, ok := conns[id]; ok {
			return c
		}
		c := h.Dial(id)
		conns[id] = c
		return c
	}
	now := time.Now()
	user := func(perms []string) *authn.Principal {
		return &authn.Principal{
			Kind: authn.KindUser, Subject: "6f1d2c3b-4a59-4e7d-8c1b-2a3f4e5d6c7b", Email: "conformance@example.com",
			Role: authn.RoleOwner, Permissions: perms, AllCustomers: true,
		}
	}
	without := func(perm string) []string {
		var out []string
		for _, p := range authn.AllPermissions() {
			if p != perm {
				out = append(out, p)
			}
		}
		return out
	}
	for _, full := range policy.Methods() {
		rule, _ := policy.Rule(full)
		md := methodDescriptor(t, full)
		t.Run(strings.TrimPrefix(full, "/"), func(t *testing.T) {
			caller, ok := firstMatching(rule.Callers, gateway, intruder, operator)
			if !ok {
				t.Fatalf("no harness identity is on the allow-list %v", rule.Callers)
			}
			type credCase struct {
				name, cred string
				want       errcode.Code // "": must not be an authentication or permission error
			}
			var cases []credCase
			if caller == gateway { // only the edge without a credential is nobody
				want := errcode.AuthRequired
				if rule.Public {
					want = ""
				}
				cases = append(cases, credCase{"no credential", "", want})
			}
			if auth != nil && !rule.Public {
				cases = append(cases,
					credCase{"expired token", auth.Token(t, user(authn.AllPermissions()), now.Add(-time.Hour)), errcode.AuthExpired},
					credCase{"right permission", auth.Token(t, user([]string{rule.Permission}), now), ""},
				)
				if rule.Permission != authn.PermSelf { // every principal holds self
					cases = append(cases, credCase{"missing permission", auth.Token(t, user(without(rule.Permission)), now), errcode.AuthForbidden})
				}
			}
			for _, c := range cases {
				ctx := t.Context()
				if c.cred != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.cred)
				}
				err := invokeErr(ctx, t, conn(caller), full, md)
				got := errcode.FromError(err)
				switch {
				case c.want != "" && got != c.want:
					t.Errorf("%s as %s: %v (%s), want %s", c.name, caller, status.Code(err), got, c.want)
				case c.want == "" && (got == errcode.AuthRequired || got == errcode.AuthExpired || got == errcode.AuthForbidden || status.Code(err) == codes.Unavailable):
					t.Errorf("%s as %s: %v, want no authentication error", c.name, caller, err)
				}
			}
		})
	}
}

func checkHealthAndReflection(t *testing.T, h *Harness) {
	conn := h.Dial(operator)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(conn)
	for _, name := range append([]string{""}, fullNames(h.Spec.Services)...) {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v, want SERVING", name, resp.GetStatus(), err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		listed[s.GetName()] = true
	}
	for _, want := range append(fullNames(h.Spec.Services), "grpc.health.v1.Health") {
		if !listed[want] {
			t.Errorf("reflection does not list %s (got %v)", want, listed)
		}
	}
}

func checkMetrics(t *testing.T, h *Harness) {
	resp, err := http.Get("http://" + h.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`hashinsight_requests_total{`,
		`hashinsight_request_latency_seconds_bucket{`,
		`hashinsight_db_query_duration_seconds_bucket{`,
		`hashinsight_db_connection_pool_size{`,
		fmt.Sprintf(`service="%s"`, h.Spec.Name),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// invoke calls method with an empty request and returns the status code.
func invoke(t *testing.T, conn *grpc.ClientConn, full string, md protoreflect.MethodDescriptor) codes.Code {
	t.Helper()
	return status.Code(invokeErr(t.Context(), t, conn, full, md))
}

// invokeErr calls method with an empty request and returns its error (nil for OK).
func invokeErr(ctx context.Context, t *testing.T, conn *grpc.ClientConn, full string, md protoreflect.MethodDescriptor) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	in, out := dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output())
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return conn.Invoke(ctx, full, in, out)
	}
	desc := &grpc.StreamDesc{ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer()}
	stream, err := conn.NewStream(ctx, desc, full)
	if err != nil {
		return err
	}
	_ = stream.SendMsg(in) // a refused stream reports its status on RecvMsg
	_ = stream.CloseSend()
	for {
		if err := stream.RecvMsg(out); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func methodDescriptor(t *testing.T, full string) protoreflect.MethodDescriptor {
	t.Helper()
	name := strings.Replace(strings.TrimPrefix(full, "/"), "/", ".", 1)
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatalf("descriptor of %s: %v", full, err)
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		t.Fatalf("%s is not a method", full)
	}
	return md
}

func firstNotMatching(patterns []string, ids ...mtls.Identity) (mtls.Identity, bool) {
	for _, id := range ids {
		if !mtls.MatchAny(patterns, id) {
			return id, true
		}
	}
	return mtls.Identity{}, false
}

func firstMatching(patterns []string, ids ...mtls.Identity) (mtls.Identity, bool) {
	for _, id := range ids {
		if mtls.MatchAny(patterns, id) {
			return id, true
		}
	}
	return mtls.Identity{}, false
}

// schemaSnapshot lists the service schema's tables, columns, indexes and migration versions.
func schemaSnapshot(t *testing.T, h *Harness) string {
	t.Helper()
	rows, err := h.Runtime.DB.Query(t.Context(), `
		SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
		  FROM information_schema.columns WHERE table_schema = $1
		UNION ALL
		SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = $1
		ORDER BY 1`, h.Spec.Name)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var versions string
	err = h.Runtime.DB.QueryRow(t.Context(), fmt.Sprintf(
		`SELECT coalesce(string_agg(version_id::text || ':' || is_applied::text, ',' ORDER BY id), '') FROM %s.goose_db_version`,
		h.Spec.Name)).Scan(&versions)
	if err != nil {
		t.Fatalf("snapshot versions: %v", err)
	}
	b.WriteString("versions " + versions + "\n")
	return b.String()
}

func countMigrations(t *testing.T, spec service.Spec) int {
	t.Helper()
	matches, err := fs.Glob(spec.Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return len(matches)
}

func waitServing(t *testing.T, h *Harness) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", h.GRPCAddr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gRPC port %s not accepting: %w", h.GRPCAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fullNames(names []protoreflect.FullName) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = string(n)
	}
	return out
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
