package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	gwconfig "github.com/hashinsight/platform/gateway/internal/config"
	"github.com/hashinsight/platform/gateway/internal/edge"
	"github.com/hashinsight/platform/gateway/internal/health"
	"github.com/hashinsight/platform/gateway/internal/openapi"
	"github.com/hashinsight/platform/gateway/internal/ops"
	"github.com/hashinsight/platform/gateway/internal/ratelimit"
	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/breaker"
	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/debugpprof"
	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/metrics"
	"github.com/hashinsight/platform/pkg/mtls"
	hiotel "github.com/hashinsight/platform/pkg/otel"
	"github.com/hashinsight/platform/pkg/slo"
	protoopenapi "github.com/hashinsight/platform/proto/openapi"
)

// Breaker settings of every backend: five consecutive transport-level
// failures open it; a trial call goes through after 30 s.
const (
	breakerFailureThreshold = 5
	breakerRecoveryTimeout  = 30 * time.Second
)

// maxResponseBytes caps one backend response message (gRPC's client
// default is 4 MiB). Lists are paginated, so this is generous.
const maxResponseBytes = 32 << 20

// Paths of the gateway's own endpoints.
const (
	pathHealth         = "/health"
	pathHealthDetailed = "/health/detailed"
	pathMetrics        = "/metrics"
)

// gateway is the wired process: everything build creates and close releases.
type gateway struct {
	cfg      gwconfig.Config
	logger   *slog.Logger
	registry *prometheus.Registry
	backends edge.Backends
	db       *pgxpool.Pool
	redis    redis.UniversalClient
	cache    *cache.Cache
	breakers *breaker.Registry
	health   *health.Checker

	handler        http.Handler // the REST edge with its middleware
	metricsHandler http.Handler // /metrics
}

// build wires the gateway. Nothing connects yet: backends, Postgres and
// Redis are dialed lazily, so a dependency that is down shows up in
// /health/detailed and as 503s, never as a failed start.
func build(ctx context.Context, cfg gwconfig.Config, logger *slog.Logger) (_ *gateway, err error) {
	gw := &gateway{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			gw.close() // release whatever was built before the failure
		}
	}()

	// Identity: the gateway's certificate must say svc/gateway, or every
	// backend's allow-list refuses it.
	src, err := mtls.NewSource(mtls.Config{
		CACertPath:        cfg.MTLS.CACertPath,
		CertPath:          cfg.MTLS.ServerCertPath,
		KeyPath:           cfg.MTLS.ServerKeyPath,
		VerifyClient:      cfg.MTLS.VerifyClient,
		AllowedDNPatterns: cfg.MTLS.AllowedDNPatterns,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	if want := mtls.Service(serviceName); src.Identity() != want {
		return nil, fmt.Errorf("mtls: certificate %s carries identity %q, want %q", cfg.MTLS.ServerCertPath, src.Identity(), want)
	}
	go src.Run(ctx)

	// Telemetry: a private registry with the Go and process collectors, the
	// request metrics feeding the SLO tracker, and the backend breakers.
	gw.registry = prometheus.NewRegistry()
	tracker := slo.New(slo.Options{Service: serviceName, Window: cfg.SLOWindow()})
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		tracker,
	} {
		if err := gw.registry.Register(c); err != nil {
			return nil, fmt.Errorf("register collector: %w", err)
		}
	}
	m, err := metrics.New(serviceName, gw.registry, metrics.WithSLO(tracker))
	if err != nil {
		return nil, err
	}
	gw.breakers, err = breaker.NewRegistry(serviceName, gw.registry, logger)
	if err != nil {
		return nil, err
	}

	// The gateway's own cache (API-key lookups come later): Redis L2 unless
	// REDIS_URL selects memory only.
	if !cfg.InMemoryCache() {
		gw.redis, err = cache.NewRedis(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
	}
	gw.cache = cache.New(cache.Options{Name: serviceName, Redis: gw.redis, Logger: logger})
	if err := gw.registry.Register(gw.cache.Collector(serviceName)); err != nil {
		return nil, fmt.Errorf("register cache collector: %w", err)
	}

	// Postgres is only pinged, for /health/detailed: one lazy connection.
	gw.db, err = newDBProbe(ctx, cfg.DatabaseURL, cfg.HealthCheckTimeout)
	if err != nil {
		return nil, err
	}

	// Backends over mTLS, each expecting svc/<name>, each behind a breaker.
	var targets []edge.BackendTarget
	addrs := cfg.BackendAddrs()
	for _, name := range gwconfig.BackendNames() {
		targets = append(targets, edge.BackendTarget{Name: name, Addr: addrs[name]})
	}
	gw.backends, err = edge.DialBackends(ctx, targets, src, gw.breakers, edge.BreakerSettings{
		FailureThreshold: breakerFailureThreshold,
		RecoveryTimeout:  breakerRecoveryTimeout,
	}, grpcclient.WithDialOptions(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseBytes))))
	if err != nil {
		return nil, err
	}

	// Health, ops and OpenAPI.
	hb := make([]health.Backend, 0, len(gw.backends))
	for _, b := range gw.backends {
		hb = append(hb, health.Backend{Name: b.Name, Client: b.Health()})
	}
	gw.health = health.New(health.Options{
		Version:         cfg.Version,
		Database:        gw.db,
		Cache:           gw.cache,
		RedisConfigured: gw.redis != nil,
		Backends:        hb,
		Timeout:         cfg.HealthCheckTimeout,
	})
	opsHandlers := ops.New(tracker, gw.breakers, gw.cache)
	public, err := publicOperations()
	if err != nil {
		return nil, err
	}
	spec, err := openapi.Merge(protoopenapi.Specs(), openapi.WithPublicOperations(public...))
	if err != nil {
		return nil, err
	}
	guard, err := gw.guardOptions()
	if err != nil {
		return nil, err
	}

	// Routes: every service's REST routes, the collector uploads, the
	// gateway's own endpoints, all on one grpc-gateway mux.
	mux := edge.NewMux(runtime.WithMiddlewares(edge.RouteMiddleware))
	if err := edge.RegisterServices(ctx, mux, gw.backends); err != nil {
		return nil, err
	}
	for _, r := range []struct {
		method, path string
		h            http.Handler
	}{
		{http.MethodGet, pathHealth, gw.health.LiveHandler()},
		{http.MethodGet, pathHealthDetailed, gw.health.DetailedHandler()},
		{http.MethodGet, "/api/slo/status", opsHandlers.SLOStatus()},
		{http.MethodGet, "/api/circuit-breakers", opsHandlers.CircuitBreakers()},
		{http.MethodGet, "/api/cache/stats", opsHandlers.CacheStats()},
		{http.MethodGet, "/api/cache/memory-stats", opsHandlers.MemoryStats()},
		{http.MethodGet, "/api/performance/coalescing-stats", opsHandlers.CoalescingStats()},
		{http.MethodPost, "/api/performance/clear-coalescing-cache", opsHandlers.ClearCoalescing()},
		{http.MethodGet, "/openapi.json", openapi.Handler(spec)},
	} {
		if err := edge.Handle(mux, r.method, r.path, r.h); err != nil {
			return nil, fmt.Errorf("route %s %s: %w", r.method, r.path, err)
		}
	}
	trusted, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		return nil, err
	}
	gw.handler = edge.Handler(mux, edge.HandlerOptions{
		Logger:         logger,
		Metrics:        m,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		TrustedProxies: trusted,
		Propagator:     hiotel.Propagator(),
		Unmetered:      []string{pathHealth, pathHealthDetailed},
		Guard:          guard,
		LoginCap:       edge.LoginCap{MaxInFlight: cfg.LoginConcurrency, PerSecond: cfg.LoginsPerSecond, Burst: cfg.LoginBurst},
	})

	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET "+pathMetrics, promhttp.HandlerFor(gw.registry, promhttp.HandlerOpts{
		Registry:          gw.registry,
		EnableOpenMetrics: true,
	}))
	if cfg.PprofEnabled {
		debugpprof.Register(metricsMux)
	}
	gw.metricsHandler = metricsMux
	return gw, nil
}

// guardOptions builds the admission check: malformed credentials are always
// refused; rate limits apply when RATE_LIMIT_ENABLED, in Redis (shared by
// every replica) unless REDIS_URL selects memory, with an in-memory fallback
// while Redis fails.
func (gw *gateway) guardOptions() (edge.GuardOptions, error) {
	o := edge.GuardOptions{
		Exempt: []string{pathHealth, pathHealthDetailed, pathMetrics},
		Logger: gw.logger,
	}
	rl := gw.cfg.RateLimit
	if !rl.Enabled {
		gw.logger.Warn("rate limiting disabled (RATE_LIMIT_ENABLED=false)")
		return o, nil
	}
	m, err := ratelimit.NewMetrics(serviceName, gw.registry, edge.ScopeAPIKey, edge.ScopeUser, edge.ScopeIP)
	if err != nil {
		return o, err
	}
	o.OnReject = m.Rejected
	mem, err := ratelimit.NewMemory(ratelimit.MemoryOptions{PerMinute: rl.RequestsPerMinute})
	if err != nil {
		return o, fmt.Errorf("RATE_LIMIT_REQUESTS_PER_MINUTE: %w", err)
	}
	// Refused credentials per client IP: in memory on purpose (see GuardOptions.Failures).
	if o.Failures, err = ratelimit.NewMemory(ratelimit.MemoryOptions{PerMinute: rl.RequestsPerMinute}); err != nil {
		return o, fmt.Errorf("RATE_LIMIT_REQUESTS_PER_MINUTE: %w", err)
	}
	if gw.redis == nil {
		o.Limiter = mem
		return o, nil
	}
	shared, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: gw.redis, PerMinute: rl.RequestsPerMinute})
	if err != nil {
		return o, err
	}
	o.Limiter = ratelimit.NewFailover(ratelimit.FailoverOptions{
		Primary:  shared,
		Fallback: mem,
		Logger:   gw.logger,
		OnChange: m.SetDegraded,
	})
	return o, nil
}

// publicOperations lists the OpenAPI operation ids ("AuthService_Login") of
// the methods whose access declaration says public: they need no credential.
func publicOperations() ([]string, error) {
	policy, err := access.Load()
	if err != nil {
		return nil, fmt.Errorf("access policy: %w", err)
	}
	var ids []string
	for _, full := range policy.Methods() {
		if rule, _ := policy.Rule(full); rule.Public {
			// "/hashinsight.auth.v1.AuthService/Login" → "AuthService_Login"
			svc, method, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
			ids = append(ids, svc[strings.LastIndex(svc, ".")+1:]+"_"+method)
		}
	}
	return ids, nil
}

// newDBProbe returns a pool of at most one connection used only to ping
// DATABASE_URL. It connects on first use.
func newDBProbe(ctx context.Context, dsn string, timeout time.Duration) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx errors can echo the DSN; name the variable only.
		return nil, errors.New("DATABASE_URL: not a valid Postgres connection string")
	}
	pc.MaxConns = 1
	pc.MinConns = 0
	pc.ConnConfig.ConnectTimeout = timeout
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = serviceName + "-health"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("database probe: %w", err)
	}
	return pool, nil
}

// listeners are the bound REST and metrics sockets.
type listeners struct {
	http, metrics net.Listener
}

// listen binds GATEWAY_ADDR and the PROMETHEUS_PORT listener.
func (gw *gateway) listen() (listeners, error) {
	var lc net.ListenConfig
	h, err := lc.Listen(context.Background(), "tcp", gw.cfg.Addr)
	if err != nil {
		return listeners{}, fmt.Errorf("GATEWAY_ADDR %s: %w", gw.cfg.Addr, err)
	}
	m, err := lc.Listen(context.Background(), "tcp", gw.cfg.MetricsAddr())
	if err != nil {
		_ = h.Close()
		return listeners{}, fmt.Errorf("PROMETHEUS_PORT %d: %w", gw.cfg.PrometheusPort, err)
	}
	return listeners{http: h, metrics: m}, nil
}

// serve serves on lns until ctx ends (SIGTERM), then stops accepting and
// drains in-flight requests for at most GATEWAY_SHUTDOWN_TIMEOUT. A request
// that was accepted completes unless the drain times out.
func (gw *gateway) serve(ctx context.Context, lns listeners) error {
	errLog := slog.NewLogLogger(gw.logger.Handler(), slog.LevelWarn)
	srv := &http.Server{
		Handler:           gw.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
	}
	msrv := &http.Server{
		Handler:           gw.metricsHandler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(lns.http) }()
	go func() { errc <- msrv.Serve(lns.metrics) }()
	gw.logger.Info("serving",
		slog.String("addr", lns.http.Addr().String()),
		slog.String("metrics_addr", lns.metrics.Addr().String()),
		slog.String("version", gw.cfg.Version))

	var serveErr error
	select {
	case <-ctx.Done():
		gw.logger.Info("shutting down: draining in-flight requests", slog.Duration("timeout", gw.cfg.ShutdownTimeout))
	case serveErr = <-errc:
		serveErr = fmt.Errorf("http server: %w", serveErr)
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gw.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if serveErr != nil {
		errs = append(errs, serveErr)
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("drain http server: %w", err))
		_ = srv.Close()
	}
	if err := msrv.Shutdown(sctx); err != nil {
		_ = msrv.Close()
	}
	return errors.Join(errs...)
}

// close releases the backend connections, the database probe and Redis.
// It is safe on a partly built gateway.
func (gw *gateway) close() {
	if err := gw.backends.Close(); err != nil {
		gw.logger.Warn("close backends", slog.Any("error", err))
	}
	if gw.db != nil {
		gw.db.Close()
	}
	if gw.redis != nil {
		if err := gw.redis.Close(); err != nil {
			gw.logger.Warn("close redis", slog.Any("error", err))
		}
	}
}
