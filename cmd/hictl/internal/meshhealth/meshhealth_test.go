package meshhealth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

// serve starts a gRPC health server over mTLS presenting identity id and
// returns its address and health server.
func serve(t *testing.T, files devca.Files, id mtls.Identity) (string, *health.Server) {
	t.Helper()
	src, err := mtls.NewSource(files.Config(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(src.ServerTLS())))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), hs
}

func certs(t *testing.T) devca.Files {
	t.Helper()
	files, err := devca.Ensure(t.TempDir(), []mtls.Identity{mtls.Service("mining"), mtls.Operator("dev")})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestCheckOverMTLS(t *testing.T) {
	files := certs(t)
	addr, hs := serve(t, files, mtls.Service("mining"))
	op := files.Leaves[mtls.Operator("dev")]
	c, err := NewChecker(mtls.Config{CACertPath: files.CACert, CertPath: op.Cert, KeyPath: op.Key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Identity() != mtls.Operator("dev") {
		t.Errorf("identity = %s", c.Identity())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st, err := c.Check(ctx, Target{Name: "mining", Addr: addr})
	if err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v; want SERVING", st, err)
	}

	// A server with another identity than the one expected is refused.
	if _, err := c.Check(ctx, Target{Name: "auth", Addr: addr}); err == nil {
		t.Error("accepted svc/mining's certificate when expecting svc/auth")
	}

	// WaitServing waits for NOT_SERVING to turn SERVING.
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	go func() {
		time.Sleep(300 * time.Millisecond)
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	}()
	if err := c.WaitServing(ctx, Target{Name: "mining", Addr: addr}); err != nil {
		t.Errorf("WaitServing: %v", err)
	}

	// A deadline that passes reports the last problem.
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if err := c.WaitServing(short, Target{Name: "mining", Addr: addr}); err == nil {
		t.Error("WaitServing returned nil for a NOT_SERVING server")
	}
}

func TestWaitHTTP(t *testing.T) {
	ready := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-ready:
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := CheckHTTP(ctx, srv.Client(), srv.URL); err == nil {
		t.Error("CheckHTTP accepted 503")
	}
	time.AfterFunc(200*time.Millisecond, func() { close(ready) })
	if err := WaitHTTP(ctx, srv.Client(), srv.URL); err != nil {
		t.Errorf("WaitHTTP: %v", err)
	}
}

// TestGrpcurlVerification checks what the printed grpcurl command relies on:
// a client doing ordinary host-name verification (as grpcurl does) accepts
// the dev service certificate at 127.0.0.1, localhost or its service name,
// so no -authority or -insecure is needed.
func TestGrpcurlVerification(t *testing.T) {
	files := certs(t)
	addr, _ := serve(t, files, mtls.Service("mining"))
	caPEM, err := os.ReadFile(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	op := files.Leaves[mtls.Operator("dev")]
	pair, err := tls.LoadX509KeyPair(op.Cert, op.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, serverName := range []string{"127.0.0.1", "localhost", "mining"} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, ServerName: serverName, NextProtos: []string{"h2"}})
		if err != nil {
			t.Errorf("server name %s: %v", serverName, err)
			continue
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, ServerName: "billing", NextProtos: []string{"h2"}}); err == nil {
		conn.Close()
		t.Error("server name billing verified against svc/mining's certificate")
	}
}
