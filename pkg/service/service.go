// Package service is the start-up sequence every HashInsight service binary shares: configuration,
// logging, tracing, mTLS material, its own Postgres schema (connect + migrate), the cache backend,
// the gRPC server with the platform interceptor chain, health and drain on SIGTERM.
//
// A service's main stays short and shows its own wiring: it names its Spec and registers its gRPC
// implementation in the Register callback, which receives the Runtime (database pool, cache backend,
// logger, server) to build its store → domain → grpcapi layers from.
//
// # Authentication
//
// Every server authenticates the user behind each call with a pkg/authn.Authenticator (passed to
// grpcserver as Config.Principal): access tokens (JWTs) are verified locally, API keys and collector
// tokens are resolved, permissions declared on the RPC are enforced and the principal is put in the
// handler's context (authn.FromContext). Where the keys and the resolution come from:
//
//   - Every service but auth calls auth over mTLS at AUTH_GRPC_ADDR (default 127.0.0.1:7001,
//     server identity svc/auth): GetSigningKeys for the token keys (cached, refreshed on an unknown
//     key id at most once a second) and Authenticate for API keys (answers cached ≤30 s). Nothing
//     is fetched before the first credential arrives, so a service starts while auth is still down;
//     until auth answers, credentialed calls get UNAVAILABLE. Denials are logged.
//   - The auth service answers those questions itself, with no RPC to itself: its Register
//     callback hands its in-process implementations to the runtime with UseLocalAuthn.
//
// The auth service's Register therefore ends like this:
//
//	core := … // store → domain
//	authv1.RegisterAuthServiceServer(rt.GRPC(), grpcapi.New(core))
//	rt.UseLocalAuthn(service.LocalAuthn{
//		Keys:     core.SigningKeys, // authn.KeySource: the published public keys
//		Resolver: core,             // authn.CredentialResolver: hsi_… → principal
//		Recorder: core.Audit,       // authn.DenialRecorder: permission_denied audit events
//	})
//
// The runtime wraps the in-process checkers exactly like the remote ones (key-set cache,
// verified-token cache, ≤30 s resolution cache with singleflight), so both paths behave the same.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/config"
	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/grpcserver"
	hilog "github.com/hashinsight/platform/pkg/log"
	"github.com/hashinsight/platform/pkg/mtls"
	hiotel "github.com/hashinsight/platform/pkg/otel"
	"github.com/hashinsight/platform/pkg/postgres"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// Version is reported in logs, traces and health; release builds set it with -ldflags -X.
var Version = "dev"

// Spec describes one service binary.
type Spec struct {
	// Name is the service name: its SPIFFE identity svc/<Name>, its Postgres schema and the
	// `service` label of its metrics.
	Name string
	// Services are the full names of the gRPC services the binary registers; their methods'
	// access declarations form the allow-list policy.
	Services []protoreflect.FullName
	// Migrations holds the embedded goose migrations of the service's schema.
	Migrations fs.FS
	// DefaultGRPCAddr and DefaultHTTPAddr are used when GRPC_ADDR / HTTP_ADDR are unset.
	DefaultGRPCAddr string
	DefaultHTTPAddr string
	// MaxRecvMsgBytes overrides gRPC's 4 MiB limit on a received message when > 0 (mining's
	// whole-file CSV import).
	MaxRecvMsgBytes int
}

// Config is what every service reads from the environment, beyond config.Common.
type Config struct {
	config.Common
	// GRPCAddr is the gRPC listen address (mTLS).
	GRPCAddr string `env:"GRPC_ADDR"`
	// HTTPAddr serves /metrics, /healthz and /readyz.
	HTTPAddr string `env:"HTTP_ADDR"`
	// DrainTimeout bounds GracefulStop on SIGTERM before in-flight calls are cut.
	DrainTimeout time.Duration `env:"SHUTDOWN_DRAIN_TIMEOUT" envDefault:"20s"`
	// DBHealthInterval is how often the database is pinged to drive the health status.
	DBHealthInterval time.Duration `env:"DB_HEALTH_INTERVAL" envDefault:"5s"`
	// AuthGRPCAddr is where the auth service answers GetSigningKeys and Authenticate (mTLS,
	// identity svc/auth). Unused by auth itself.
	AuthGRPCAddr string `env:"AUTH_GRPC_ADDR" envDefault:"127.0.0.1:7001"`
}

// Runtime is what a service's Register callback builds on.
type Runtime struct {
	Spec     Spec
	Config   *Config
	Logger   *slog.Logger
	DB       *pgxpool.Pool
	Redis    redis.UniversalClient // nil when the in-memory cache is selected
	TLS      *mtls.Source
	Server   *grpcserver.Server
	Registry *prometheus.Registry
	// Migrated is the number of migrations applied at this start (0 on a restart).
	Migrated int

	local   *LocalAuthn // set by UseLocalAuthn during Register
	onStops []func()    // OnStop callbacks, run in reverse order
}

// LocalAuthn are the in-process credential checkers of the service that issues the credentials
// (auth); see the package documentation.
type LocalAuthn struct {
	// Keys are the public keys of the access tokens the service signs. Required.
	Keys authn.KeySource
	// Resolver resolves API keys and collector tokens (already checked by apikey.Parse). Required.
	Resolver authn.CredentialResolver
	// Recorder is told of permission denials; nil logs them.
	Recorder authn.DenialRecorder
}

// UseLocalAuthn makes the server authenticate calls with l instead of calling the auth service.
// Call it from the Register callback.
func (rt *Runtime) UseLocalAuthn(l LocalAuthn) { rt.local = &l }

// OnStop registers f to run once the server has stopped serving (every in-flight call has
// drained, or the drain timed out), before the database pool closes: the place to stop what
// the Register callback started that calls may still use, such as worker processes. Callbacks
// run in the reverse order of registration. Call it from the Register callback.
func (rt *Runtime) OnStop(f func()) { rt.onStops = append(rt.onStops, f) }

// GRPC is the server to register gRPC implementations on.
func (rt *Runtime) GRPC() *grpc.Server { return rt.Server.GRPC() }

// NewCache returns a two-level cache named name on the runtime's Redis (L1 only without Redis).
func (rt *Runtime) NewCache(name string, l1TTL, l2TTL time.Duration) *cache.Cache {
	return cache.New(cache.Options{
		Name:   name,
		Redis:  rt.Redis,
		L1TTL:  l1TTL,
		L2TTL:  l2TTL,
		Logger: rt.Logger,
	})
}

// RegisterFunc registers the service's gRPC implementations on rt.GRPC().
type RegisterFunc func(ctx context.Context, rt *Runtime) error

// Options are the process-level inputs of Run; tests set them, Main uses the real process.
type Options struct {
	// Environ replaces the process environment when non-nil.
	Environ map[string]string
	// Stderr receives configuration errors and, unless Logs is set, the logs. Default os.Stderr.
	Stderr io.Writer
	// Logs receives the structured logs; default Stderr. Unless LOG_BUFFERED=false they are
	// written in batches (pkg/log.NewBuffered), every line by the time Run returns.
	Logs io.Writer
	// Ready, when set, is called once the server is registered and about to serve.
	Ready func(rt *Runtime)
}

// Main runs the service until SIGINT or SIGTERM and returns the process exit code:
// 0 after a clean drain, config.ExitCode (2) for invalid configuration, 1 for any other failure.
func Main(spec Spec, register RegisterFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return Run(ctx, spec, register, Options{})
}

// Run is Main with an explicit context and process inputs.
func Run(ctx context.Context, spec Spec, register RegisterFunc, opts Options) int {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Logs == nil {
		opts.Logs = opts.Stderr
	}
	cfg := &Config{}
	var err error
	if opts.Environ != nil {
		err = config.LoadFrom(cfg, opts.Environ)
	} else {
		err = config.Load(cfg)
	}
	if err != nil {
		return config.Exit(err, opts.Stderr)
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = spec.DefaultGRPCAddr
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = spec.DefaultHTTPAddr
	}
	logger, closeLogs, err := hilog.NewBuffered(opts.Logs, cfg.Log.Format, cfg.Log.Level, cfg.Log.Buffered)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "%s: %v\n", spec.Name, err)
		return config.ExitCode
	}
	// Deferred here, it runs after run's own deferred shutdown steps (which may log) and after
	// the final error line, on every path out of Run.
	defer func() {
		if err := closeLogs(); err != nil {
			fmt.Fprintf(opts.Stderr, "%s: flush logs: %v\n", spec.Name, err)
		}
	}()
	logger = logger.With("service", spec.Name)
	if err := run(ctx, spec, cfg, logger, register, opts); err != nil {
		logger.Error("service stopped with an error", "error", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, spec Spec, cfg *Config, logger *slog.Logger, register RegisterFunc, opts Options) error {
	attrs := hilog.Masked(cfg)
	args := make([]any, 0, len(attrs))
	for _, a := range attrs {
		args = append(args, a)
	}
	logger.Info("starting", "version", Version, slog.Group("config", args...))

	shutdownTracing, err := hiotel.Setup(ctx, spec.Name, Version, cfg.Tracing.OTLPEndpoint)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			logger.Warn("tracing shutdown", "error", err)
		}
	}()

	tlsSource, err := mtls.NewSource(mtls.Config{
		CACertPath:        cfg.MTLS.CACertPath,
		CertPath:          cfg.MTLS.ServerCertPath,
		KeyPath:           cfg.MTLS.ServerKeyPath,
		VerifyClient:      cfg.MTLS.VerifyClient,
		AllowedDNPatterns: cfg.MTLS.AllowedDNPatterns,
	}, logger)
	if err != nil {
		return fmt.Errorf("mtls: %w", err)
	}
	if got, want := tlsSource.Identity(), mtls.Service(spec.Name); got != want {
		return fmt.Errorf("mtls: certificate identity is %s, want %s", got, want)
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go tlsSource.Run(runCtx)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pool, migrated, err := openDatabase(ctx, spec, cfg, reg, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	rdb, err := openRedis(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if rdb != nil {
		defer func() { _ = rdb.Close() }()
	}

	policy, err := access.Load(spec.Services...)
	if err != nil {
		return fmt.Errorf("access policy: %w", err)
	}
	principal := &lateAuthenticator{}
	srv, err := grpcserver.New(grpcserver.Config{
		Principal:    principal,
		Service:      spec.Name,
		Addr:         cfg.GRPCAddr,
		HTTPAddr:     cfg.HTTPAddr,
		TLS:          tlsSource.ServerTLS(),
		Logger:       logger,
		Policy:       policy,
		Registry:     reg,
		DrainTimeout: cfg.DrainTimeout,
		SLOWindow:    cfg.SLOWindow(),
		Version:      Version,
		Pprof:        cfg.PprofEnabled,

		MaxRecvMsgSize: spec.MaxRecvMsgBytes,
	})
	if err != nil {
		return fmt.Errorf("grpc server: %w", err)
	}
	rt := &Runtime{
		Spec: spec, Config: cfg, Logger: logger, DB: pool, Redis: rdb,
		TLS: tlsSource, Server: srv, Registry: reg, Migrated: migrated,
	}
	defer func() {
		for i := len(rt.onStops) - 1; i >= 0; i-- {
			rt.onStops[i]()
		}
	}()
	if err := register(ctx, rt); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	authenticator, closeAuthn, err := newAuthenticator(ctx, rt)
	if err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	defer closeAuthn()
	principal.set(authenticator)
	go watchDatabase(runCtx, rt)
	if opts.Ready != nil {
		opts.Ready(rt)
	}
	logger.Info("serving", "grpc_addr", cfg.GRPCAddr, "http_addr", cfg.HTTPAddr, "migrations_applied", migrated)
	if err := srv.Serve(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// openDatabase connects as the service's own role and applies its pending migrations.
func openDatabase(ctx context.Context, spec Spec, cfg *Config, reg prometheus.Registerer, logger *slog.Logger) (*pgxpool.Pool, int, error) {
	dsn, err := postgres.SearchPathDSN(cfg.DatabaseURLFor(spec.Name), spec.Name)
	if err != nil {
		return nil, 0, fmt.Errorf("database url: %w", err)
	}
	pool, err := postgres.Connect(ctx, dsn, postgres.Options{Service: spec.Name, Registerer: reg})
	if err != nil {
		return nil, 0, fmt.Errorf("database: %w", err)
	}
	applied, err := postgres.Migrate(ctx, pool, spec.Name, spec.Migrations, postgres.WithMigrateLogger(logger))
	if err != nil {
		pool.Close()
		return nil, 0, fmt.Errorf("migrate schema %s: %w", spec.Name, err)
	}
	return pool, applied, nil
}

// openRedis returns nil (in-memory cache) when REDIS_URL selects it. A configured Redis that does
// not answer yet is not fatal: the cache serves from L1 and the source until it comes back.
func openRedis(ctx context.Context, cfg *Config, logger *slog.Logger) (redis.UniversalClient, error) {
	if cfg.InMemoryCache() {
		logger.Info("cache: in-memory only")
		return nil, nil
	}
	rdb, err := cache.NewRedis(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		logger.Warn("cache: redis not answering yet; serving from memory until it does", "error", err)
	}
	return rdb, nil
}

// watchDatabase turns the database's reachability into the gRPC health status, so the gateway's
// /health/detailed and orchestrators see a service that cannot reach its schema as NOT_SERVING.
func watchDatabase(ctx context.Context, rt *Runtime) {
	t := time.NewTicker(rt.Config.DBHealthInterval)
	defer t.Stop()
	healthy := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := rt.DB.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && healthy:
			healthy = false
			rt.Logger.Error("database unreachable: reporting NOT_SERVING", "error", err)
			rt.setServing(healthpb.HealthCheckResponse_NOT_SERVING)
		case err == nil && !healthy:
			healthy = true
			rt.Logger.Info("database reachable again: reporting SERVING")
			rt.setServing(healthpb.HealthCheckResponse_SERVING)
		}
	}
}

// setServing sets the overall and per-service health status. After shutdown has begun the health
// server ignores it, so a late database check cannot flip a draining service back to SERVING.
func (rt *Runtime) setServing(st healthpb.HealthCheckResponse_ServingStatus) {
	rt.Server.Health().SetServingStatus("", st)
	for _, name := range rt.Spec.Services {
		rt.Server.Health().SetServingStatus(string(name), st)
	}
}

// newAuthenticator builds the server's Authenticator: from the in-process checkers handed to
// UseLocalAuthn, else over an mTLS connection to auth (dialled lazily: nothing is fetched before
// the first credential). The returned func closes that connection.
func newAuthenticator(ctx context.Context, rt *Runtime) (*authn.Authenticator, func(), error) {
	keys, resolver, recorder := authn.KeySource(nil), authn.CredentialResolver(nil), authn.DenialRecorder(nil)
	closeFn := func() {}
	if l := rt.local; l != nil {
		if l.Keys == nil || l.Resolver == nil {
			return nil, nil, errors.New("UseLocalAuthn: Keys and Resolver are required")
		}
		keys, resolver, recorder = l.Keys, l.Resolver, l.Recorder
		rt.Logger.Info("authn: checking credentials in-process")
	} else {
		conn, err := grpcclient.Dial(ctx, rt.Config.AuthGRPCAddr, rt.TLS, mtls.Service("auth"),
			grpcclient.WithIdempotentMethods(
				authv1.AuthService_GetSigningKeys_FullMethodName,
				authv1.AuthService_Authenticate_FullMethodName,
			),
			grpcclient.WithDefaultTimeout(authCallTimeout))
		if err != nil {
			return nil, nil, fmt.Errorf("dial auth: %w", err)
		}
		client := authv1.NewAuthServiceClient(conn)
		keys, resolver = token.NewAuthKeySource(client), authn.NewRemoteResolver(client)
		closeFn = func() { _ = conn.Close() }
		rt.Logger.Info("authn: checking credentials with the auth service", "auth_grpc_addr", rt.Config.AuthGRPCAddr)
	}
	if recorder == nil {
		recorder = authn.LogDenials(rt.Logger)
	}
	keySet := token.NewKeySet(keys, token.KeySetOptions{Logger: rt.Logger})
	return authn.NewAuthenticator(authn.Options{
		Verifier: token.NewVerifier(keySet, token.VerifierOptions{}),
		Resolver: authn.NewCachedResolver(resolver, authn.CacheOptions{}),
		Recorder: recorder,
		Logger:   rt.Logger,
	}), closeFn, nil
}

// authCallTimeout bounds a GetSigningKeys or Authenticate call to auth.
const authCallTimeout = 5 * time.Second

// lateAuthenticator lets the server be built before Register (which may supply the in-process
// checkers); the real Authenticator is set before Serve, so no call ever sees it unset.
type lateAuthenticator struct {
	a atomic.Pointer[authn.Authenticator]
}

func (l *lateAuthenticator) set(a *authn.Authenticator) { l.a.Store(a) }

// Authenticate delegates to the Authenticator.
func (l *lateAuthenticator) Authenticate(ctx context.Context, rule access.Rule, caller mtls.Identity) (context.Context, error) {
	a := l.a.Load()
	if a == nil {
		return ctx, status.Error(codes.Unavailable, "starting")
	}
	return a.Authenticate(ctx, rule, caller)
}
