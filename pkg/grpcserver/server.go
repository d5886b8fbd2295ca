// Package grpcserver is the gRPC server every HashInsight service runs: mutual
// TLS only, the standard interceptor chain, grpc.health.v1 and reflection,
// Prometheus metrics and SLOs, an ops HTTP listener, and a drain on shutdown
// that loses no accepted call.
//
// The chain, outermost first (go-grpc-middleware v2's reference order):
//
//  1. otelgrpc stats handler: a server span per call, W3C context extracted;
//  2. metrics: hashinsight_requests_total / _request_latency_seconds, fed to
//     the SLO tracker;
//  3. logging: one line per finished call with trace id, span id and the
//     caller's mTLS identity; payloads are never logged;
//  4. access: deny by default. The method's access.Rule must exist and the
//     mTLS caller must match its allow-list (PermissionDenied with
//     ErrorInfo AUTH_002 otherwise); then the optional PrincipalAuthenticator
//     checks the user or API key. grpc.health.v1 and server reflection are
//     open to every verified mTLS peer;
//  5. protovalidate: request messages are validated; violations become
//     InvalidArgument with ErrorInfo VALIDATION_001 and BadRequest field
//     violations;
//  6. internal-error hider: an Internal, Unknown or DataLoss status reaches
//     the client as "internal error" (its ErrorInfo reason kept); the
//     original is logged with the trace id;
//  7. recovery: a panic becomes Internal "internal error" and is logged
//     with its stack.
//
// Serve blocks until its context ends, then sets every health status to
// NOT_SERVING, waits PropagationDelay, stops accepting calls and lets the
// in-flight ones finish (GracefulStop) for up to DrainTimeout before cutting
// them off (Stop).
package grpcserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/breaker"
	"github.com/hashinsight/platform/pkg/debugpprof"
	"github.com/hashinsight/platform/pkg/metrics"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/slo"
)

// Defaults.
const (
	DefaultDrainTimeout = 20 * time.Second
	// httpShutdownTimeout bounds the ops HTTP listener's shutdown after the drain.
	httpShutdownTimeout = 5 * time.Second
)

// ErrDrainTimeout is returned by Serve when in-flight calls did not finish
// within DrainTimeout and were cut off.
var ErrDrainTimeout = errors.New("grpcserver: drain timeout: in-flight calls were cut off")

// PrincipalAuthenticator authenticates the user, API key or collector token
// behind a call after the mTLS caller passed the method's allow-list. It
// returns the context the handler will see (carrying the principal) or a
// gRPC status error (Unauthenticated AUTH_001/AUTH_003, PermissionDenied
// AUTH_002). rule.Public methods are passed too, so an implementation may
// attach an optional principal; it must not require one for them.
type PrincipalAuthenticator interface {
	Authenticate(ctx context.Context, rule access.Rule, caller mtls.Identity) (context.Context, error)
}

// Config configures a Server.
type Config struct {
	// Service is the service name ("mining"): the service label and the log attribute.
	Service string
	// Addr is the gRPC listen address (":7002"); used by Serve.
	Addr string
	// HTTPAddr is the ops HTTP listen address (":9102") serving /metrics,
	// /healthz, /readyz, /api/slo/status and /api/circuit-breakers; empty
	// disables it.
	HTTPAddr string
	// TLS is the server's mutual-TLS configuration (mtls.Source.ServerTLS()).
	// Required: there is no plaintext mode.
	TLS *tls.Config
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Policy holds every served method's access rule (access.Load). Methods
	// without a rule are denied. Required.
	Policy *access.Policy
	// Principal authenticates users/API keys; nil enforces only the mTLS allow-lists.
	Principal PrincipalAuthenticator
	// Registry receives every collector; when nil a new one with the Go and
	// process collectors is created (see Server.Registry).
	Registry *prometheus.Registry
	// DrainTimeout bounds the graceful drain; default 20 s.
	DrainTimeout time.Duration
	// PropagationDelay is how long Serve keeps accepting calls after health
	// turned NOT_SERVING, so load balancers notice first; default 0.
	PropagationDelay time.Duration
	// Pprof mounts Go's runtime profiles under /debug/pprof/ on the ops listener (PPROF_ENABLED).
	Pprof bool
	// MaxRecvMsgSize overrides gRPC's 4 MiB default when > 0.
	MaxRecvMsgSize int
	// Version is logged at start-up.
	Version string
	// SLOWindow is the SLO measurement window (SLO_MEASUREMENT_WINDOW); default 30 min.
	SLOWindow time.Duration
	// TracerProvider receives the server spans; default: the otel global.
	TracerProvider trace.TracerProvider
	// Propagators extract the caller's trace context; default: the otel global.
	Propagators propagation.TextMapPropagator
}

// Server is a HashInsight gRPC server.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	slo      *slo.Tracker
	breakers *breaker.Registry
	opsMux   *http.ServeMux

	started  atomic.Bool
	ready    atomic.Bool
	draining chan struct{} // closed when GracefulStop starts
}

// New builds a Server. Register services on GRPC() before calling Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Service == "" {
		return nil, errors.New("grpcserver: Service is required")
	}
	if cfg.TLS == nil {
		return nil, errors.New("grpcserver: TLS is required (mutual TLS only, no plaintext)")
	}
	if cfg.Policy == nil {
		return nil, errors.New("grpcserver: Policy is required (access.Load)")
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.PropagationDelay < 0 {
		cfg.PropagationDelay = 0
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	tracker := slo.New(slo.Options{Service: cfg.Service, Window: cfg.SLOWindow})
	if err := reg.Register(tracker); err != nil {
		return nil, fmt.Errorf("grpcserver: register SLO collector: %w", err)
	}
	m, err := metrics.New(cfg.Service, reg, metrics.WithSLO(tracker))
	if err != nil {
		return nil, fmt.Errorf("grpcserver: %w", err)
	}
	breakers, err := breaker.NewRegistry(cfg.Service, reg, logger)
	if err != nil {
		return nil, fmt.Errorf("grpcserver: %w", err)
	}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("grpcserver: protovalidate: %w", err)
	}

	s := &Server{
		cfg:      cfg,
		logger:   logger,
		health:   health.NewServer(),
		registry: reg,
		metrics:  m,
		slo:      tracker,
		breakers: breakers,
		draining: make(chan struct{}),
	}

	otelOpts := []otelgrpc.Option{otelgrpc.WithFilter(filters.Not(filters.HealthCheck()))}
	if cfg.TracerProvider != nil {
		otelOpts = append(otelOpts, otelgrpc.WithTracerProvider(cfg.TracerProvider))
	}
	if cfg.Propagators != nil {
		otelOpts = append(otelOpts, otelgrpc.WithPropagators(cfg.Propagators))
	}
	logUnary, logStream := s.loggingInterceptors()
	valUnary, valStream := validationInterceptors(validator)
	recUnary, recStream := s.recoveryInterceptors()
	opts := []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(cfg.TLS)),
		// Calls run on long-lived workers, one per CPU, whose stacks have already grown to what a
		// call through the interceptor chain and pgx needs; a fresh goroutine per call re-grows
		// (copies) its stack every time, ~6 % of a service's CPU. A call arriving while every
		// worker is busy still gets a goroutine of its own.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelOpts...)),
		grpc.ChainUnaryInterceptor(
			m.UnaryServerInterceptor(),
			logUnary,
			s.accessUnary,
			valUnary,
			s.hideUnary,
			recUnary,
		),
		grpc.ChainStreamInterceptor(
			m.StreamServerInterceptor(),
			logStream,
			s.accessStream,
			s.endWatchOnDrain,
			valStream,
			s.hideStream,
			recStream,
		),
	}
	if cfg.MaxRecvMsgSize > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize))
	}
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.opsMux = s.newOpsMux()
	return s, nil
}

// GRPC is the underlying server; register services on it before Serve.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health is the grpc.health.v1 server; services may flip their own status
// (Serve sets SERVING for "" and every registered service at start).
func (s *Server) Health() *health.Server { return s.health }

// Registry is the Prometheus registry served at /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Metrics are the request collectors.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// SLO is the service's SLO tracker.
func (s *Server) SLO() *slo.Tracker { return s.slo }

// Breakers is the service's circuit-breaker registry.
func (s *Server) Breakers() *breaker.Registry { return s.breakers }

// OpsHandler is the ops HTTP handler (/metrics, /healthz, /readyz,
// /api/slo/status, /api/circuit-breakers).
func (s *Server) OpsHandler() http.Handler { return s.opsMux }

// Serve listens on Addr (and HTTPAddr when set) and serves until ctx ends;
// see ServeListener.
func (s *Server) Serve(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("grpcserver: listen %s: %w", s.cfg.Addr, err)
	}
	var httpLis net.Listener
	if s.cfg.HTTPAddr != "" {
		httpLis, err = net.Listen("tcp", s.cfg.HTTPAddr)
		if err != nil {
			_ = lis.Close()
			return fmt.Errorf("grpcserver: listen %s: %w", s.cfg.HTTPAddr, err)
		}
	}
	return s.ServeListener(ctx, lis, httpLis)
}

// ServeListener serves gRPC on lis and the ops HTTP endpoints on httpLis
// (nil: none) until ctx ends, then drains: health NOT_SERVING, wait
// PropagationDelay, GracefulStop bounded by DrainTimeout, then Stop. It
// returns nil after a clean drain, ErrDrainTimeout when calls had to be cut
// off, or the error that stopped a listener. A Server serves once.
func (s *Server) ServeListener(ctx context.Context, lis, httpLis net.Listener) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("grpcserver: Serve called twice")
	}
	s.metrics.InitializeMetrics(s.grpc)
	for name, info := range s.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + name + "/" + m.Name
			if _, ok := s.cfg.Policy.Rule(full); !ok && !openMethod(full) {
				s.logger.Warn("method has no access rule: every call will be denied", "grpc.method", full)
			}
		}
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.ready.Store(true)

	errc := make(chan error, 2)
	go func() {
		if err := s.grpc.Serve(lis); err != nil {
			errc <- fmt.Errorf("grpcserver: serve gRPC: %w", err)
		}
	}()
	var httpSrv *http.Server
	attrs := []any{"addr", lis.Addr().String(), "version", s.cfg.Version, "methods", s.cfg.Policy.Len()}
	if httpLis != nil {
		httpSrv = &http.Server{Handler: s.opsMux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := httpSrv.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("grpcserver: serve ops HTTP: %w", err)
			}
		}()
		attrs = append(attrs, "http_addr", httpLis.Addr().String())
	}
	s.logger.Info("gRPC server started", attrs...)

	select {
	case <-ctx.Done():
		return s.drain(httpSrv)
	case err := <-errc:
		s.ready.Store(false)
		s.health.Shutdown()
		close(s.draining)
		s.grpc.Stop()
		shutdownHTTP(httpSrv)
		return err
	}
}

// drain runs the shutdown sequence of ServeListener.
func (s *Server) drain(httpSrv *http.Server) error {
	s.ready.Store(false)
	s.health.Shutdown() // every status NOT_SERVING, watchers notified
	s.logger.Info("shutting down: health NOT_SERVING", "propagation_delay", s.cfg.PropagationDelay.String(), "drain_timeout", s.cfg.DrainTimeout.String())
	if d := s.cfg.PropagationDelay; d > 0 {
		t := time.NewTimer(d)
		<-t.C
	}

	close(s.draining) // ends health Watch streams, which would otherwise hold the drain
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	timer := time.NewTimer(s.cfg.DrainTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-done:
		s.logger.Info("drained: all in-flight calls completed")
	case <-timer.C:
		s.logger.Warn("drain timeout: stopping with calls in flight", "drain_timeout", s.cfg.DrainTimeout.String())
		s.grpc.Stop()
		<-done
		err = ErrDrainTimeout
	}
	shutdownHTTP(httpSrv)
	return err
}

func shutdownHTTP(srv *http.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}

func (s *Server) newOpsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		EnableOpenMetrics: true, // exemplars
		Registry:          s.registry,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if !s.ready.Load() || err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "NOT_SERVING"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "SERVING"})
	})
	mux.HandleFunc("GET /api/slo/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.slo.Status())
	})
	mux.HandleFunc("GET /api/circuit-breakers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.breakers.Stats())
	})
	if s.cfg.Pprof {
		debugpprof.Register(mux)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// openMethod reports whether fullMethod belongs to grpc.health.v1 or server
// reflection, which every verified mTLS peer may call.
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1alpha.ServerReflection/")
}
