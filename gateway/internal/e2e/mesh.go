// Package e2e runs the whole platform for end-to-end tests and benchmarks: the real gateway and
// the five real services as processes (built from this repository), over loopback mutual TLS with
// a throwaway CA, each service on its own database of a throwaway Postgres cluster (pkg/postgres/
// pgtest), optionally with a throwaway Redis.
//
// Access tokens for tests are minted with pkg/authn/token's Issuer under a test signing key that
// the whole mesh trusts through the real path: the key is published in auth's signing_keys table
// (verification only, never used by auth to sign) before auth starts, so auth serves it from
// GetSigningKeys and every service verifies the tokens locally as it would auth's own. Real users,
// logins and API keys go through the real auth service.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/pkg/testkit/freeport"
)

// Services returns the backends in start order (auth first: the others fetch its keys).
func Services() []string { return []string{"auth", "mining", "billing", "sla", "analytics"} }

// Operator is the operator identity the harness holds a certificate for.
func Operator() mtls.Identity { return mtls.Operator("e2e") }

// Test secrets (≥32 characters). Not secret: throwaway test values.
const (
	testSessionSecret      = "e2e-session-secret-0123456789abcdef"
	testEncryptionPassword = "e2e-encryption-password-0123456789ab"
)

// FindRepoRoot walks up from the working directory to the directory holding go.work.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("e2e: no go.work above the working directory")
		}
		dir = parent
	}
}

// Build compiles the gateway and the five services into binDir with one `go build` run in
// repoRoot (the go command caches it: an unchanged tree links nothing).
func Build(ctx context.Context, repoRoot, binDir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("e2e: the go command is not on PATH: %w", err)
	}
	args := []string{"build", "-o", binDir + string(filepath.Separator), "./gateway"}
	for _, s := range Services() {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("e2e: go build: %w\n%s", err, out)
	}
	return nil
}

// Options configure a Mesh.
type Options struct {
	// BinDir holds the binaries Build made. Required.
	BinDir string
	// RepoRoot is the repository (for the services' migrations). Required.
	RepoRoot string
	// Redis starts a throwaway redis-server shared by the gateway and the services (skipping
	// the test when redis-server is missing); otherwise everyone caches in memory.
	Redis bool
	// GatewayEnv is added to (and overrides) the gateway's environment: RATE_LIMIT_*,
	// GATEWAY_TRUSTED_PROXIES, ...
	GatewayEnv map[string]string
	// ServiceEnv is added to every service's environment.
	ServiceEnv map[string]string
	// LogLevel of every process (default "warn").
	LogLevel string
	// Pprof serves every process's runtime profiles on its ops listener (PPROF_ENABLED); see
	// Mesh.CPUProfiles.
	Pprof bool
}

// Mesh is a running platform.
type Mesh struct {
	// URL is the gateway's base URL (http://127.0.0.1:port).
	URL string
	// MetricsURL is the gateway's Prometheus endpoint.
	MetricsURL string
	// Certs are the mesh's CA and identities (svc/*, operator/e2e).
	Certs devca.Files
	// GRPCAddr and HTTPAddr are each service's addresses.
	GRPCAddr, HTTPAddr map[string]string
	// RedisURL is the shared Redis, or "memory".
	RedisURL string
	// DatabaseURL is each service's own database (its role, its schema), for tests that read
	// back what a request stored.
	DatabaseURL map[string]string

	key        *token.SigningKey
	issuer     *token.Issuer
	procs      map[string]*proc
	logDir     string
	binDir     string
	gatewayEnv map[string]string
	gateways   int
	opsURL     map[string]string // process name → base URL of its ops listener
}

// proc is one running process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start runs the mesh until the test ends.
func Start(t testing.TB, o Options) *Mesh {
	t.Helper()
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	dir := t.TempDir()
	m := &Mesh{
		GRPCAddr: map[string]string{}, HTTPAddr: map[string]string{}, DatabaseURL: map[string]string{},
		procs: map[string]*proc{}, opsURL: map[string]string{}, logDir: filepath.Join(dir, "logs"), RedisURL: "memory",
		issuer: token.NewIssuer(token.IssuerOptions{}),
	}
	if err := os.MkdirAll(m.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ids := []mtls.Identity{mtls.Service("gateway"), Operator()}
	for _, s := range Services() {
		ids = append(ids, mtls.Service(s))
	}
	certs, err := devca.Ensure(filepath.Join(dir, "certs"), ids)
	if err != nil {
		t.Fatalf("e2e: certificates: %v", err)
	}
	m.Certs = certs
	if o.Redis {
		m.RedisURL = startRedis(t, dir)
	}
	m.key, err = token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}

	for _, s := range Services() {
		db := pgtest.NewDatabase(t, pgtest.Options{Schema: s, Role: true, Migrations: migrations(t, o.RepoRoot, s)})
		if s == "auth" {
			m.trustTestKey(t, db.DSN)
		}
		m.DatabaseURL[s] = db.DSN
		leaf := certs.Leaves[mtls.Service(s)]
		m.startReady(t, s, filepath.Join(o.BinDir, s), func() (map[string]string, string) {
			m.GRPCAddr[s], m.HTTPAddr[s] = freeport.Addr(t), freeport.Addr(t)
			env := map[string]string{
				"DATABASE_URL":           db.DSN,
				"SESSION_SECRET":         testSessionSecret,
				"ENCRYPTION_PASSWORD":    testEncryptionPassword,
				"REDIS_URL":              m.RedisURL,
				"LOG_FORMAT":             "json",
				"LOG_LEVEL":              o.LogLevel,
				"MTLS_CA_CERT_PATH":      certs.CACert,
				"MTLS_SERVER_CERT_PATH":  leaf.Cert,
				"MTLS_SERVER_KEY_PATH":   leaf.Key,
				"GRPC_ADDR":              m.GRPCAddr[s],
				"HTTP_ADDR":              m.HTTPAddr[s],
				"AUTH_GRPC_ADDR":         m.GRPCAddr["auth"],
				"AUDIT_LOG_PATH":         filepath.Join(dir, "audit.jsonl"),
				"SHUTDOWN_DRAIN_TIMEOUT": "5s",
			}
			if o.Pprof {
				env["PPROF_ENABLED"] = "true"
			}
			for k, v := range o.ServiceEnv {
				env[k] = v
			}
			m.opsURL[s] = "http://" + m.HTTPAddr[s]
			return env, m.opsURL[s] + "/readyz"
		})
	}

	m.gatewayEnv = map[string]string{
		"DATABASE_URL":             pgtest.AdminDSN(t),
		"SESSION_SECRET":           testSessionSecret,
		"ENCRYPTION_PASSWORD":      testEncryptionPassword,
		"REDIS_URL":                m.RedisURL,
		"LOG_FORMAT":               "json",
		"LOG_LEVEL":                o.LogLevel,
		"MTLS_CA_CERT_PATH":        certs.CACert,
		"MTLS_SERVER_CERT_PATH":    certs.Leaves[mtls.Service("gateway")].Cert,
		"MTLS_SERVER_KEY_PATH":     certs.Leaves[mtls.Service("gateway")].Key,
		"VERSION":                  "e2e",
		"GATEWAY_SHUTDOWN_TIMEOUT": "5s",
	}
	if o.Pprof {
		m.gatewayEnv["PPROF_ENABLED"] = "true"
	}
	for _, s := range Services() {
		m.gatewayEnv[strings.ToUpper(s)+"_GRPC_ADDR"] = m.GRPCAddr[s]
	}
	for k, v := range o.GatewayEnv {
		m.gatewayEnv[k] = v
	}
	m.binDir = o.BinDir
	m.URL, m.MetricsURL = m.AddGateway(t)
	return m
}

// AddGateway starts another gateway replica with the same configuration (same backends, same
// Redis) and returns its base URL and metrics URL.
func (m *Mesh) AddGateway(t testing.TB) (url, metricsURL string) {
	t.Helper()
	name := "gateway"
	if m.gateways > 0 {
		name = fmt.Sprintf("gateway-%d", m.gateways+1)
	}
	m.gateways++
	var promPort string
	m.startReady(t, name, filepath.Join(m.binDir, "gateway"), func() (map[string]string, string) {
		gwAddr := freeport.Addr(t)
		_, promPort, _ = net.SplitHostPort(freeport.Addr(t))
		env := map[string]string{"GATEWAY_ADDR": gwAddr, "PROMETHEUS_PORT": promPort}
		for k, v := range m.gatewayEnv {
			env[k] = v
		}
		url = "http://" + gwAddr
		return env, url + "/health/detailed"
	})
	m.opsURL[name] = "http://127.0.0.1:" + promPort
	return url, "http://127.0.0.1:" + promPort + "/metrics"
}

// migrations reads a service's goose migrations from the repository, so its test database is
// created migrated (the service then applies none) and the test key can be inserted first.
func migrations(t testing.TB, repoRoot, svc string) fs.FS {
	t.Helper()
	dir := filepath.Join(repoRoot, "services", svc, "migrations")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("e2e: migrations of %s: %v", svc, err)
	}
	out := fstest.MapFS{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	return out
}

// trustTestKey publishes the test key in auth's signing_keys as a verification-only key (a
// rotated-out key: not_after in the future, so auth publishes it and never signs with it; its
// private half is not stored).
func (m *Mesh) trustTestKey(t testing.TB, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("e2e: connect to auth's database: %v", err)
	}
	defer conn.Close(context.Background())
	placeholder := make([]byte, 60) // never decrypted: the key is not the active one
	_, _ = rand.Read(placeholder)
	if _, err := conn.Exec(ctx, `INSERT INTO signing_keys (kid, alg, public_key, private_key_enc, created_at, not_after)
		VALUES ($1, 'EdDSA', $2, $3, now() - interval '1 minute', now() + interval '1 day')`,
		m.key.ID, []byte(m.key.Public()), placeholder); err != nil {
		t.Fatalf("e2e: publish the test signing key: %v", err)
	}
}

// start runs bin with exactly env (plus PATH), logging to logs/<name>.log, and stops it (SIGTERM,
// then SIGKILL after 10 s) when the test ends.
func (m *Mesh) start(t testing.TB, name, bin string, env map[string]string) {
	t.Helper()
	logPath := filepath.Join(m.logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(logPath)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The child dies with the test process, even when the test binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("e2e: start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	m.procs[name] = p
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
			t.Errorf("e2e: %s did not stop within 10s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("e2e: %s log (last lines):\n%s", name, tail(logPath, 15))
		}
	})
}

// errExited is a process that exited before it was ready.
var errExited = errors.New("exited before it was ready")

// ready polls url until it answers 200; it fails (wrapping errExited) when the process exits first,
// or after 30 s.
func (m *Mesh) ready(name, url string) error {
	p := m.procs[name]
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.done:
			return fmt.Errorf("e2e: %s %w (%v):\n%s", name, errExited, p.err, tail(p.log, 40))
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: %s not ready at %s within 30s (last: %v):\n%s", name, url, err, tail(p.log, 40))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// startReady starts a process and waits until url(addrs) answers, picking new addresses and
// starting again when the process lost a picked address to another listener before binding it.
func (m *Mesh) startReady(t testing.TB, name, bin string, pick func() (env map[string]string, url string)) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		env, url := pick()
		m.start(t, name, bin, env)
		err := m.ready(name, url)
		if err == nil {
			return
		}
		if attempt < 3 && errors.Is(err, errExited) && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		t.Fatal(err)
	}
}

// CPUTimes returns the CPU time (user + system) each running process, with its child processes,
// has used so far, by name ("gateway", "auth", …, and "driver": this process, which sends the
// load, with every child process it has waited for, such as a benchmark's load processes), from
// /proc (Linux; empty elsewhere).
func (m *Mesh) CPUTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	if d, ok := cpuTime(os.Getpid(), true); ok {
		out["driver"] = d
	}
	for name, p := range m.procs {
		if d, ok := treeCPUTime(p.cmd.Process.Pid); ok {
			out[name] = d
		}
	}
	return out
}

// treeCPUTime is cpuTime of pid plus that of its running descendants (auth's password hash
// workers), from /proc/<pid>/task/<tid>/children.
func treeCPUTime(pid int) (time.Duration, bool) {
	total, ok := cpuTime(pid, false)
	if !ok {
		return 0, false
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(f); err == nil {
				if d, ok := treeCPUTime(child); ok {
					total += d
				}
			}
		}
	}
	return total, true
}

// CPUProfiles records a CPU profile of every process for d, concurrently, into dir as
// <prefix><process>.pprof (`go tool pprof -top bin/<process> <file>`). The mesh must have been
// started with Options.Pprof. It returns when every profile is written.
func (m *Mesh) CPUProfiles(ctx context.Context, dir, prefix string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	secs := max(1, int(d/time.Second))
	client := &http.Client{Timeout: d + 30*time.Second}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for name, base := range m.opsURL {
		wg.Go(func() {
			err := fetchTo(ctx, client, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs),
				filepath.Join(dir, prefix+name+".pprof"))
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func fetchTo(ctx context.Context, client *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuTime reads utime+stime of pid from /proc/<pid>/stat (in clock ticks of 10 ms: USER_HZ is
// 100 on every Linux architecture Go supports), with reaped, also cutime+cstime: the CPU time
// of the children it has waited for.
func cpuTime(pid int, reaped bool) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the parenthesised command name; utime, stime, cutime and cstime are fields
	// 14 to 17.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, false
	}
	fields := f[11:13]
	if reaped {
		fields = f[11:15]
	}
	var ticks int64
	for _, v := range fields {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, true
}

// Log returns the last lines of a process's log.
func (m *Mesh) Log(name string, lines int) string { return tail(m.procs[name].log, lines) }

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TokenOptions shape a minted access token.
type TokenOptions struct {
	// Subject is the user id (default a random uuid).
	Subject string
	// Role is owner|admin|broker|client (default "owner").
	Role string
	// Permissions are the token's permissions, exactly.
	Permissions []string
	// CustomerIDs scope a client or broker; AllCustomers lifts the scope.
	CustomerIDs  []string
	AllCustomers bool
	// IssuedAt defaults to now; the token lives TTL (default 15 min) from it. An IssuedAt 20
	// minutes ago makes an expired token.
	IssuedAt time.Time
	TTL      time.Duration
}

// Token mints an access token under the mesh's trusted test key.
func (m *Mesh) Token(t testing.TB, o TokenOptions) string {
	t.Helper()
	if o.Subject == "" {
		o.Subject = RandomUUID()
	}
	if o.Role == "" {
		o.Role = "owner"
	}
	if o.IssuedAt.IsZero() {
		o.IssuedAt = time.Now()
	}
	if o.TTL == 0 {
		o.TTL = token.MaxLifetime
	}
	p := &authn.Principal{
		Kind: authn.KindUser, Subject: o.Subject, Email: o.Subject + "@e2e.test", Role: o.Role,
		Permissions: o.Permissions, CustomerIDs: o.CustomerIDs, AllCustomers: o.AllCustomers,
	}
	claims := token.ClaimsFor(p, "", o.IssuedAt, o.TTL)
	claims.ExpiresAt = jwt.NewNumericDate(claims.IssuedAt.Add(o.TTL)) // ClaimsFor truncates iat
	s, err := m.issuer.Sign(claims, m.key)
	if err != nil {
		t.Fatalf("e2e: mint token: %v", err)
	}
	return s
}

// RandomUUID returns a random version 4 UUID.
func RandomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// DialAsOperator connects to a service with the operator certificate (as hictl does).
func (m *Mesh) DialAsOperator(t testing.TB, svc string) *grpc.ClientConn {
	t.Helper()
	src, err := mtls.NewSource(m.Certs.Config(Operator()), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcclient.Dial(context.Background(), m.GRPCAddr[svc], src, mtls.Service(svc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Response is a decoded gateway answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrorBody is the REST error body of DESIGN.md §4.
type ErrorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	GRPCCode  string `json:"grpc_code"`
	RequestID string `json:"request_id"`
}

// Error decodes the body as an error body (zero when it is not one).
func (r Response) Error() ErrorBody {
	var e ErrorBody
	_ = json.Unmarshal(r.Body, &e)
	return e
}

// Do sends one request to the gateway. body nil sends none; a non-nil body is JSON-encoded
// unless it is already []byte.
func (m *Mesh) Do(t testing.TB, client *http.Client, method, path string, body any, header map[string]string) Response {
	t.Helper()
	return DoURL(t, client, method, m.URL+path, body, header)
}

// DoURL is Do against any base (another gateway replica).
func DoURL(t testing.TB, client *http.Client, method, url string, body any, header map[string]string) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Bearer is the Authorization header for credential.
func Bearer(credential string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + credential}
}

// startRedis runs a throwaway redis-server on a free loopback port and returns its URL.
func startRedis(t testing.TB, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	addr := freeport.Addr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return "redis://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e: redis-server on %s did not answer within 5s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PeakRSS returns a running process's peak resident set size in bytes (VmHWM of
// /proc/<pid>/status; Linux only, false elsewhere), by name ("mining", "gateway", …).
func (m *Mesh) PeakRSS(name string) (int64, bool) {
	p, ok := m.procs[name]
	if !ok {
		return 0, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}
