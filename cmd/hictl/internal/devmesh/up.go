package devmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashinsight/platform/cmd/hictl/internal/meshhealth"
	"github.com/hashinsight/platform/cmd/hictl/internal/procs"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

// Defaults of Options.
const (
	DefaultWaitTimeout = 30 * time.Second
	DefaultStopTimeout = 10 * time.Second
	// nameWidth pads the process-name column (the longest name is "analytics").
	nameWidth = 9
)

// Operator is the identity whose certificate dev up issues for people and tools.
func Operator() mtls.Identity { return mtls.Operator("dev") }

// Identities are every identity dev up issues a certificate for.
func Identities() []mtls.Identity {
	var ids []mtls.Identity
	for _, c := range Components() {
		ids = append(ids, mtls.Service(c.Name))
	}
	return append(ids, Operator())
}

// Options configures Up.
type Options struct {
	Layout Layout
	// RepoRoot is where `go build` runs and the processes' working directory;
	// empty with NoBuild runs them in the data directory.
	RepoRoot string
	// NoBuild reuses the binaries in .data/bin.
	NoBuild bool
	// WaitTimeout bounds the wait for every process to be healthy.
	WaitTimeout time.Duration
	// StopTimeout bounds the wait between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// Environ is the environment the children inherit (os.Environ()).
	Environ []string
	// Out receives every message and the children's prefixed output.
	Out io.Writer
	// Rand is the source of generated secrets (crypto/rand.Reader).
	Rand io.Reader
}

// Up runs the local mesh until ctx is done (Ctrl-C, SIGTERM), then stops it.
// It returns nil after a clean stop, and an error when start-up fails or a
// process exits on its own.
func Up(ctx context.Context, o Options) (err error) {
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	out := procs.NewSyncWriter(o.Out)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, procs.Prefix("hictl", nameWidth)+format+"\n", args...)
	}
	lookup := lookupIn(o.Environ)
	l := o.Layout
	t0 := time.Now()

	// 1. Layout and lock.
	if err := l.Prepare(); err != nil {
		return err
	}
	unlock, err := Lock(l)
	if err != nil {
		return err
	}
	defer unlock()
	comps := Components()
	endpoints := ResolveEndpoints(lookup)
	if err := CheckPortsFree(endpoints.Listeners()); err != nil {
		return err
	}

	// 6 (early). Build in the background while the database comes up.
	build := startBuild(ctx, o, comps, out)
	defer build.cancelAndWait()

	// 1. Secrets.
	secrets, generated, err := LoadOrCreateSecrets(l.Secrets, ServiceNames(), o.Rand)
	if err != nil {
		return err
	}
	if len(generated) > 0 {
		say("secrets: generated %s in %s", strings.Join(generated, ", "), l.Secrets)
	} else {
		say("secrets: reusing %s", l.Secrets)
	}

	// 2. Certificates.
	files, err := devca.Ensure(l.Certs, Identities())
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	say("certificates: %s (CA, %d identities)", l.Certs, len(files.Leaves))

	// 3. PostgreSQL.
	pgLog, err := os.OpenFile(filepath.Join(l.Logs, "pg_ctl.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pgLog.Close()
	db, err := ProvideDatabase(ctx, l, lookup, pgLog)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if db.Started {
		defer func() {
			say("postgres: stopping the private cluster")
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if serr := db.Cluster.Stop(stopCtx); serr != nil {
				say("postgres: %v", serr)
				err = errors.Join(err, serr)
			}
		}()
	}
	say("postgres: %s", db.Describe())
	if db.Cluster != nil && !db.Started {
		say("postgres: it keeps running when this run stops; `hictl dev down` stops it")
	}

	// 4. Redis or the in-memory cache.
	redisURL, why := ChooseRedis(ctx, lookup)
	if redisURL == MemoryRedisURL {
		say("cache: in-memory only (REDIS_URL=memory): %v", why)
	} else {
		say("cache: Redis at %s", redactURL(redisURL))
	}

	// 5. Schemas and roles.
	roleDSNs, err := BootstrapSchemas(ctx, db.AdminDSN, ServiceNames(), secrets)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	say("postgres: schemas and roles ready for %s", strings.Join(ServiceNames(), ", "))

	// 6. Binaries.
	if err := build.wait(); err != nil {
		return err
	}
	if !o.NoBuild {
		say("build: %d binaries in %s (%.1fs)", len(comps), l.Bin, build.took.Seconds())
	}

	// 7. Processes.
	mesh := MeshEnv{
		AdminDSN:  db.AdminDSN,
		RoleDSNs:  roleDSNs,
		Secrets:   secrets,
		RedisURL:  redisURL,
		CACert:    files.CACert,
		Certs:     map[string]CertPair{},
		Endpoints: endpoints,
		AuditLog:  l.AuditLog(),
	}
	for _, c := range comps {
		lf := files.Leaves[mtls.Service(c.Name)]
		mesh.Certs[c.Name] = CertPair{Cert: lf.Cert, Key: lf.Key}
	}
	workDir := o.RepoRoot
	if workDir == "" {
		workDir = l.Root
	}
	group := procs.New(out, nameWidth)
	defer func() {
		say("stopping %s", strings.Join(group.Running(), ", "))
		if killed := group.Stop(o.StopTimeout); len(killed) > 0 {
			say("killed after %s: %s", o.StopTimeout, strings.Join(killed, ", "))
		}
	}()
	started := time.Now()
	for _, c := range comps {
		err := group.Start(procs.Spec{
			Name:    c.Name,
			Path:    filepath.Join(l.Bin, c.Name),
			Env:     mesh.ChildEnv(c, o.Environ),
			Dir:     workDir,
			LogPath: l.LogFile(c.Name),
		})
		if err != nil {
			return err
		}
	}

	// 8. Health.
	operator := files.Leaves[Operator()]
	checker, err := meshhealth.NewChecker(mtls.Config{CACertPath: files.CACert, CertPath: operator.Cert, KeyPath: operator.Key})
	if err != nil {
		return err
	}
	defer checker.Close()
	healthCtx, cancelHealth := context.WithTimeout(ctx, o.WaitTimeout)
	healthDone := make(chan error, 1)
	var report healthReport
	go func() { healthDone <- waitHealthy(healthCtx, checker, endpoints, &report) }()
	select {
	case herr := <-healthDone:
		cancelHealth()
		if herr != nil {
			if ctx.Err() != nil {
				return nil // interrupted while starting: stop cleanly
			}
			say("not healthy within %s:\n%s", o.WaitTimeout, report.String(started))
			return fmt.Errorf("mesh not healthy within %s: %w", o.WaitTimeout, herr)
		}
	case e := <-group.Exited():
		cancelHealth()
		<-healthDone
		return exitError(e)
	}
	say("all SERVING %.1fs after start (%.1fs in total):\n%s", time.Since(started).Seconds(), time.Since(t0).Seconds(), report.String(started))

	// 10. Bootstrap owner.
	bootstrapOwner(ctx, o, lookup, checker, endpoints, say)

	// 9. URLs.
	fmt.Fprint(out, Banner(l, endpoints, db, redisURL, o.RepoRoot))

	// 11. Run until interrupted or a process dies.
	select {
	case <-ctx.Done():
		say("interrupted, shutting down")
		return nil
	case e := <-group.Exited():
		return exitError(e)
	}
}

func exitError(e *procs.ExitError) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%v; its last lines:\n", e)
	for _, line := range e.Tail {
		b.WriteString("    " + line + "\n")
	}
	return errors.New(strings.TrimRight(b.String(), "\n"))
}

// builder runs the background `go build`.
type builder struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	took   time.Duration
}

func startBuild(ctx context.Context, o Options, comps []Component, out io.Writer) *builder {
	ctx, cancel := context.WithCancel(ctx)
	b := &builder{cancel: cancel, done: make(chan struct{})}
	if o.NoBuild {
		b.err = CheckBinaries(o.Layout.Bin, comps)
		close(b.done)
		return b
	}
	if o.RepoRoot == "" {
		b.err = errors.New("build: no repository root (go.work) found; run from the repository or use --no-build")
		close(b.done)
		return b
	}
	go func() {
		defer close(b.done)
		t := time.Now()
		w := procs.PrefixWriter(out, "build", nameWidth)
		b.err = Build(ctx, o.RepoRoot, o.Layout.Bin, comps, w)
		w.Flush()
		b.took = time.Since(t)
	}()
	return b
}

func (b *builder) wait() error {
	<-b.done
	return b.err
}

func (b *builder) cancelAndWait() {
	b.cancel()
	<-b.done
}

// healthReport records when each process became healthy.
type healthReport struct {
	mu    sync.Mutex
	ready map[string]time.Time
	last  map[string]string
}

func (r *healthReport) set(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ready == nil {
		r.ready, r.last = map[string]time.Time{}, map[string]string{}
	}
	if err == nil {
		r.ready[name] = time.Now()
		return
	}
	r.last[name] = err.Error()
}

// String lists each process with its time to SERVING, or its last problem.
func (r *healthReport) String(started time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, c := range Components() {
		if t, ok := r.ready[c.Name]; ok {
			fmt.Fprintf(&b, "    %-9s SERVING after %.2fs\n", c.Name, t.Sub(started).Seconds())
		} else {
			fmt.Fprintf(&b, "    %-9s not ready: %s\n", c.Name, r.last[c.Name])
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// waitHealthy waits, in parallel, for each service's gRPC health over mTLS
// and for the gateway's /health.
func waitHealthy(ctx context.Context, checker *meshhealth.Checker, e Endpoints, r *healthReport) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(e.GRPC)+1)
	for _, svc := range ServiceNames() {
		wg.Go(func() {
			err := checker.WaitServing(ctx, meshhealth.Target{Name: svc, Addr: DialAddr(e.GRPC[svc])})
			r.set(svc, err)
			errs <- err
		})
	}
	wg.Go(func() {
		client := &http.Client{Timeout: time.Second}
		err := meshhealth.WaitHTTP(ctx, client, "http://"+DialAddr(e.Gateway)+"/health")
		r.set("gateway", err)
		errs <- err
	})
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

func bootstrapOwner(ctx context.Context, o Options, lookup func(string) (string, bool), checker *meshhealth.Checker, e Endpoints, say func(string, ...any)) {
	owner, err := ResolveOwner(lookup, o.Layout.Owner, o.Rand)
	if err != nil {
		say("owner bootstrap failed: %v", err)
		return
	}
	conn, err := checker.Conn(ctx, meshhealth.Target{Name: "auth", Addr: DialAddr(e.GRPC["auth"])})
	if err != nil {
		say("owner bootstrap failed: %v", err)
		return
	}
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := BootstrapOwner(callCtx, AuthOwnerCreator{Conn: conn}, owner, o.Layout.OwnerCreated)
	where := "password from " + OwnerPasswordVar
	if !owner.FromEnv {
		where = "password in " + o.Layout.Owner
	}
	switch {
	case err != nil:
		say("owner bootstrap failed for %s: %v", owner.Email, err)
	case res == OwnerSkipped:
		say("owner bootstrap skipped: auth does not store users yet (login will be %s, %s)", owner.Email, where)
	case res == OwnerAlreadyCreated:
		say("owner: %s exists (%s)", owner.Email, where)
	case owner.FromEnv:
		say("owner: created %s (%s)", owner.Email, where)
	default:
		// Shown once, when created; it stays in owner.txt (0600).
		say("owner: created %s with password %s (saved in %s)", owner.Email, owner.Password, o.Layout.Owner)
	}
}

// Banner is the block printed once the mesh is up.
func Banner(l Layout, e Endpoints, db Database, redisURL, repoRoot string) string {
	rel := func(p string) string {
		if repoRoot != "" {
			if r, err := filepath.Rel(repoRoot, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		return p
	}
	gw := DialAddr(e.Gateway)
	_, gwPort, _ := strings.Cut(gw, ":")
	if strings.HasPrefix(gw, "127.0.0.1:") {
		gw = "localhost:" + gwPort
	}
	var b strings.Builder
	b.WriteString("\nHashInsight local mesh is up. Ctrl-C stops it.\n\n")
	fmt.Fprintf(&b, "  REST          http://%s\n", gw)
	fmt.Fprintf(&b, "  health        http://%s/health/detailed\n", gw)
	fmt.Fprintf(&b, "  OpenAPI       http://%s/openapi.json\n", gw)
	fmt.Fprintf(&b, "  metrics       http://localhost:%s/metrics (gateway)\n", e.PrometheusPort)
	names := ServiceNames()
	for _, svc := range names {
		fmt.Fprintf(&b, "  %-13s gRPC %-16s metrics http://%s/metrics\n", svc, e.GRPC[svc], DialAddr(e.HTTP[svc]))
	}
	cache := redactURL(redisURL)
	if redisURL == MemoryRedisURL {
		cache = "in-memory (no Redis)"
	}
	fmt.Fprintf(&b, "  postgres      %s\n", db.Describe())
	fmt.Fprintf(&b, "  cache         %s\n", cache)
	fmt.Fprintf(&b, "  logs          %s/<name>.log, audit %s\n", rel(l.Logs), rel(l.AuditLog()))
	op := devca.LeafPaths(l.Certs, Operator())
	fmt.Fprintf(&b, "\n  grpcurl with the dev operator certificate (%s):\n", Operator())
	fmt.Fprintf(&b, "    grpcurl -cacert %s -cert %s -key %s %s list\n",
		rel(filepath.Join(l.Certs, devca.CACertFile)), rel(op.Cert), rel(op.Key), e.GRPC["mining"])
	fmt.Fprintf(&b, "    hictl health   # every service's grpc.health.v1 over mTLS\n\n")
	return b.String()
}
