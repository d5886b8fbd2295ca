// Package service is the start-up sequence every HashInsight service binary shares: configuration,
// logging, tracing, mTLS material, its own Postgres schema (connect + migrate), the cache backend,
// the gRPC server with the platform interceptor chain, health and drain on SIGTERM.
//
// A service's main stays short and shows its own wiring: it names its Spec and registers its gRPC
// implementation in the Register callback, which receives the Runtime (database pool, cache backend,
// logger, server) to build its store → domain → grpcapi layers from.
package service

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/config"
	"github.com/hashinsight/platform/pkg/grpcserver"
	hilog "github.com/hashinsight/platform/pkg/log"
	"github.com/hashinsight/platform/pkg/mtls"
	hiotel "github.com/hashinsight/platform/pkg/otel"
	"github.com/hashinsight/platform/pkg/postgres"
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
}

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
	// Logs receives the structured logs; default Stderr.
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
	logger, err := hilog.New(opts.Logs, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		fmt.Fprintf(opts.Stderr, "%s: %v\n", spec.Name, err)
		return config.ExitCode
	}
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
	srv, err := grpcserver.New(grpcserver.Config{
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
	})
	if err != nil {
		return fmt.Errorf("grpc server: %w", err)
	}
	rt := &Runtime{
		Spec: spec, Config: cfg, Logger: logger, DB: pool, Redis: rdb,
		TLS: tlsSource, Server: srv, Registry: reg, Migrated: migrated,
	}
	if err := register(ctx, rt); err != nil {
		return fmt.Errorf("register: %w", err)
	}
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
