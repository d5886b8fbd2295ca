package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gwconfig "github.com/hashinsight/platform/gateway/internal/config"
	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcserver"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/pkg/testkit/redistest"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testSecret = "0123456789abcdef0123456789abcdef-test"

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fakeAuth is an AuthService whose GetMe does what the test says and
// records the incoming metadata.
type fakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	mu    sync.Mutex
	getMe func(ctx context.Context) (*authv1.GetMeResponse, error)
	md    metadata.MD
	calls int
}

func (f *fakeAuth) GetMe(ctx context.Context, _ *authv1.GetMeRequest) (*authv1.GetMeResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.md = md
	f.calls++
	fn := f.getMe
	f.mu.Unlock()
	if fn == nil {
		return &authv1.GetMeResponse{Principal: &authv1.Principal{UserId: "u-1", Email: "owner@example.com"}}, nil
	}
	return fn(ctx)
}

func (f *fakeAuth) set(fn func(ctx context.Context) (*authv1.GetMeResponse, error)) {
	f.mu.Lock()
	f.getMe = fn
	f.mu.Unlock()
}

func (f *fakeAuth) getMeCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeAuth) metadata() metadata.MD {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.md
}

// fakeMining records UploadCollectorBatch calls.
type fakeMining struct {
	miningv1.UnimplementedMiningServiceServer
	mu  sync.Mutex
	req *miningv1.UploadCollectorBatchRequest
	md  metadata.MD
}

func (f *fakeMining) UploadCollectorBatch(ctx context.Context, req *miningv1.UploadCollectorBatchRequest) (*miningv1.UploadCollectorBatchResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.req, f.md = req, md
	f.mu.Unlock()
	if req.GetSiteId() == "site-bad-token" {
		return nil, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "invalid collector token")
	}
	return &miningv1.UploadCollectorBatchResponse{
		Success:    true,
		Received:   2,
		Online:     1,
		SiteId:     req.GetSiteId(),
		IngestedAt: timestamppb.New(time.Date(2026, 11, 24, 20, 41, 51, 0, time.UTC)),
		Stored:     2,
	}, nil
}

func (f *fakeMining) last() (*miningv1.UploadCollectorBatchRequest, metadata.MD) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.req, f.md
}

// backend is one service on a loopback port: pkg/grpcserver (mutual TLS,
// the real access policy from the proto options, protovalidate, health).
type backend struct {
	name   string
	addr   string
	health *health.Server
	cancel context.CancelFunc
	done   chan struct{} // closed when the server has stopped
}

// stop drains the server as SIGTERM would and waits until it is gone.
func (b *backend) stop() {
	b.cancel()
	<-b.done
}

// startBackend serves with identity id's certificate on a loopback port.
// svc names the service register adds (empty: health only); its access
// policy comes from the proto options, as in the real services.
func startBackend(t *testing.T, files devca.Files, name string, id mtls.Identity, svc protoreflect.FullName, register func(*grpc.Server)) *backend {
	t.Helper()
	src, err := mtls.NewSource(files.Config(id), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	policy := access.NewPolicy(nil)
	if svc != "" {
		if policy, err = access.Load(svc); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := grpcserver.New(grpcserver.Config{Service: name, TLS: src.ServerTLS(), Logger: quietLogger(), Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if register != nil {
		register(srv.GRPC())
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{name: name, addr: lis.Addr().String(), health: srv.Health(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		if err := srv.ServeListener(ctx, lis, nil); err != nil {
			t.Errorf("backend %s: %v", name, err)
		}
	}()
	t.Cleanup(b.stop)
	// ServeListener marks the server SERVING before it accepts calls.
	eventually(t, 5*time.Second, func() (bool, string) {
		resp, err := srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING, "not serving yet"
	})
	return b
}

// mesh is a gateway wired to five loopback backends.
type mesh struct {
	gw       *gateway
	server   *httptest.Server
	backends map[string]*backend
	auth     *fakeAuth
	mining   *fakeMining
	env      map[string]string // the gateway's environment
}

type meshOptions struct {
	env map[string]string
	// identities overrides the certificate identity a backend serves with.
	identities map[string]mtls.Identity
}

var meshIdentities = []mtls.Identity{
	mtls.Service("gateway"), mtls.Service("auth"), mtls.Service("mining"),
	mtls.Service("billing"), mtls.Service("sla"), mtls.Service("analytics"),
}

func newMesh(t *testing.T, o meshOptions) *mesh {
	t.Helper()
	files, err := devca.Ensure(t.TempDir(), meshIdentities)
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{backends: map[string]*backend{}, auth: &fakeAuth{}, mining: &fakeMining{}}
	for _, name := range gwconfig.BackendNames() {
		id := mtls.Service(name)
		if o.identities[name] != (mtls.Identity{}) {
			id = o.identities[name]
		}
		var (
			svc protoreflect.FullName
			reg func(*grpc.Server)
		)
		switch name {
		case "auth":
			svc = protoreflect.FullName(authv1.AuthService_ServiceDesc.ServiceName)
			reg = func(s *grpc.Server) { authv1.RegisterAuthServiceServer(s, m.auth) }
		case "mining":
			svc = protoreflect.FullName(miningv1.MiningService_ServiceDesc.ServiceName)
			reg = func(s *grpc.Server) { miningv1.RegisterMiningServiceServer(s, m.mining) }
		}
		m.backends[name] = startBackend(t, files, name, id, svc, reg)
	}
	gwLeaf := files.Leaves[mtls.Service("gateway")]
	env := map[string]string{
		"DATABASE_URL":          pgtest.AdminDSN(t),
		"SESSION_SECRET":        testSecret,
		"ENCRYPTION_PASSWORD":   testSecret,
		"REDIS_URL":             "memory",
		"MTLS_CA_CERT_PATH":     files.CACert,
		"MTLS_SERVER_CERT_PATH": gwLeaf.Cert,
		"MTLS_SERVER_KEY_PATH":  gwLeaf.Key,
		"GATEWAY_ADDR":          "127.0.0.1:0",
		"VERSION":               "test-1.2.3",
		"AUTH_GRPC_ADDR":        m.backends["auth"].addr,
		"MINING_GRPC_ADDR":      m.backends["mining"].addr,
		"BILLING_GRPC_ADDR":     m.backends["billing"].addr,
		"SLA_GRPC_ADDR":         m.backends["sla"].addr,
		"ANALYTICS_GRPC_ADDR":   m.backends["analytics"].addr,
	}
	for k, v := range o.env {
		env[k] = v
	}
	m.env = env
	m.gw, m.server = m.replica(t, quietLogger())
	return m
}

// replica builds another gateway with the mesh's configuration (another
// replica behind the same load balancer) and serves it.
func (m *mesh) replica(t *testing.T, logger *slog.Logger) (*gateway, *httptest.Server) {
	t.Helper()
	cfg, err := gwconfig.LoadFrom(m.env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	gw, err := build(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.close)
	srv := httptest.NewServer(gw.handler)
	t.Cleanup(srv.Close)
	return gw, srv
}

func (m *mesh) do(t *testing.T, method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, m.server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := m.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", d, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type detailed struct {
	Status    string `json:"status"`
	Timestamp string `json:"timestamp"`
	Database  string `json:"database"`
	Cache     string `json:"cache"`
	Version   string `json:"version"`
	Services  map[string]struct {
		Status    string  `json:"status"`
		LatencyMS float64 `json:"latency_ms"`
		Error     string  `json:"error"`
	} `json:"services"`
}

func TestHealth(t *testing.T) {
	m := newMesh(t, meshOptions{})

	resp, body := m.do(t, http.MethodGet, "/health", nil, nil)
	live := decode[map[string]any](t, body)
	if resp.StatusCode != http.StatusOK || live["status"] != "healthy" || live["version"] != "test-1.2.3" {
		t.Fatalf("/health = %d %s", resp.StatusCode, body)
	}
	if _, err := time.Parse(time.RFC3339, live["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}

	check := func(wantHTTP int, wantStatus string, wantServices map[string]string) {
		t.Helper()
		resp, body := m.do(t, http.MethodGet, "/health/detailed", nil, nil)
		d := decode[detailed](t, body)
		if resp.StatusCode != wantHTTP || d.Status != wantStatus {
			t.Fatalf("/health/detailed = %d %s, want %d %s", resp.StatusCode, body, wantHTTP, wantStatus)
		}
		if d.Database != "connected" || d.Cache != "memory" || d.Version != "test-1.2.3" {
			t.Errorf("database/cache/version = %s/%s/%s", d.Database, d.Cache, d.Version)
		}
		if len(d.Services) != 5 {
			t.Errorf("services = %v, want all five", d.Services)
		}
		for name, want := range wantServices {
			if got := d.Services[name].Status; got != want {
				t.Errorf("services.%s = %s, want %s (%s)", name, got, want, body)
			}
		}
	}

	all := map[string]string{"auth": "SERVING", "mining": "SERVING", "billing": "SERVING", "sla": "SERVING", "analytics": "SERVING"}
	check(http.StatusOK, "healthy", all)

	m.backends["mining"].health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	check(http.StatusServiceUnavailable, "unhealthy", map[string]string{"mining": "NOT_SERVING", "auth": "SERVING"})

	m.backends["mining"].health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	check(http.StatusOK, "healthy", all)

	m.backends["billing"].stop()
	check(http.StatusServiceUnavailable, "unhealthy", map[string]string{"billing": "UNREACHABLE", "mining": "SERVING"})
}

func TestHealthDatabaseDown(t *testing.T) {
	// A port nobody listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	m := newMesh(t, meshOptions{env: map[string]string{
		"DATABASE_URL": "postgres://nobody:secretpw@" + addr + "/none?sslmode=disable",
	}})
	resp, body := m.do(t, http.MethodGet, "/health/detailed", nil, nil)
	d := decode[detailed](t, body)
	if resp.StatusCode != http.StatusServiceUnavailable || d.Status != "unhealthy" || d.Database != "disconnected" {
		t.Fatalf("/health/detailed = %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "secretpw") {
		t.Errorf("body leaks the DSN: %s", body)
	}
	// Liveness does not depend on the database.
	if resp, _ := m.do(t, http.MethodGet, "/health", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/health = %d", resp.StatusCode)
	}
}

func TestBackendWithWrongIdentityIsRefused(t *testing.T) {
	// The process at AUTH_GRPC_ADDR presents svc/billing's certificate.
	m := newMesh(t, meshOptions{identities: map[string]mtls.Identity{"auth": mtls.Service("billing")}})
	resp, body := m.do(t, http.MethodGet, "/health/detailed", nil, nil)
	d := decode[detailed](t, body)
	if resp.StatusCode != http.StatusServiceUnavailable || d.Services["auth"].Status != "UNREACHABLE" || d.Services["billing"].Status != "SERVING" {
		t.Fatalf("/health/detailed = %d %s", resp.StatusCode, body)
	}
	resp, body = m.do(t, http.MethodGet, "/api/v1/auth/me", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /api/v1/auth/me = %d %s, want 503", resp.StatusCode, body)
	}
}

type errBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	GRPCCode  string `json:"grpc_code"`
	RequestID string `json:"request_id"`
}

// TestRESTErrors runs backend errors through the real stack: generated
// grpc-gateway handler → mTLS → backend → error handler.
func TestRESTErrors(t *testing.T) {
	m := newMesh(t, meshOptions{})
	tests := []struct {
		name       string
		err        error
		wantHTTP   int
		wantCode   string
		wantGRPC   string
		wantMsg    string
		retryAfter string
	}{
		{"unauthenticated", errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "login required"), 401, "AUTH_001", "UNAUTHENTICATED", "login required", ""},
		{"expired", errcode.Error(errcode.AuthExpired, codes.Unauthenticated, "token expired"), 401, "AUTH_003", "UNAUTHENTICATED", "token expired", ""},
		{"forbidden", status.Error(codes.PermissionDenied, "needs users:admin"), 403, "AUTH_002", "PERMISSION_DENIED", "needs users:admin", ""},
		{"invalid", errcode.Error(errcode.Validation, codes.InvalidArgument, "bad input"), 400, "VALIDATION_001", "INVALID_ARGUMENT", "bad input", ""},
		{"not found", status.Error(codes.NotFound, "no such user"), 404, "NOT_FOUND_001", "NOT_FOUND", "no such user", ""},
		{"conflict", status.Error(codes.AlreadyExists, "exists"), 409, "CONFLICT_001", "ALREADY_EXISTS", "exists", ""},
		{"rate limited", mustRetry(t, errcode.New(errcode.RateLimited, codes.ResourceExhausted, "slow down"), 3*time.Second), 429, "API_001", "RESOURCE_EXHAUSTED", "slow down", "3"},
		{"db down", errcode.Error(errcode.DBUnavailable, codes.Unavailable, "dial tcp 10.1.2.3:5432"), 503, "DB_001", "UNAVAILABLE", "Database connection failed", ""},
		{"internal", status.Error(codes.Internal, "nil pointer in store.go:12"), 500, "INTERNAL_001", "INTERNAL", "Internal error", ""},
		{"unimplemented", status.Error(codes.Unimplemented, "method GetMe not implemented"), 501, "UNIMPLEMENTED_001", "UNIMPLEMENTED", "Not implemented", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.auth.set(func(context.Context) (*authv1.GetMeResponse, error) { return nil, tt.err })
			resp, body := m.do(t, http.MethodGet, "/api/v1/auth/me", nil, map[string]string{"X-Request-ID": "rid-" + strings.ReplaceAll(tt.name, " ", "-")})
			if resp.StatusCode != tt.wantHTTP {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantHTTP, body)
			}
			e := decode[errBody](t, body)
			wantID := "rid-" + strings.ReplaceAll(tt.name, " ", "-")
			if e.Code != tt.wantCode || e.GRPCCode != tt.wantGRPC || e.Message != tt.wantMsg || e.RequestID != wantID {
				t.Errorf("body = %+v, want %s/%s/%q/%s", e, tt.wantCode, tt.wantGRPC, tt.wantMsg, wantID)
			}
			if got := resp.Header.Get("X-Request-ID"); got != wantID {
				t.Errorf("X-Request-ID = %q, want %q", got, wantID)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

func mustRetry(t *testing.T, st *status.Status, d time.Duration) error {
	t.Helper()
	return withRetryInfo(st, d)
}

// testJWT is JWT-shaped (the edge checks the shape only; services verify).
const testJWT = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJl"

func TestForwardedMetadata(t *testing.T) {
	m := newMesh(t, meshOptions{})
	resp, body := m.do(t, http.MethodGet, "/api/v1/auth/me", nil, map[string]string{
		"Authorization":          "Bearer " + testJWT,
		"X-Request-ID":           "req-abc",
		"X-Forwarded-For":        "6.6.6.6", // not trusted: ignored
		"Traceparent":            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Cookie":                 "session=stolen",
		"Grpc-Metadata-X-Role":   "owner",
		"X-Collector-Key":        "ck-1",
		"Grpc-Metadata-X-Req-Id": "spoof",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d %s", resp.StatusCode, body)
	}
	got := decode[map[string]any](t, body)
	if p, _ := got["principal"].(map[string]any); p["user_id"] != "u-1" {
		t.Errorf("body = %s, want proto field names", body)
	}
	md := m.auth.metadata()
	want := map[string]string{
		"authorization":   "Bearer " + testJWT,
		"x-request-id":    "req-abc",
		"x-forwarded-for": "127.0.0.1",
		"x-collector-key": "ck-1",
	}
	for k, v := range want {
		if vals := md.Get(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("metadata %s = %v, want [%s]", k, vals, v)
		}
	}
	// The trace continues the caller's trace (otelgrpc re-injects a child span).
	if tp := md.Get("traceparent"); len(tp) != 1 || !strings.HasPrefix(tp[0], "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("traceparent = %v", tp)
	}
	for _, k := range []string{"cookie", "x-role", "grpcgateway-cookie", "x-req-id"} {
		if vals := md.Get(k); len(vals) != 0 {
			t.Errorf("metadata %s = %v, want absent", k, vals)
		}
	}
}

func TestCollectorUpload(t *testing.T) {
	m := newMesh(t, meshOptions{env: map[string]string{"MAX_BODY_BYTES": "4096"}})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`[{"miner_id":"S19-1","timestamp":"2026-11-24T20:41:51.795363","online":true,"hashrate_ghs":95000}]`))
	_ = zw.Close()
	token, _, err := apikey.Generate("dev", apikey.KindCollector)
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{
		"Content-Type":     "application/octet-stream",
		"Content-Encoding": "gzip",
		"X-Collector-Key":  "site-token",
		"Authorization":    "Bearer " + token,
		"X-Site-ID":        "site-7",
		"X-Device-ID":      "dev-1",
		"X-Zone-ID":        "",
		"X-Upload-Mode":    "latest",
	}

	for _, path := range []string{"/api/collector/upload", "/api/edge/v1/telemetry/batch"} {
		t.Run(path, func(t *testing.T) {
			resp, body := m.do(t, http.MethodPost, path, bytes.NewReader(gz.Bytes()), headers)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d %s", resp.StatusCode, body)
			}
			out := decode[map[string]any](t, body)
			if out["success"] != true || out["received"] != float64(2) || out["online"] != float64(1) ||
				out["site_id"] != "site-7" || out["ingested_at"] != "2026-11-24T20:41:51Z" {
				t.Errorf("body = %s", body)
			}
			req, md := m.mining.last()
			if !bytes.Equal(req.GetBody(), gz.Bytes()) {
				t.Errorf("body forwarded = %d bytes, want the raw %d gzip bytes", len(req.GetBody()), gz.Len())
			}
			if req.GetSiteId() != "site-7" || req.GetDeviceId() != "dev-1" || req.GetZoneId() != "" ||
				req.GetUploadMode() != miningv1.UploadMode_UPLOAD_MODE_LATEST || req.GetContentEncoding() != "gzip" {
				t.Errorf("request = %v", req)
			}
			if v := md.Get("x-collector-key"); len(v) != 1 || v[0] != "site-token" {
				t.Errorf("x-collector-key = %v", v)
			}
			if v := md.Get("authorization"); len(v) != 1 || v[0] != "Bearer "+token {
				t.Errorf("authorization = %v", v)
			}
		})
	}

	errorCases := []struct {
		name     string
		header   map[string]string
		body     []byte
		wantHTTP int
		wantCode string
	}{
		{"missing site", map[string]string{"X-Site-ID": ""}, gz.Bytes(), 400, "VALIDATION_001"},
		{"bad mode", map[string]string{"X-Upload-Mode": "sometimes"}, gz.Bytes(), 400, "VALIDATION_001"},
		{"bad token", map[string]string{"X-Site-ID": "site-bad-token"}, gz.Bytes(), 401, "AUTH_001"},
		{"too large", nil, bytes.Repeat([]byte("x"), 5000), 413, "VALIDATION_001"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			for k, v := range headers {
				h[k] = v
			}
			for k, v := range tc.header {
				h[k] = v
			}
			resp, body := m.do(t, http.MethodPost, "/api/collector/upload", bytes.NewReader(tc.body), h)
			e := decode[errBody](t, body)
			if resp.StatusCode != tc.wantHTTP || e.Code != tc.wantCode || e.RequestID == "" {
				t.Errorf("= %d %s, want %d %s", resp.StatusCode, body, tc.wantHTTP, tc.wantCode)
			}
		})
	}
}

func TestBodyLimitOnRESTRoutes(t *testing.T) {
	m := newMesh(t, meshOptions{env: map[string]string{"MAX_BODY_BYTES": "64"}})
	big := `{"email":"` + strings.Repeat("a", 200) + `@example.com","password":"x"}`
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if chunked {
				body = io.MultiReader(strings.NewReader(big)) // unknown length: sent chunked
			}
			resp, b := m.do(t, http.MethodPost, "/api/v1/auth/login", body, map[string]string{"Content-Type": "application/json"})
			e := decode[errBody](t, b)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Code != "VALIDATION_001" {
				t.Errorf("= %d %s, want 413", resp.StatusCode, b)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	m := newMesh(t, meshOptions{})
	resp, body := m.do(t, http.MethodGet, "/api/v1/nope", nil, nil)
	if e := decode[errBody](t, body); resp.StatusCode != 404 || e.Code != "NOT_FOUND_001" || e.RequestID == "" {
		t.Errorf("unknown route = %d %s", resp.StatusCode, body)
	}
	resp, body = m.do(t, http.MethodGet, "/api/performance/clear-coalescing-cache", nil, nil)
	if e := decode[errBody](t, body); resp.StatusCode != 405 || e.RequestID == "" {
		t.Errorf("wrong method = %d %s", resp.StatusCode, body)
	}
}

func TestOpenAPI(t *testing.T) {
	m := newMesh(t, meshOptions{})
	resp, body := m.do(t, http.MethodGet, "/openapi.json", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("= %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc := decode[struct {
		Swagger string                     `json:"swagger"`
		Info    map[string]string          `json:"info"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}](t, body)
	if doc.Swagger != "2.0" || doc.Info["title"] != "HashInsight API" || doc.Info["version"] != "v1" {
		t.Errorf("header = %s %v", doc.Swagger, doc.Info)
	}
	for _, p := range []string{
		"/api/v1/auth/login", "/api/v1/users/{id}", // auth
		"/api/v1/miners", "/api/collector/upload", // mining
		"/api/v1/customers", "/api/v1/invoices:generate", // billing
		"/api/v1/sla/reports", // sla
		"/api/v1/dashboard",   // analytics
	} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("path %s missing", p)
		}
	}
}

func TestOpsEndpoints(t *testing.T) {
	m := newMesh(t, meshOptions{})
	// Some traffic for the SLO tracker.
	for range 3 {
		m.do(t, http.MethodGet, "/api/v1/auth/me", nil, nil)
	}

	resp, body := m.do(t, http.MethodGet, "/api/circuit-breakers", nil, nil)
	cbs := decode[map[string]map[string]any](t, body)
	if resp.StatusCode != 200 || len(cbs) != 5 {
		t.Fatalf("circuit breakers = %d %s", resp.StatusCode, body)
	}
	if a := cbs["auth"]; a["state"] != "closed" || a["total_calls"] != float64(3) || a["success_rate"] != "100.0%" {
		t.Errorf("auth breaker = %v", a)
	}

	resp, body = m.do(t, http.MethodGet, "/api/slo/status", nil, nil)
	sloStatus := decode[map[string]any](t, body)
	if resp.StatusCode != 200 || sloStatus["service"] != "gateway" || sloStatus["requests"].(float64) < 3 {
		t.Errorf("slo = %d %s", resp.StatusCode, body)
	}

	resp, body = m.do(t, http.MethodGet, "/api/cache/stats", nil, nil)
	cs := decode[map[string]any](t, body)
	for _, k := range []string{"cache_type", "hit_rate", "total_requests", "hits", "misses"} {
		if _, ok := cs[k]; !ok || resp.StatusCode != 200 {
			t.Errorf("cache stats %d lacks %s: %s", resp.StatusCode, k, body)
		}
	}
	if cs["cache_type"] != "memory" {
		t.Errorf("cache_type = %v", cs["cache_type"])
	}

	resp, body = m.do(t, http.MethodGet, "/api/cache/memory-stats", nil, nil)
	ms := decode[map[string]any](t, body)
	for _, k := range []string{"cache_type", "size_mb", "entries", "hit_rate", "evictions"} {
		if _, ok := ms[k]; !ok || resp.StatusCode != 200 {
			t.Errorf("memory stats %d lacks %s: %s", resp.StatusCode, k, body)
		}
	}

	// Coalescing: concurrent loads of one key share one load.
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			_, _ = m.gw.cache.GetOrLoad(context.Background(), "k", func(context.Context) ([]byte, error) {
				<-release
				return []byte("v"), nil
			})
		})
	}
	eventually(t, 5*time.Second, func() (bool, string) {
		s := m.gw.cache.CoalescingStats()
		return s.TotalRequests == 5, fmt.Sprint(s)
	})
	close(release)
	wg.Wait()

	resp, body = m.do(t, http.MethodGet, "/api/performance/coalescing-stats", nil, nil)
	co := decode[map[string]any](t, body)
	if resp.StatusCode != 200 || co["enabled"] != true || co["total_requests"] != float64(5) ||
		co["deduplicated_requests"] != float64(4) || co["performance_improvement"] != "5.0x" {
		t.Errorf("coalescing = %d %s", resp.StatusCode, body)
	}

	resp, body = m.do(t, http.MethodPost, "/api/performance/clear-coalescing-cache", nil, nil)
	if cl := decode[map[string]any](t, body); resp.StatusCode != 200 || cl["success"] != true {
		t.Errorf("clear = %d %s", resp.StatusCode, body)
	}
	_, body = m.do(t, http.MethodGet, "/api/performance/coalescing-stats", nil, nil)
	if co := decode[map[string]any](t, body); co["total_requests"] != float64(0) {
		t.Errorf("after clear = %s", body)
	}
}

func TestBreakerOpensOnUnavailableBackend(t *testing.T) {
	m := newMesh(t, meshOptions{})
	m.auth.set(func(context.Context) (*authv1.GetMeResponse, error) {
		return nil, status.Error(codes.Unavailable, "overloaded")
	})
	for i := range breakerFailureThreshold {
		if resp, body := m.do(t, http.MethodGet, "/api/v1/auth/me", nil, nil); resp.StatusCode != 503 {
			t.Fatalf("call %d = %d %s", i, resp.StatusCode, body)
		}
	}
	// Open: refused at the gateway without reaching auth.
	m.auth.set(func(context.Context) (*authv1.GetMeResponse, error) {
		t.Error("call reached the backend through an open breaker")
		return nil, status.Error(codes.Internal, "unexpected")
	})
	resp, body := m.do(t, http.MethodGet, "/api/v1/auth/me", nil, nil)
	e := decode[errBody](t, body)
	if resp.StatusCode != 503 || e.Code != "UNAVAILABLE_001" || e.GRPCCode != "UNAVAILABLE" {
		t.Errorf("open breaker = %d %s", resp.StatusCode, body)
	}
	_, body = m.do(t, http.MethodGet, "/api/circuit-breakers", nil, nil)
	cbs := decode[map[string]map[string]any](t, body)
	if cbs["auth"]["state"] != "open" || cbs["mining"]["state"] != "closed" {
		t.Errorf("breakers = %s", body)
	}
	// Health checks bypass the breaker: auth itself is still SERVING.
	_, body = m.do(t, http.MethodGet, "/health/detailed", nil, nil)
	if d := decode[detailed](t, body); d.Services["auth"].Status != "SERVING" {
		t.Errorf("health = %s", body)
	}
}

func TestClientErrorsDoNotTripBreaker(t *testing.T) {
	m := newMesh(t, meshOptions{})
	for _, err := range []error{
		status.Error(codes.NotFound, "x"),
		status.Error(codes.InvalidArgument, "x"),
		errcode.Error(errcode.RateLimited, codes.ResourceExhausted, "per-user limit"),
	} {
		m.auth.set(func(context.Context) (*authv1.GetMeResponse, error) { return nil, err })
		for range 2 * breakerFailureThreshold {
			m.do(t, http.MethodGet, "/api/v1/auth/me", nil, nil)
		}
	}
	if st := m.gw.breakers.Stats()["auth"]; st.State != "closed" || st.FailureCount != 0 {
		t.Errorf("auth breaker = %+v", st)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	m := newMesh(t, meshOptions{})
	m.do(t, http.MethodGet, "/api/v1/auth/me", nil, nil)
	m.do(t, http.MethodGet, "/health", nil, nil)
	srv := httptest.NewServer(m.gw.metricsHandler)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	for _, want := range []string{
		`hashinsight_requests_total{endpoint="/api/v1/auth/me",method="GET",service="gateway",status="200"} 1`,
		`hashinsight_request_latency_seconds_bucket{endpoint="/api/v1/auth/me"`,
		`hashinsight_circuit_breaker_state{name="auth",service="gateway"} 0`,
		`hashinsight_slo_compliance{service="gateway"`,
		`hashinsight_cache_hit_rate{cache="gateway",service="gateway"}`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q in\n%s", want, grepLines(text, "hashinsight_requests_total"))
		}
	}
	if strings.Contains(text, `endpoint="/health"`) {
		t.Errorf("health probes are metered")
	}
}

// TestGracefulShutdown: a request in flight when the context ends (SIGTERM)
// completes; serve returns nil; new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	m := newMesh(t, meshOptions{})
	started := make(chan struct{})
	release := make(chan struct{})
	m.auth.set(func(ctx context.Context) (*authv1.GetMeResponse, error) {
		close(started)
		<-release
		return &authv1.GetMeResponse{Principal: &authv1.Principal{UserId: "slow"}}, nil
	})

	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- m.gw.serve(ctx, listeners{http: httpLn, metrics: metricsLn}) }()

	url := "http://" + httpLn.Addr().String()
	type result struct {
		code int
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/api/v1/auth/me")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inflight <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-started
	cancel() // SIGTERM

	// The listener closes while the request is still in flight.
	eventually(t, 5*time.Second, func() (bool, string) {
		c, err := net.DialTimeout("tcp", httpLn.Addr().String(), 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return false, "still accepting"
		}
		return true, ""
	})
	close(release)
	r := <-inflight
	if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, "slow") {
		t.Fatalf("in-flight request = %d %q %v", r.code, r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve = %v", err)
	}
}

func withRetryInfo(st *status.Status, d time.Duration) error {
	s, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	if err != nil {
		panic(err)
	}
	return s.Err()
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// startRedis runs a throwaway redis-server and returns its URL and a function that stops it.
func startRedis(t *testing.T) (url string, stop func()) {
	s := redistest.Start(t)
	return s.URL(), s.Stop
}

func TestHealthCacheWithRedis(t *testing.T) {
	url, stop := startRedis(t)
	m := newMesh(t, meshOptions{env: map[string]string{"REDIS_URL": url}})

	resp, body := m.do(t, http.MethodGet, "/health/detailed", nil, nil)
	if d := decode[detailed](t, body); resp.StatusCode != 200 || d.Status != "healthy" || d.Cache != "available" {
		t.Fatalf("with redis: %d %s", resp.StatusCode, body)
	}
	_, body = m.do(t, http.MethodGet, "/api/cache/stats", nil, nil)
	if cs := decode[map[string]any](t, body); cs["cache_type"] != "redis" {
		t.Errorf("cache stats = %s", body)
	}

	stop()
	resp, body = m.do(t, http.MethodGet, "/health/detailed", nil, nil)
	if d := decode[detailed](t, body); resp.StatusCode != 200 || d.Status != "degraded" || d.Cache != "unavailable" {
		t.Fatalf("redis stopped: %d %s", resp.StatusCode, body)
	}
	_, body = m.do(t, http.MethodGet, "/api/cache/stats", nil, nil)
	if cs := decode[map[string]any](t, body); cs["cache_type"] != "memory" {
		t.Errorf("cache stats after outage = %s", body)
	}
}

func TestGatewayNeedsItsOwnIdentity(t *testing.T) {
	files, err := devca.Ensure(t.TempDir(), meshIdentities)
	if err != nil {
		t.Fatal(err)
	}
	leaf := files.Leaves[mtls.Service("auth")] // not svc/gateway
	cfg, err := gwconfig.LoadFrom(map[string]string{
		"DATABASE_URL":          "postgres://u:p@127.0.0.1:1/db",
		"SESSION_SECRET":        testSecret,
		"ENCRYPTION_PASSWORD":   testSecret,
		"REDIS_URL":             "memory",
		"MTLS_CA_CERT_PATH":     files.CACert,
		"MTLS_SERVER_CERT_PATH": leaf.Cert,
		"MTLS_SERVER_KEY_PATH":  leaf.Key,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := build(ctx, cfg, quietLogger()); err == nil || !strings.Contains(err.Error(), `want "svc/gateway"`) {
		t.Fatalf("build = %v, want an identity error", err)
	}
}
