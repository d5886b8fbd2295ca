package opconn

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

func TestPool(t *testing.T) {
	files, err := devca.Ensure(t.TempDir(), []mtls.Identity{mtls.Service("auth"), mtls.Operator("alice")})
	if err != nil {
		t.Fatal(err)
	}
	src, err := mtls.NewSource(files.Config(mtls.Service("auth")), nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(src.ServerTLS())))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	pool, err := New(files.Config(mtls.Operator("alice")))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if pool.Identity() != mtls.Operator("alice") {
		t.Errorf("identity %s", pool.Identity())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		target Target
		ok     bool
	}{
		{Target{Name: "auth", Addr: lis.Addr().String()}, true},
		// The server is svc/auth, not svc/mining: refused.
		{Target{Name: "mining", Addr: lis.Addr().String()}, false},
	}
	for _, tt := range tests {
		cc, err := pool.Conn(ctx, tt.target)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := pool.Conn(ctx, tt.target)
		if again != cc {
			t.Errorf("%v: a second Conn dialled again", tt.target)
		}
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		if (err == nil) != tt.ok {
			t.Errorf("%v: Check error %v, want ok=%v", tt.target, err, tt.ok)
		}
	}
	if err := pool.Close(); err != nil {
		t.Error(err)
	}
	if _, err := New(mtls.Config{CACertPath: files.CACert, CertPath: "/nonexistent", KeyPath: "/nonexistent"}); err == nil {
		t.Error("New accepted a missing certificate")
	}
}
