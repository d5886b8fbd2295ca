package mtls_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

var (
	billing = mtls.Service("billing")
	mining  = mtls.Service("mining")
	svcX    = mtls.Service("x")
)

// testPKI is a dev CA in a temporary directory with leaves for billing,
// mining and x.
type testPKI struct {
	files devca.Files
	ca    *devca.CA
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	files, err := devca.Ensure(dir, []mtls.Identity{billing, mining, svcX})
	if err != nil {
		t.Fatalf("devca.Ensure: %v", err)
	}
	ca, err := devca.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{files: files, ca: ca}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newSource(t *testing.T, cfg mtls.Config) *mtls.Source {
	t.Helper()
	src, err := mtls.NewSource(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	return src
}

// server is a gRPC server with the health service that records the peer
// identity of every call it serves.
type server struct {
	addr string

	mu      sync.Mutex
	peers   []mtls.Identity
	serials []*big.Int // of the client certificates
}

func (s *server) lastSerial() *big.Int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.serials) == 0 {
		return nil
	}
	return s.serials[len(s.serials)-1]
}

func (s *server) seen() []mtls.Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mtls.Identity(nil), s.peers...)
}

func startServer(t *testing.T, src *mtls.Source) *server {
	t.Helper()
	s := &server{}
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(src.ServerTLS())),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			id, err := mtls.PeerIdentity(ctx)
			if err != nil {
				return nil, status.Error(codes.Unauthenticated, "no identity")
			}
			p, _ := peer.FromContext(ctx)
			serial := p.AuthInfo.(credentials.TLSInfo).State.VerifiedChains[0][0].SerialNumber
			s.mu.Lock()
			s.peers = append(s.peers, id)
			s.serials = append(s.serials, serial)
			s.mu.Unlock()
			return handler(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return s
}

func dial(t *testing.T, addr string, tlsCfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func check(conn *grpc.ClientConn, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, opts...)
	return err
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)

	// A second CA the servers do not trust, and an x certificate from it.
	otherDir := filepath.Join(t.TempDir(), "other")
	other, err := devca.EnsureCA(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.WriteLeaf(otherDir, svcX); err != nil {
		t.Fatal(err)
	}
	// The impostor trusts both CAs so that it accepts the real server and its
	// own certificate loads; the server trusts only the real CA.
	bothCAs := filepath.Join(t.TempDir(), "both.crt")
	writeConcat(t, bothCAs, p.files.CACert, filepath.Join(otherDir, devca.CACertFile))
	impostorCfg := devca.Files{Dir: otherDir, CACert: bothCAs}.Config(svcX)

	tests := []struct {
		name       string
		serverID   mtls.Identity
		dnPatterns []string
		client     func(t *testing.T) *tls.Config
		wantOK     bool
	}{
		{
			name:     "valid client certificate",
			serverID: billing,
			client:   func(t *testing.T) *tls.Config { return newSource(t, p.files.Config(svcX)).ClientTLS(billing) },
			wantOK:   true,
		},
		{
			name:     "no client certificate",
			serverID: billing,
			client: func(*testing.T) *tls.Config {
				return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true} //nolint:gosec // the server is under test
			},
		},
		{
			name:     "client certificate from another CA",
			serverID: billing,
			client:   func(t *testing.T) *tls.Config { return newSource(t, impostorCfg).ClientTLS(billing) },
		},
		{
			name:     "trusted CA but foreign trust domain",
			serverID: billing,
			client:   rawClient(p, func(c *x509.Certificate) { c.URIs = []*url.URL{{Scheme: "spiffe", Host: "evil.local", Path: "/svc/x"}} }),
		},
		{
			name:     "trusted CA but no URI SAN",
			serverID: billing,
			client:   rawClient(p, func(c *x509.Certificate) { c.URIs = nil }),
		},
		{
			name:     "trusted CA but server-auth only",
			serverID: billing,
			client:   rawClient(p, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }),
		},
		{
			name:     "control: raw client with a good certificate",
			serverID: billing,
			client:   rawClient(p, func(*x509.Certificate) {}),
			wantOK:   true,
		},
		{
			name:     "server is not the expected identity",
			serverID: billing,
			client:   func(t *testing.T) *tls.Config { return newSource(t, p.files.Config(svcX)).ClientTLS(mining) },
		},
		{
			name:     "zero expected identity",
			serverID: billing,
			client:   func(t *testing.T) *tls.Config { return newSource(t, p.files.Config(svcX)).ClientTLS(mtls.Identity{}) },
		},
		{
			name:       "DN pattern matches",
			serverID:   billing,
			dnPatterns: []string{"CN=*.svc.hashinsight.local", "O=HashInsight", "C=US"},
			client:     func(t *testing.T) *tls.Config { return newSource(t, p.files.Config(svcX)).ClientTLS(billing) },
			wantOK:     true,
		},
		{
			name:       "DN pattern mismatch",
			serverID:   billing,
			dnPatterns: []string{"CN=*.hashinsight.net,O=HashInsight,C=US"},
			client:     func(t *testing.T) *tls.Config { return newSource(t, p.files.Config(svcX)).ClientTLS(billing) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.files.Config(tt.serverID)
			cfg.AllowedDNPatterns = tt.dnPatterns
			srv := startServer(t, newSource(t, cfg))
			conn := dial(t, srv.addr, tt.client(t))
			err := check(conn)
			if !tt.wantOK {
				if err == nil {
					t.Fatal("call succeeded, want refusal")
				}
				t.Logf("refused: %v", err)
				if code := status.Code(err); code != codes.Unavailable {
					t.Fatalf("call failed with %v (%v), want Unavailable from the handshake", code, err)
				}
				if got := srv.seen(); len(got) != 0 {
					t.Fatalf("handler ran for %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if got := srv.seen(); len(got) != 1 || got[0] != svcX {
				t.Fatalf("server saw peers %v, want [%v]", got, svcX)
			}
		})
	}
}

// rawClient returns a client that presents a certificate for svc/x signed by
// the trusted CA, shaped by edit, and does not verify the server.
func rawClient(p testPKI, edit func(*x509.Certificate)) func(*testing.T) *tls.Config {
	return func(t *testing.T) *tls.Config {
		t.Helper()
		caKeyPEM, err := os.ReadFile(p.files.CAKey)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(caKeyPEM)
		caKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7),
			Subject:      pkix.Name{CommonName: "x.svc.hashinsight.local", Organization: []string{"HashInsight"}, Country: []string{"US"}},
			NotBefore:    time.Now().Add(-time.Minute),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			URIs:         []*url.URL{svcX.URI()},
		}
		edit(tmpl)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca.Cert, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, //nolint:gosec // the server is under test
			Certificates:       []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		}
	}
}

func TestClientRefusesServerFromAnotherCA(t *testing.T) {
	p := newPKI(t)
	otherDir := filepath.Join(t.TempDir(), "other")
	other, err := devca.EnsureCA(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.WriteLeaf(otherDir, billing); err != nil {
		t.Fatal(err)
	}
	// The fake billing trusts the real CA so that it accepts the client.
	fakeCfg := devca.Files{Dir: otherDir, CACert: filepath.Join(t.TempDir(), "both.crt")}.Config(billing)
	writeConcat(t, fakeCfg.CACertPath, p.files.CACert, filepath.Join(otherDir, devca.CACertFile))
	srv := startServer(t, newSource(t, fakeCfg))

	conn := dial(t, srv.addr, newSource(t, p.files.Config(svcX)).ClientTLS(billing))
	if err := check(conn); status.Code(err) != codes.Unavailable {
		t.Fatalf("call to a server from another CA: %v, want Unavailable", err)
	}
	if got := srv.seen(); len(got) != 0 {
		t.Fatalf("handler ran for %v", got)
	}
}

func TestVerifyClientFalse(t *testing.T) {
	p := newPKI(t)
	cfg := p.files.Config(billing)
	cfg.VerifyClient = false
	srv := startServer(t, newSource(t, cfg))

	// Without a certificate the handshake completes but there is no identity.
	anon := dial(t, srv.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}) //nolint:gosec // the server is under test
	if err := check(anon); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous call: %v, want Unauthenticated from the interceptor", err)
	}
	// A presented certificate is still verified and yields the identity.
	conn := dial(t, srv.addr, newSource(t, p.files.Config(svcX)).ClientTLS(billing))
	if err := check(conn); err != nil {
		t.Fatalf("call with certificate: %v", err)
	}
	if got := srv.seen(); len(got) != 1 || got[0] != svcX {
		t.Fatalf("server saw %v, want [%v]", got, svcX)
	}
}

func TestServerTLSVersion(t *testing.T) {
	p := newPKI(t)
	srv := startServer(t, newSource(t, p.files.Config(billing)))
	cfg := newSource(t, p.files.Config(svcX)).ClientTLS(billing)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	c, err := tls.Dial("tcp", srv.addr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.2 handshake succeeded")
	}
}

// handshakeSerial opens a fresh TLS connection and returns the serial number
// of the certificate the server presents.
func handshakeSerial(t *testing.T, addr string, cfg *tls.Config) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tls.Dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func fileSerial(t *testing.T, path string) *big.Int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

func connSerial(t *testing.T, conn *grpc.ClientConn) *big.Int {
	t.Helper()
	var p peer.Peer
	if err := check(conn, grpc.Peer(&p)); err != nil {
		t.Fatalf("call: %v", err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		t.Fatalf("peer auth info %T", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber
}

func TestRotation(t *testing.T) {
	p := newPKI(t)
	serverSrc := newSource(t, p.files.Config(billing))
	srv := startServer(t, serverSrc)
	client := newSource(t, p.files.Config(svcX))
	clientCfg := client.ClientTLS(billing)
	leaf := p.files.Leaves[billing]

	old := fileSerial(t, leaf.Cert)
	if got := handshakeSerial(t, srv.addr, clientCfg); got.Cmp(old) != 0 {
		t.Fatalf("server presents %s, want %s", got, old)
	}
	established := dial(t, srv.addr, clientCfg)
	if got := connSerial(t, established); got.Cmp(old) != 0 {
		t.Fatalf("established connection sees %s, want %s", got, old)
	}

	t.Run("new leaf is used for new handshakes", func(t *testing.T) {
		if _, err := p.ca.WriteLeaf(p.files.Dir, billing); err != nil {
			t.Fatal(err)
		}
		rotated := fileSerial(t, leaf.Cert)
		if rotated.Cmp(old) == 0 {
			t.Fatal("rotation kept the serial number")
		}
		if err := serverSrc.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if got := handshakeSerial(t, srv.addr, clientCfg); got.Cmp(rotated) != 0 {
			t.Fatalf("new handshake presents %s, want rotated %s", got, rotated)
		}
		if got := serverSrc.Leaf().SerialNumber; got.Cmp(rotated) != 0 {
			t.Fatalf("Leaf() = %s, want %s", got, rotated)
		}
		// The connection made before the rotation is the same connection and
		// still serves calls.
		if got := connSerial(t, established); got.Cmp(old) != 0 {
			t.Fatalf("established connection now sees %s, want the original %s", got, old)
		}
		fresh := dial(t, srv.addr, clientCfg)
		if got := connSerial(t, fresh); got.Cmp(rotated) != 0 {
			t.Fatalf("new gRPC connection sees %s, want %s", got, rotated)
		}
	})

	t.Run("bad new material keeps the current one", func(t *testing.T) {
		current := serverSrc.Leaf().SerialNumber
		certPEM, err := os.ReadFile(leaf.Cert)
		if err != nil {
			t.Fatal(err)
		}
		otherKey, err := os.ReadFile(p.files.Leaves[mining].Key)
		if err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name, path string
			data       []byte
		}{
			{"corrupt certificate", leaf.Cert, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")},
			{"truncated certificate", leaf.Cert, certPEM[:len(certPEM)/2]},
			{"key of another certificate", leaf.Key, otherKey},
			{"empty CA bundle", p.files.CACert, nil},
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				orig, err := os.ReadFile(b.path)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, b.path, b.data)
				t.Cleanup(func() { writeFile(t, b.path, orig) })
				if err := serverSrc.Reload(); err == nil {
					t.Fatal("Reload accepted bad material")
				}
				if got := handshakeSerial(t, srv.addr, clientCfg); got.Cmp(current) != 0 {
					t.Fatalf("handshake presents %s, want the current %s", got, current)
				}
				if err := check(dial(t, srv.addr, clientCfg)); err != nil {
					t.Fatalf("new connection after bad reload: %v", err)
				}
			})
		}
		if err := serverSrc.Reload(); err != nil {
			t.Fatalf("Reload of restored files: %v", err)
		}
	})

	t.Run("client certificate rotation", func(t *testing.T) {
		if _, err := p.ca.WriteLeaf(p.files.Dir, svcX); err != nil {
			t.Fatal(err)
		}
		if err := client.Reload(); err != nil {
			t.Fatal(err)
		}
		want := fileSerial(t, p.files.Leaves[svcX].Cert)
		if err := check(dial(t, srv.addr, clientCfg)); err != nil {
			t.Fatal(err)
		}
		if got := srv.lastSerial(); got.Cmp(want) != 0 {
			t.Fatalf("server saw client certificate %s, want rotated %s", got, want)
		}
		if got := client.Leaf().SerialNumber; got.Cmp(want) != 0 {
			t.Fatalf("client Leaf() = %s, want %s", got, want)
		}
	})
}

func TestRunPicksUpChanges(t *testing.T) {
	p := newPKI(t)
	cfg := p.files.Config(billing)
	cfg.ReloadInterval = 5 * time.Millisecond
	var logs syncBuffer
	src, err := mtls.NewSource(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, src)
	clientCfg := newSource(t, p.files.Config(svcX)).ClientTLS(billing)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	leaf := p.files.Leaves[billing]
	if _, err := p.ca.WriteLeaf(p.files.Dir, billing); err != nil {
		t.Fatal(err)
	}
	rotated := fileSerial(t, leaf.Cert)
	eventually(t, 5*time.Second, func() bool {
		return handshakeSerial(t, srv.addr, clientCfg).Cmp(rotated) == 0
	})

	// A corrupt file is logged once, however many polls see it.
	goodCert, err := os.ReadFile(leaf.Cert)
	if err != nil {
		t.Fatal(err)
	}
	mark := len(logs.Bytes())
	rejections := func() int { return bytes.Count(logs.Bytes()[mark:], []byte("rejected")) }
	writeFile(t, leaf.Cert, []byte("garbage"))
	eventually(t, 5*time.Second, func() bool { return rejections() > 0 })
	// Handshakes keep presenting the good certificate while Run keeps
	// polling the corrupt file (each handshake outlasts a reload interval).
	for range 20 {
		if got := handshakeSerial(t, srv.addr, clientCfg); got.Cmp(rotated) != 0 {
			t.Fatalf("handshake presents %s after a corrupt file, want %s", got, rotated)
		}
	}
	if n := rejections(); n != 1 {
		t.Fatalf("rejection logged %d times, want 1:\n%s", n, logs.Bytes())
	}
	writeFile(t, leaf.Cert, goodCert)
}

func TestNewSourceErrors(t *testing.T) {
	p := newPKI(t)
	good := p.files.Config(billing)
	otherDir := filepath.Join(t.TempDir(), "other")
	if _, err := devca.Ensure(otherDir, []mtls.Identity{billing}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*mtls.Config)
	}{
		{"missing paths", func(c *mtls.Config) { c.KeyPath = "" }},
		{"missing file", func(c *mtls.Config) { c.CertPath = filepath.Join(t.TempDir(), "nope.crt") }},
		{"key does not match", func(c *mtls.Config) { c.KeyPath = p.files.Leaves[mining].Key }},
		{"CA bundle is a leaf", func(c *mtls.Config) { c.CACertPath = p.files.Leaves[mining].Cert }},
		{"certificate from another CA", func(c *mtls.Config) {
			c.CertPath = devca.LeafPaths(otherDir, billing).Cert
			c.KeyPath = devca.LeafPaths(otherDir, billing).Key
		}},
		{"bad DN pattern", func(c *mtls.Config) { c.AllowedDNPatterns = []string{"XX=1"} }},
		{"negative interval", func(c *mtls.Config) { c.ReloadInterval = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			if _, err := mtls.NewSource(cfg, nil); err == nil {
				t.Fatal("NewSource succeeded")
			}
		})
	}
	src, err := mtls.NewSource(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if src.Identity() != billing {
		t.Fatalf("Identity() = %v, want %v", src.Identity(), billing)
	}
}

func TestPeerIdentityNotTLS(t *testing.T) {
	ctx := peer.NewContext(context.Background(), &peer.Peer{})
	if _, err := mtls.PeerIdentity(ctx); !errors.Is(err, mtls.ErrNoPeerIdentity) {
		t.Fatalf("PeerIdentity without auth info: %v", err)
	}
	ctx = peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{}})
	if _, err := mtls.PeerIdentity(ctx); !errors.Is(err, mtls.ErrNoPeerIdentity) {
		t.Fatalf("PeerIdentity without verified chains: %v", err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	// Write-then-rename, as deployment tools do, so the reloader never sees
	// a half-written file unless a test means it to.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writeConcat(t *testing.T, dst string, srcs ...string) {
	t.Helper()
	var buf bytes.Buffer
	for _, s := range srcs {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(data)
	}
	writeFile(t, dst, buf.Bytes())
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
