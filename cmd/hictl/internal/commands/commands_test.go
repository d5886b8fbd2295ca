package commands

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

// hictl runs the command tree in dir and returns its exit status and output.
func hictl(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := Execute(context.Background(), args, IO{
		Stdout:  &out,
		Stderr:  &out,
		Environ: env,
		Getwd:   func() (string, error) { return dir, nil },
	})
	return code, out.String()
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"dev", "up", "--no-such-flag"},
		{"dev", "certs", "--rotate", "nobody"},
		{"health", "no-such-service"},
	} {
		if code, out := hictl(t, dir, nil, args...); code != ExitUsage {
			t.Errorf("hictl %v = %d (%s), want %d", args, code, out, ExitUsage)
		}
	}
}

func TestDevCerts(t *testing.T) {
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "go.work"), []byte("go 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(repo, "cmd")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// Default: .data/certs at the repository root, wherever hictl runs.
	code, out := hictl(t, sub, nil, "dev", "certs", "--identity", "operator/alice")
	if code != ExitOK {
		t.Fatalf("dev certs = %d: %s", code, out)
	}
	certs := filepath.Join(repo, ".data", "certs")
	for _, id := range []string{"svc/auth", "svc/mining", "svc/billing", "svc/sla", "svc/analytics", "svc/gateway", "operator/dev", "operator/alice"} {
		if !strings.Contains(out, id) {
			t.Errorf("output does not list %s:\n%s", id, out)
		}
	}
	mining := filepath.Join(certs, "svc-mining.crt")
	before, err := os.ReadFile(mining)
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := os.ReadFile(filepath.Join(certs, "svc-auth.crt"))

	// Idempotent, and --rotate replaces only the named identity.
	code, out = hictl(t, repo, nil, "dev", "certs", "--rotate", "svc/mining")
	if code != ExitOK || !strings.Contains(out, "rotated svc/mining") {
		t.Fatalf("rotate = %d: %s", code, out)
	}
	after, _ := os.ReadFile(mining)
	if bytes.Equal(before, after) {
		t.Error("svc/mining certificate not rotated")
	}
	if a, _ := os.ReadFile(filepath.Join(certs, "svc-auth.crt")); !bytes.Equal(a, auth) {
		t.Error("svc/auth certificate changed by rotating svc/mining")
	}

	// --dir puts them elsewhere.
	other := filepath.Join(t.TempDir(), "c")
	if code, out := hictl(t, repo, nil, "dev", "certs", "--dir", other); code != ExitOK || !strings.Contains(out, filepath.Join(other, "ca.crt")) {
		t.Fatalf("dev certs --dir = %d: %s", code, out)
	}
}

func TestHealth(t *testing.T) {
	dir := t.TempDir()
	files, err := devca.Ensure(dir, []mtls.Identity{mtls.Service("mining"), mtls.Operator("dev")})
	if err != nil {
		t.Fatal(err)
	}
	src, err := mtls.NewSource(files.Config(mtls.Service("mining")), nil)
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
	defer srv.Stop()
	addr := lis.Addr().String()
	op := files.Leaves[mtls.Operator("dev")]
	tlsFlags := []string{"--cacert", files.CACert, "--cert", op.Cert, "--key", op.Key, "--gateway", ""}

	code, out := hictl(t, dir, nil, append([]string{"health", "--addr", "mining=" + addr, "mining"}, tlsFlags...)...)
	if code != ExitOK || !strings.Contains(out, "SERVING") {
		t.Errorf("health mining = %d:\n%s", code, out)
	}

	// The address from the environment, as the local mesh sets it.
	code, out = hictl(t, dir, []string{"MINING_GRPC_ADDR=" + addr}, append([]string{"health", "mining"}, tlsFlags...)...)
	if code != ExitOK {
		t.Errorf("health with MINING_GRPC_ADDR = %d:\n%s", code, out)
	}

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	code, out = hictl(t, dir, nil, append([]string{"health", "--addr", "mining=" + addr, "mining"}, tlsFlags...)...)
	if code != ExitError || !strings.Contains(out, "NOT_SERVING") {
		t.Errorf("health of a NOT_SERVING service = %d:\n%s", code, out)
	}

	// A server that is not the expected service fails the check.
	code, out = hictl(t, dir, nil, append([]string{"health", "--addr", "auth=" + addr, "auth"}, tlsFlags...)...)
	if code != ExitError || !strings.Contains(out, "svc/auth") {
		t.Errorf("health auth at mining's address = %d:\n%s", code, out)
	}
}
