package grpcclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

var (
	billing = mtls.Service("billing")
	gateway = mtls.Service("gateway")
)

const (
	methodDeadline = "/test.v1.TestService/Deadline"
	methodRead     = "/test.v1.TestService/Read"
	methodWrite    = "/test.v1.TestService/Write"
	methodDown     = "/test.v1.TestService/Down"
)

// testServer answers every method through an unknown-service handler:
//   - Deadline replies with the time left until the call's deadline, or
//     FAILED_PRECONDITION when the call has none;
//   - Read and Write fail with UNAVAILABLE on their first two attempts;
//   - Down always fails with UNAVAILABLE.
//
// It counts the attempts per method.
type testServer struct {
	mu       sync.Mutex
	attempts map[string]int
}

func (s *testServer) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[method]
}

func (s *testServer) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
		return err
	}
	s.mu.Lock()
	s.attempts[method]++
	n := s.attempts[method]
	s.mu.Unlock()

	switch method {
	case methodDeadline:
		dl, ok := stream.Context().Deadline()
		if !ok {
			return status.Error(codes.FailedPrecondition, "no deadline")
		}
		return stream.SendMsg(durationpb.New(time.Until(dl)))
	case methodRead, methodWrite:
		if n <= 2 {
			return status.Error(codes.Unavailable, "try again")
		}
		return stream.SendMsg(&emptypb.Empty{})
	default:
		return status.Error(codes.Unavailable, "down")
	}
}

type fixture struct {
	addr   string
	srv    *testServer
	client *mtls.Source
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	files, err := devca.Ensure(dir, []mtls.Identity{billing, gateway})
	if err != nil {
		t.Fatal(err)
	}
	serverSrc, err := mtls.NewSource(files.Config(billing), nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := mtls.NewSource(files.Config(gateway), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{attempts: map[string]int{}}
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(serverSrc.ServerTLS())),
		grpc.UnknownServiceHandler(ts.handle),
	)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return fixture{addr: lis.Addr().String(), srv: ts, client: client}
}

func (f fixture) dial(t *testing.T, expect mtls.Identity, opts ...Option) *grpc.ClientConn {
	t.Helper()
	conn, err := Dial(context.Background(), f.addr, f.client, expect, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func fastRetry() Option {
	return WithRetryPolicy(RetryPolicy{MaxAttempts: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, BackoffMultiplier: 2})
}

func TestDefaultDeadline(t *testing.T) {
	f := newFixture(t)
	conn := f.dial(t, billing, WithDefaultTimeout(3*time.Second))

	tests := []struct {
		name     string
		timeout  time.Duration // 0: the caller sets no deadline
		min, max time.Duration
	}{
		{name: "none set: default applied", min: time.Second, max: 3 * time.Second},
		{name: "caller's longer deadline kept", timeout: time.Hour, min: 50 * time.Minute, max: time.Hour},
		{name: "caller's shorter deadline kept", timeout: 2 * time.Second, min: time.Second, max: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			var left durationpb.Duration
			if err := conn.Invoke(ctx, methodDeadline, &emptypb.Empty{}, &left); err != nil {
				t.Fatalf("unary: %v", err)
			}
			if d := left.AsDuration(); d < tt.min || d > tt.max {
				t.Errorf("unary: server saw %s left, want within [%s, %s]", d, tt.min, tt.max)
			}

			stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, methodDeadline)
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if err := stream.RecvMsg(&left); err != nil {
				t.Fatalf("stream recv: %v", err)
			}
			if err := stream.RecvMsg(&left); !errors.Is(err, io.EOF) {
				t.Fatalf("stream end: %v", err)
			}
			if d := left.AsDuration(); d < tt.min || d > tt.max {
				t.Errorf("stream: server saw %s left, want within [%s, %s]", d, tt.min, tt.max)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	f := newFixture(t)
	conn := f.dial(t, billing, WithIdempotentMethods(methodRead, methodDown), fastRetry())

	tests := []struct {
		method       string
		wantCode     codes.Code
		wantAttempts int
	}{
		{methodRead, codes.OK, 3},           // idempotent: retried until it succeeds
		{methodDown, codes.Unavailable, 3},  // idempotent: gives up after MaxAttempts
		{methodWrite, codes.Unavailable, 1}, // not idempotent: never retried
		{methodDeadline, codes.OK, 1},       // succeeds at once
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := conn.Invoke(ctx, tt.method, &emptypb.Empty{}, &durationpb.Duration{})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tt.wantCode)
			}
			if got := f.srv.count(tt.method); got != tt.wantAttempts {
				t.Fatalf("server saw %d attempts, want %d", got, tt.wantAttempts)
			}
		})
	}
}

func TestDialVerifiesServerIdentity(t *testing.T) {
	f := newFixture(t)
	conn := f.dial(t, mtls.Service("mining"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := conn.Invoke(ctx, methodDeadline, &emptypb.Empty{}, &durationpb.Duration{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("call to the wrong identity: %v, want Unavailable", err)
	}
	if n := f.srv.count(methodDeadline); n != 0 {
		t.Fatalf("server handled %d calls", n)
	}
}

func TestDialWithKeepalive(t *testing.T) {
	f := newFixture(t)
	conn := f.dial(t, billing, WithKeepalive(keepalive.ClientParameters{Time: time.Minute, Timeout: 10 * time.Second}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Invoke(ctx, methodDeadline, &emptypb.Empty{}, &durationpb.Duration{}); err != nil {
		t.Fatal(err)
	}
}

func TestDialErrors(t *testing.T) {
	f := newFixture(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		src    *mtls.Source
		expect mtls.Identity
		opts   []Option
	}{
		{"canceled context", canceled, f.client, billing, nil},
		{"nil source", context.Background(), nil, billing, nil},
		{"zero identity", context.Background(), f.client, mtls.Identity{}, nil},
		{"zero timeout", context.Background(), f.client, billing, []Option{WithDefaultTimeout(0)}},
		{"bad method name", context.Background(), f.client, billing, []Option{WithIdempotentMethods("test.v1.TestService/Read")}},
		{"bad retry policy", context.Background(), f.client, billing, []Option{WithIdempotentMethods(methodRead), WithRetryPolicy(RetryPolicy{MaxAttempts: 1})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := Dial(tt.ctx, f.addr, tt.src, tt.expect, tt.opts...)
			if err == nil {
				conn.Close()
				t.Fatal("Dial succeeded")
			}
		})
	}
}

func TestServiceConfigJSON(t *testing.T) {
	got, err := serviceConfigJSON([]string{methodRead, "/a.B/C", methodRead}, DefaultRetryPolicy())
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		MethodConfig []struct {
			Name []struct {
				Service, Method string
			}
			RetryPolicy struct {
				MaxAttempts          int
				InitialBackoff       string
				MaxBackoff           string
				BackoffMultiplier    float64
				RetryableStatusCodes []string
			}
		}
	}
	if err := json.Unmarshal([]byte(got), &sc); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if len(sc.MethodConfig) != 1 {
		t.Fatalf("method configs: %s", got)
	}
	mc := sc.MethodConfig[0]
	if len(mc.Name) != 2 || mc.Name[0].Service != "test.v1.TestService" || mc.Name[0].Method != "Read" || mc.Name[1].Service != "a.B" || mc.Name[1].Method != "C" {
		t.Errorf("names: %s", got)
	}
	rp := mc.RetryPolicy
	if rp.MaxAttempts != 3 || rp.InitialBackoff != "0.1s" || rp.MaxBackoff != "1s" || rp.BackoffMultiplier != 2 ||
		len(rp.RetryableStatusCodes) != 1 || rp.RetryableStatusCodes[0] != "UNAVAILABLE" {
		t.Errorf("retry policy: %s", got)
	}

	empty, err := serviceConfigJSON(nil, RetryPolicy{})
	if err != nil || empty != "{}" {
		t.Errorf("no idempotent methods: %q, %v", empty, err)
	}
	for _, bad := range []string{"", "/", "/a.B", "/a.B/", "//C", "/a.B/C/D", "a.B/C"} {
		if _, err := serviceConfigJSON([]string{bad}, DefaultRetryPolicy()); err == nil {
			t.Errorf("method %q accepted", bad)
		}
	}
}
