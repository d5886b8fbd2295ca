package grpcserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcserver"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

// ---- a tiny hand-registered test service over dynamic messages ----

const svcName = "hashinsight.test.v1.TestService"

func method(name string) string { return "/" + svcName + "/" + name }

var echoDesc = buildEchoDescriptor()

// buildEchoDescriptor builds message hashinsight.test.v1.EchoMessage
// { string name = 1 [(buf.validate.field).string.min_len = 1]; }.
func buildEchoDescriptor() protoreflect.MessageDescriptor {
	fieldOpts := &descriptorpb.FieldOptions{}
	proto.SetExtension(fieldOpts, validate.E_Field, &validate.FieldRules{
		Type: &validate.FieldRules_String_{String_: &validate.StringRules{MinLen: proto.Uint64(1)}},
	})
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("hashinsight/test/v1/test.proto"),
		Package:    proto.String("hashinsight.test.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"buf/validate/validate.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("EchoMessage"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:     proto.String("name"),
				JsonName: proto.String("name"),
				Number:   proto.Int32(1),
				Type:     descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				Options:  fieldOpts,
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	return fd.Messages().Get(0)
}

func newEcho(name string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(echoDesc)
	if name != "" {
		m.Set(echoDesc.Fields().ByName("name"), protoreflect.ValueOfString(name))
	}
	return m
}

func nameOf(m *dynamicpb.Message) string {
	return m.Get(echoDesc.Fields().ByName("name")).String()
}

type principalKey struct{}

// testService implements the methods of TestService.
type testService struct {
	gate    chan struct{} // Slow blocks until closed
	started chan struct{} // Slow signals each start
	err     error         // returned by Fail
}

func newTestService() *testService {
	return &testService{gate: make(chan struct{}), started: make(chan struct{}, 100)}
}

func (s *testService) unary(name string) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			req := newEcho("")
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, r any) (any, error) { return s.handle(ctx, name, r.(*dynamicpb.Message)) }
			if ic == nil {
				return h(ctx, req)
			}
			return ic(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: method(name)}, h)
		},
	}
}

func (s *testService) handle(ctx context.Context, name string, req *dynamicpb.Message) (any, error) {
	switch name {
	case "Echo", "OperatorsOnly", "Unruled":
		out := nameOf(req)
		if p, ok := ctx.Value(principalKey{}).(string); ok {
			out += " as " + p
		}
		return newEcho(out), nil
	case "Panic":
		panic("secret panic text: password=hunter2")
	case "Fail":
		return nil, s.err
	case "Slow":
		s.started <- struct{}{}
		select {
		case <-s.gate:
			return newEcho("done"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, status.Error(codes.Unimplemented, name)
}

func (s *testService) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: svcName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			s.unary("Echo"), s.unary("OperatorsOnly"), s.unary("Unruled"),
			s.unary("Panic"), s.unary("Fail"), s.unary("Slow"),
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "List",
			ServerStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				req := newEcho("")
				if err := stream.RecvMsg(req); err != nil {
					return err
				}
				for i := range 3 {
					if err := stream.SendMsg(newEcho(fmt.Sprintf("%s-%d", nameOf(req), i))); err != nil {
						return err
					}
				}
				return nil
			},
		}},
	}
}

var testMethods = []string{"Echo", "OperatorsOnly", "Unruled", "Panic", "Fail", "Slow", "List"}

func testPolicy() *access.Policy {
	gw := []string{"svc/gateway", "operator/*"}
	return access.NewPolicy(map[string]access.Rule{
		method("Echo"):          {Permission: "test:read", Callers: gw},
		method("OperatorsOnly"): {Permission: "test:admin", Callers: []string{"operator/*"}},
		method("Panic"):         {Permission: "test:read", Callers: gw},
		method("Fail"):          {Permission: "test:read", Callers: gw},
		method("Slow"):          {Permission: "test:read", Callers: gw},
		method("List"):          {Permission: "test:read", Callers: gw},
		// Unruled has no rule on purpose.
	})
}

// ---- PKI and harness ----

var (
	idServer   = mtls.Service("mining")
	idGateway  = mtls.Service("gateway")
	idBilling  = mtls.Service("billing")
	idOperator = mtls.Operator("alice")
	idAuth     = mtls.Service("auth")
)

type pki struct {
	files devca.Files
	other devca.Files // a CA the server does not trust
}

func newPKI(t *testing.T) pki {
	t.Helper()
	files, err := devca.Ensure(t.TempDir(), []mtls.Identity{idServer, idGateway, idBilling, idOperator, idAuth})
	if err != nil {
		t.Fatal(err)
	}
	other, err := devca.Ensure(t.TempDir(), []mtls.Identity{idGateway})
	if err != nil {
		t.Fatal(err)
	}
	return pki{files: files, other: other}
}

func (p pki) source(t *testing.T, files devca.Files, id mtls.Identity) *mtls.Source {
	t.Helper()
	src, err := mtls.NewSource(files.Config(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	t       *testing.T
	pki     pki
	srv     *grpcserver.Server
	svc     *testService
	addr    string
	httpURL string
	cancel  context.CancelFunc
	done    chan error
	logs    *syncBuffer
}

func start(t *testing.T, edit func(*grpcserver.Config)) *harness {
	t.Helper()
	return startWith(t, edit, nil)
}

// startWith is start with extra services registered by register.
func startWith(t *testing.T, edit func(*grpcserver.Config), register func(*grpc.Server)) *harness {
	t.Helper()
	p := newPKI(t)
	logs := &syncBuffer{}
	cfg := grpcserver.Config{
		Service:      "mining",
		TLS:          p.source(t, p.files, idServer).ServerTLS(),
		Logger:       slog.New(slog.NewJSONHandler(io.MultiWriter(logs, testWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Policy:       testPolicy(),
		DrainTimeout: 10 * time.Second,
		Version:      "test",
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := grpcserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := newTestService()
	srv.GRPC().RegisterService(svc.desc(), svc)
	if register != nil {
		register(srv.GRPC())
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{
		t: t, pki: p, srv: srv, svc: svc, logs: logs, cancel: cancel,
		addr: lis.Addr().String(), httpURL: "http://" + httpLis.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { h.done <- srv.ServeListener(ctx, lis, httpLis) }()
	t.Cleanup(func() {
		cancel()
		h.release()
		select {
		case <-h.done:
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return")
		}
	})
	eventually(t, 5*time.Second, func() bool { return h.httpStatus("/readyz") == http.StatusOK })
	return h
}

// testWriter forwards logs to t.Log only when -v asks for them.
func testWriter(t *testing.T) io.Writer {
	if !testing.Verbose() {
		return io.Discard
	}
	return writerFunc(func(p []byte) (int, error) { t.Log(strings.TrimSpace(string(p))); return len(p), nil })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var releaseMu sync.Mutex

func (h *harness) release() {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	select {
	case <-h.svc.gate:
	default:
		close(h.svc.gate)
	}
}

func (h *harness) httpStatus(path string) int {
	resp, err := http.Get(h.httpURL + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (h *harness) httpBody(path string) string {
	h.t.Helper()
	resp, err := http.Get(h.httpURL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func (h *harness) dialTLS(cfg *tls.Config) *grpc.ClientConn {
	h.t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// dial connects as id with a certificate of the trusted CA.
func (h *harness) dial(id mtls.Identity) *grpc.ClientConn {
	h.t.Helper()
	return h.dialTLS(h.pki.source(h.t, h.pki.files, id).ClientTLS(idServer))
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func echo(ctx context.Context, conn *grpc.ClientConn, m, name string) (string, error) {
	resp := newEcho("")
	if err := conn.Invoke(ctx, method(m), newEcho(name), resp); err != nil {
		return "", err
	}
	return nameOf(resp), nil
}

func eventually(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before deadline")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func reasonOf(err error) string {
	info := errcode.ErrorInfo(status.Convert(err))
	if info == nil {
		return ""
	}
	return info.GetReason()
}

// ---- tests ----

func TestNewValidatesConfig(t *testing.T) {
	p := newPKI(t)
	tlsCfg := p.source(t, p.files, idServer).ServerTLS()
	tests := []struct {
		name string
		cfg  grpcserver.Config
		want string
	}{
		{"no service", grpcserver.Config{TLS: tlsCfg, Policy: testPolicy()}, "Service"},
		{"no TLS", grpcserver.Config{Service: "x", Policy: testPolicy()}, "TLS"},
		{"no policy", grpcserver.Config{Service: "x", TLS: tlsCfg}, "Policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := grpcserver.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mentioning %s", err, tt.want)
			}
		})
	}
}

func TestServeListenError(t *testing.T) {
	p := newPKI(t)
	srv, err := grpcserver.New(grpcserver.Config{Service: "x", Addr: "256.0.0.1:bad", TLS: p.source(t, p.files, idServer).ServerTLS(), Policy: testPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background()); err == nil {
		t.Fatal("Serve with a bad address succeeded")
	}
}

func TestRefusesClientsWithoutTrustedCertificate(t *testing.T) {
	h := start(t, nil)
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(h.pki.files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	leaf := func(files devca.Files, id mtls.Identity) []tls.Certificate {
		lf := devca.LeafPaths(files.Dir, id)
		c, err := tls.LoadX509KeyPair(lf.Cert, lf.Key)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	// Every client trusts the server; only its own certificate differs, so a
	// failure is the server refusing it.
	tests := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"trusted certificate (control)", leaf(h.pki.files, idGateway), true},
		{"no certificate", nil, false},
		{"certificate from another CA", leaf(h.pki.other, idGateway), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := h.dialTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: tt.certs, MinVersion: tls.VersionTLS13})
			_, err := echo(callCtx(t), conn, "Echo", "hi")
			if tt.ok {
				if err != nil {
					t.Fatalf("control call failed: %v", err)
				}
				return
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("err = %v, want Unavailable (handshake refused)", err)
			}
			// Health is refused too: no verified identity, no service.
			_, err = healthpb.NewHealthClient(conn).Check(callCtx(t), &healthpb.HealthCheckRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("health err = %v, want Unavailable", err)
			}
		})
	}
}

func TestAccessPolicy(t *testing.T) {
	h := start(t, nil)
	tests := []struct {
		name     string
		caller   mtls.Identity
		method   string
		wantCode codes.Code
	}{
		{"gateway may call Echo", idGateway, "Echo", codes.OK},
		{"operator wildcard may call Echo", idOperator, "Echo", codes.OK},
		{"billing is not on Echo's allow-list", idBilling, "Echo", codes.PermissionDenied},
		{"gateway is not on OperatorsOnly's allow-list", idGateway, "OperatorsOnly", codes.PermissionDenied},
		{"operator may call OperatorsOnly", idOperator, "OperatorsOnly", codes.OK},
		{"method without a rule is denied", idGateway, "Unruled", codes.PermissionDenied},
		{"method without a rule is denied to operators", idOperator, "Unruled", codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := echo(callCtx(t), h.dial(tt.caller), tt.method, "hi")
			if status.Code(err) != tt.wantCode {
				t.Fatalf("err = %v, want %v", err, tt.wantCode)
			}
			if tt.wantCode == codes.PermissionDenied && reasonOf(err) != string(errcode.AuthForbidden) {
				t.Fatalf("ErrorInfo reason = %q, want AUTH_002", reasonOf(err))
			}
			if tt.wantCode == codes.OK && got != "hi" {
				t.Fatalf("reply = %q", got)
			}
		})
	}

	t.Run("health and reflection are open to any verified peer", func(t *testing.T) {
		conn := h.dial(idBilling)
		resp, err := healthpb.NewHealthClient(conn).Check(callCtx(t), &healthpb.HealthCheckRequest{Service: svcName})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health = %v, %v", resp, err)
		}
		stream, err := conn.NewStream(callCtx(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
			"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if err := stream.RecvMsg(newEcho("")); err != io.EOF {
			t.Fatalf("reflection stream: %v, want clean EOF", err)
		}
	})

	streamTests := []struct {
		name     string
		caller   mtls.Identity
		wantCode codes.Code
	}{
		{"stream allowed", idGateway, codes.OK},
		{"stream denied", idBilling, codes.PermissionDenied},
	}
	for _, tt := range streamTests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := h.dial(tt.caller).NewStream(callCtx(t), &grpc.StreamDesc{ServerStreams: true}, method("List"))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(newEcho("x")); err != nil {
				t.Fatal(err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for {
				m := newEcho("")
				err := stream.RecvMsg(m)
				if err == io.EOF {
					break
				}
				if err != nil {
					if status.Code(err) != tt.wantCode || reasonOf(err) != string(errcode.AuthForbidden) {
						t.Fatalf("err = %v, want %v AUTH_002", err, tt.wantCode)
					}
					return
				}
				got = append(got, nameOf(m))
			}
			if tt.wantCode != codes.OK || strings.Join(got, ",") != "x-0,x-1,x-2" {
				t.Fatalf("got %v, want code %v", got, tt.wantCode)
			}
		})
	}
}

// principal is a PrincipalAuthenticator that wants an "authorization" header
// on non-public methods.
type principal struct {
	mu    sync.Mutex
	rules []access.Rule
	ids   []mtls.Identity
	plain bool
}

func (p *principal) Authenticate(ctx context.Context, rule access.Rule, caller mtls.Identity) (context.Context, error) {
	p.mu.Lock()
	p.rules = append(p.rules, rule)
	p.ids = append(p.ids, caller)
	p.mu.Unlock()
	if p.plain {
		return nil, errors.New("token store down: dsn=postgres://secret")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	tok := md.Get("authorization")
	if len(tok) == 0 {
		return nil, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "credentials required")
	}
	return context.WithValue(ctx, principalKey{}, strings.TrimPrefix(tok[0], "Bearer ")), nil
}

func TestPrincipalHook(t *testing.T) {
	p := &principal{}
	h := start(t, func(c *grpcserver.Config) { c.Principal = p })
	conn := h.dial(idGateway)

	_, err := echo(callCtx(t), conn, "Echo", "hi")
	if status.Code(err) != codes.Unauthenticated || reasonOf(err) != string(errcode.AuthRequired) {
		t.Fatalf("without credentials: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "authorization", "Bearer bob")
	got, err := echo(ctx, conn, "Echo", "hi")
	if err != nil || got != "hi as bob" {
		t.Fatalf("with credentials: %q, %v", got, err)
	}
	// The mTLS allow-list is checked before the hook is asked.
	if _, err := echo(ctx, h.dial(idBilling), "Echo", "hi"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("billing: %v", err)
	}
	p.mu.Lock()
	if len(p.rules) != 2 || p.rules[0].Permission != "test:read" || p.ids[0] != idGateway {
		t.Fatalf("hook saw rules %+v ids %v", p.rules, p.ids)
	}
	p.mu.Unlock()

	// A hook failing with a non-status error leaks nothing.
	p.plain = true
	_, err = echo(ctx, conn, "Echo", "hi")
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
		t.Fatalf("plain hook error: %v", err)
	}
}

func TestValidation(t *testing.T) {
	h := start(t, nil)
	_, err := echo(callCtx(t), h.dial(idGateway), "Echo", "")
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || reasonOf(err) != string(errcode.Validation) {
		t.Fatalf("err = %v, want InvalidArgument VALIDATION_001", err)
	}
	fv := errcode.FieldViolations(st)
	if len(fv) != 1 || fv[0].Field != "name" || !strings.Contains(fv[0].Description, "at least 1") {
		t.Fatalf("field violations = %+v", fv)
	}
	if !strings.Contains(st.Message(), "name:") {
		t.Errorf("message = %q", st.Message())
	}
}

func TestInternalErrorsHidden(t *testing.T) {
	h := start(t, nil)
	conn := h.dial(idGateway)
	tests := []struct {
		name       string
		err        error
		wantCode   codes.Code
		wantMsg    string
		wantReason string
		logged     string
	}{
		{"internal status", status.Error(codes.Internal, "pq: password authentication failed for hunter2"),
			codes.Internal, "internal error", "", "hunter2"},
		{"plain error", fmt.Errorf("query miners: %w", errors.New("conn to 10.0.0.5 refused")),
			codes.Unknown, "internal error", "", "10.0.0.5"},
		{"reason kept", errcode.Error(errcode.BlockchainNotConfigured, codes.Internal, "BLOCKCHAIN_PRIVATE_KEY=0xdeadbeef missing"),
			codes.Internal, "internal error", "BLOCKCHAIN_001", "0xdeadbeef"},
		{"client errors pass unchanged", errcode.Error(errcode.NotFound, codes.NotFound, "miner m-1 not found"),
			codes.NotFound, "miner m-1 not found", "NOT_FOUND_001", ""},
		{"context deadline becomes DeadlineExceeded", context.DeadlineExceeded,
			codes.DeadlineExceeded, "context deadline exceeded", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.svc.err = tt.err
			_, err := echo(callCtx(t), conn, "Fail", "x")
			st := status.Convert(err)
			if st.Code() != tt.wantCode || st.Message() != tt.wantMsg {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
			}
			if reasonOf(err) != tt.wantReason {
				t.Fatalf("reason = %q, want %q", reasonOf(err), tt.wantReason)
			}
			if tt.logged != "" && !strings.Contains(h.logs.String(), tt.logged) {
				t.Fatalf("original error %q not logged", tt.logged)
			}
		})
	}
}

func TestPanicRecovered(t *testing.T) {
	h := start(t, nil)
	conn := h.dial(idGateway)
	_, err := echo(callCtx(t), conn, "Panic", "x")
	st := status.Convert(err)
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	if strings.Contains(fmt.Sprint(st.Proto()), "hunter2") {
		t.Fatal("panic text reached the client")
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "panic in gRPC handler") || !strings.Contains(logs, "hunter2") || !strings.Contains(logs, "server_test.go") {
		t.Fatal("panic and stack not logged")
	}
	// The server keeps serving.
	if got, err := echo(callCtx(t), conn, "Echo", "still up"); err != nil || got != "still up" {
		t.Fatalf("after panic: %q %v", got, err)
	}
}

func TestMetricsAndOpsEndpoints(t *testing.T) {
	h := start(t, nil)
	reg := h.srv.Registry()

	// Before any call every method has its OK series (health, reflection and
	// the test service).
	n, err := testutil.GatherAndCount(reg, "hashinsight_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	want := len(testMethods) + 3 /* health */ + 2 /* reflection v1, v1alpha */
	if n != want {
		t.Fatalf("request series before any call = %d, want %d", n, want)
	}
	for _, m := range testMethods {
		typ := "unary"
		if m == "List" {
			typ = "server_stream"
		}
		v, ok := requestsSeries(t, reg, typ, method(m), "OK")
		if !ok || v != 0 {
			t.Errorf("%s: OK series = %v, %v; want present with 0", m, v, ok)
		}
	}
	body := h.httpBody("/metrics")
	for _, m := range testMethods {
		if !strings.Contains(body, fmt.Sprintf(`endpoint=%q`, method(m))) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	conn := h.dial(idGateway)
	if _, err := echo(callCtx(t), conn, "Echo", "a"); err != nil {
		t.Fatal(err)
	}
	_, _ = echo(callCtx(t), h.dial(idBilling), "Echo", "a")

	if v, _ := requestsSeries(t, reg, "unary", method("Echo"), "OK"); v != 1 {
		t.Errorf("Echo OK = %v after one call", v)
	}
	body = h.httpBody("/metrics")
	for _, line := range []string{
		`hashinsight_requests_total{endpoint="/hashinsight.test.v1.TestService/Echo",method="unary",service="mining",status="OK"} 1`,
		`hashinsight_requests_total{endpoint="/hashinsight.test.v1.TestService/Echo",method="unary",service="mining",status="PermissionDenied"} 1`,
		`hashinsight_request_latency_seconds_bucket{endpoint="/hashinsight.test.v1.TestService/Echo",method="unary",service="mining",le="0.01"}`,
		`hashinsight_slo_compliance{service="mining",slo_type="availability"} 100`,
		`hashinsight_slo_error_budget_remaining{service="mining"} 1`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	var slo struct {
		Service  string `json:"service"`
		Status   string `json:"status"`
		Requests int    `json:"requests"`
	}
	if err := json.Unmarshal([]byte(h.httpBody("/api/slo/status")), &slo); err != nil {
		t.Fatal(err)
	}
	// PermissionDenied is a client error: it counts, but is not an outage.
	if slo.Service != "mining" || slo.Requests < 2 {
		t.Errorf("slo status = %+v", slo)
	}
	if got := h.httpBody("/api/circuit-breakers"); strings.TrimSpace(got) != "{}" {
		t.Errorf("circuit breakers = %s", got)
	}
	if h.httpStatus("/healthz") != http.StatusOK {
		t.Error("/healthz not OK")
	}
}

// requestsSeries returns the value of one hashinsight_requests_total series.
func requestsSeries(t *testing.T, g prometheus.Gatherer, typ, endpoint, code string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hashinsight_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["method"] == typ && l["endpoint"] == endpoint && l["status"] == code && l["service"] == "mining" {
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

func TestDrainCompletesInFlightCalls(t *testing.T) {
	const calls = 20
	h := start(t, func(c *grpcserver.Config) { c.PropagationDelay = 500 * time.Millisecond })
	conn := h.dial(idGateway)

	// A health watcher, as a load balancer or client-side health check holds.
	watch, err := healthpb.NewHealthClient(conn).Watch(callCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}

	type result struct {
		reply string
		err   error
	}
	results := make(chan result, calls)
	for range calls {
		go func() {
			r, err := echo(callCtx(t), conn, "Slow", "x")
			results <- result{r, err}
		}()
	}
	for range calls {
		<-h.svc.started
	}

	h.cancel() // SIGTERM

	// New health checks report NOT_SERVING, the watcher is told, /readyz fails.
	hc := healthpb.NewHealthClient(conn)
	eventually(t, 5*time.Second, func() bool {
		r, err := hc.Check(callCtx(t), &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch after shutdown: %v %v", r, err)
	}
	if code := h.httpStatus("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d during drain", code)
	}

	// Once the propagation delay is over the server stops taking calls:
	// a new connection is refused, while the accepted calls still run.
	fresh := h.dial(idGateway)
	eventually(t, 5*time.Second, func() bool {
		_, err := echo(callCtx(t), fresh, "Echo", "late")
		return status.Code(err) == codes.Unavailable
	})
	select {
	case err := <-h.done:
		t.Fatalf("Serve returned with calls in flight: %v", err)
	default:
	}

	h.release()
	for range calls {
		r := <-results
		if r.err != nil || r.reply != "done" {
			t.Fatalf("in-flight call: %q %v", r.reply, r.err)
		}
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after a clean drain", err)
		}
		h.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}

	// After shutdown nothing is served.
	if _, err := echo(callCtx(t), conn, "Echo", "after"); status.Code(err) != codes.Unavailable {
		t.Fatalf("call after shutdown: %v", err)
	}
}

func TestDrainTimeoutForcesStop(t *testing.T) {
	h := start(t, func(c *grpcserver.Config) { c.DrainTimeout = 200 * time.Millisecond })
	conn := h.dial(idGateway)
	errc := make(chan error, 1)
	go func() {
		_, err := echo(callCtx(t), conn, "Slow", "x")
		errc <- err
	}()
	<-h.svc.started

	h.cancel()
	select {
	case err := <-h.done:
		if !errors.Is(err, grpcserver.ErrDrainTimeout) {
			t.Fatalf("Serve = %v, want ErrDrainTimeout", err)
		}
		h.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop after the drain timeout")
	}
	if err := <-errc; status.Code(err) != codes.Unavailable {
		t.Fatalf("cut-off call: %v, want Unavailable", err)
	}
}

func TestServeTwice(t *testing.T) {
	h := start(t, nil)
	if err := h.srv.ServeListener(context.Background(), nil, nil); err == nil {
		t.Fatal("second Serve accepted")
	}
}

func TestTraceIDsInLogsAndExemplars(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := start(t, func(c *grpcserver.Config) { c.TracerProvider = tp })
	h.svc.err = status.Error(codes.Internal, "disk full on /var/lib/secret")
	_, err := echo(callCtx(t), h.dial(idGateway), "Fail", "x")
	if status.Code(err) != codes.Internal {
		t.Fatal(err)
	}
	var finished, hidden map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["grpc.method"] == nil {
			continue
		}
		switch m["msg"] {
		case "finished call":
			if m["grpc.method"] == "Fail" {
				finished = m
			}
		case "internal error hidden from client":
			hidden = m
		}
	}
	if finished == nil || hidden == nil {
		t.Fatalf("log lines missing:\n%s", h.logs.String())
	}
	tid, _ := finished["trace_id"].(string)
	if len(tid) != 32 || hidden["trace_id"] != tid || finished["caller"] != "svc/gateway" {
		t.Fatalf("finished = %v\nhidden = %v", finished, hidden)
	}

	req, err := http.NewRequest(http.MethodGet, h.httpURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `# {trace_id="`+tid+`"}`) {
		t.Fatalf("no exemplar with trace id %s in:\n%s", tid, grepLines(string(body), "Fail"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRealServiceDescriptors serves the generated MiningService (all
// UNIMPLEMENTED) under the policy read from its descriptors, so the access
// options and protovalidate rules of the real protos are enforced.
func TestRealServiceDescriptors(t *testing.T) {
	policy, err := access.Load(protoreflect.FullName(miningv1.MiningService_ServiceDesc.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	h := startWith(t, func(c *grpcserver.Config) { c.Policy = policy }, func(s *grpc.Server) {
		miningv1.RegisterMiningServiceServer(s, miningv1.UnimplementedMiningServiceServer{})
	})
	tests := []struct {
		name       string
		caller     mtls.Identity
		id         string
		wantCode   codes.Code
		wantReason errcode.Code
		wantField  string
	}{
		{"allowed caller reaches the (unimplemented) handler", idGateway, "0b7c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d", codes.Unimplemented, "", ""},
		{"invalid request is rejected before the handler", idGateway, "not-a-uuid", codes.InvalidArgument, errcode.Validation, "id"},
		{"caller not on the allow-list", idAuth, "0b7c3d4e-5f60-4a1b-8c2d-3e4f5a6b7c8d", codes.PermissionDenied, errcode.AuthForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := miningv1.NewMiningServiceClient(h.dial(tt.caller))
			_, err := client.GetMiner(callCtx(t), &miningv1.GetMinerRequest{Id: tt.id})
			st := status.Convert(err)
			if st.Code() != tt.wantCode || reasonOf(err) != string(tt.wantReason) {
				t.Fatalf("err = %v (reason %q), want %v %q", err, reasonOf(err), tt.wantCode, tt.wantReason)
			}
			if tt.wantField != "" {
				fv := errcode.FieldViolations(st)
				if len(fv) == 0 || fv[0].Field != tt.wantField {
					t.Fatalf("field violations = %+v", fv)
				}
			}
		})
	}
}
