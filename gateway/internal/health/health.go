// Package health serves the gateway's liveness (/health) and readiness
// (/health/detailed) endpoints. /health/detailed answers from real checks:
// a ping of the database, the gateway cache's Redis, and a grpc.health.v1
// Check of every backend, run concurrently with a short timeout each.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Overall statuses.
const (
	StatusHealthy   = "healthy"
	StatusDegraded  = "degraded"
	StatusUnhealthy = "unhealthy"
)

// Database states.
const (
	DatabaseConnected    = "connected"
	DatabaseDisconnected = "disconnected"
)

// Cache states, as in the manual: "available" when Redis answers, "memory"
// when the gateway runs with its in-process cache only (no Redis
// configured), "unavailable" when Redis is configured but does not answer
// (reads still work from memory and the source).
const (
	CacheAvailable   = "available"
	CacheMemory      = "memory"
	CacheUnavailable = "unavailable"
)

// StatusUnreachable is reported for a backend whose health Check call
// failed (connection refused, timeout, TLS failure).
const StatusUnreachable = "UNREACHABLE"

// DefaultTimeout bounds each individual check.
const DefaultTimeout = time.Second

// Pinger is anything that can be pinged: a pgx pool, a Redis client.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Backend is one gRPC service whose grpc.health.v1 status is reported.
type Backend struct {
	// Name is the key in the "services" object ("auth", "mining", ...).
	Name string
	// Client is the health client on the backend's connection.
	Client healthpb.HealthClient
	// Service is the health service name to check; "" is the server as a
	// whole, which a service sets NOT_SERVING while it drains.
	Service string
}

// Options configure a Checker.
type Options struct {
	// Version is reported by both endpoints.
	Version string
	// Database is pinged for the "database" field; nil reports "disconnected".
	Database Pinger
	// Cache is pinged for the "cache" field when RedisConfigured is true;
	// otherwise the cache is reported as "memory".
	Cache           Pinger
	RedisConfigured bool
	// Backends are checked for the "services" object.
	Backends []Backend
	// Timeout bounds each check; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Checker runs the checks and serves the endpoints.
type Checker struct {
	opts Options
}

// New returns a Checker.
func New(opts Options) *Checker {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Checker{opts: opts}
}

// Live is the liveness body of GET /health.
type Live struct {
	Status    string `json:"status"`
	Timestamp string `json:"timestamp"`
	Version   string `json:"version"`
}

// ServiceStatus is one backend's entry in Report.Services.
type ServiceStatus struct {
	// Status is the grpc.health.v1 serving status name (SERVING,
	// NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN) or UNREACHABLE.
	Status string `json:"status"`
	// LatencyMS is the duration of the Check call in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	// Error is the gRPC code name of a failed Check call (never its text).
	Error string `json:"error,omitempty"`
}

// Report is the body of GET /health/detailed: the manual's fields plus
// "services".
type Report struct {
	Status    string                   `json:"status"`
	Timestamp string                   `json:"timestamp"`
	Database  string                   `json:"database"`
	Cache     string                   `json:"cache"`
	Version   string                   `json:"version"`
	Services  map[string]ServiceStatus `json:"services"`
}

// Healthy reports whether the report's HTTP status is 200 (healthy or
// degraded).
func (r Report) Healthy() bool { return r.Status != StatusUnhealthy }

func (c *Checker) timestamp() string {
	return c.opts.Now().UTC().Format(time.RFC3339)
}

// Check runs every check concurrently and assembles the report.
//   - unhealthy: the database is disconnected or a backend is not SERVING;
//   - degraded: Redis is configured but unreachable (the in-memory cache
//     still serves);
//   - healthy otherwise.
func (c *Checker) Check(ctx context.Context) Report {
	rep := Report{
		Timestamp: c.timestamp(),
		Version:   c.opts.Version,
		Services:  make(map[string]ServiceStatus, len(c.opts.Backends)),
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	wg.Go(func() { rep.Database = c.database(ctx) })
	wg.Go(func() { rep.Cache = c.cache(ctx) })
	for _, b := range c.opts.Backends {
		wg.Go(func() {
			s := c.backend(ctx, b)
			mu.Lock()
			rep.Services[b.Name] = s
			mu.Unlock()
		})
	}
	wg.Wait()

	rep.Status = StatusHealthy
	if rep.Cache == CacheUnavailable {
		rep.Status = StatusDegraded
	}
	if rep.Database != DatabaseConnected {
		rep.Status = StatusUnhealthy
	}
	for _, s := range rep.Services {
		if s.Status != healthpb.HealthCheckResponse_SERVING.String() {
			rep.Status = StatusUnhealthy
		}
	}
	return rep
}

func (c *Checker) database(ctx context.Context) string {
	if c.opts.Database == nil {
		return DatabaseDisconnected
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	if err := c.opts.Database.Ping(ctx); err != nil {
		return DatabaseDisconnected
	}
	return DatabaseConnected
}

func (c *Checker) cache(ctx context.Context) string {
	if !c.opts.RedisConfigured || c.opts.Cache == nil {
		return CacheMemory
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	if err := c.opts.Cache.Ping(ctx); err != nil {
		return CacheUnavailable
	}
	return CacheAvailable
}

func (c *Checker) backend(ctx context.Context, b Backend) ServiceStatus {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	start := time.Now()
	resp, err := b.Client.Check(ctx, &healthpb.HealthCheckRequest{Service: b.Service})
	latency := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		code := status.Code(err)
		if code == codes.NotFound {
			// The server runs but does not know the service name.
			return ServiceStatus{Status: healthpb.HealthCheckResponse_SERVICE_UNKNOWN.String(), LatencyMS: latency}
		}
		return ServiceStatus{Status: StatusUnreachable, LatencyMS: latency, Error: code.String()}
	}
	return ServiceStatus{Status: resp.GetStatus().String(), LatencyMS: latency}
}

// LiveHandler serves GET /health: 200 whenever the process can answer. It
// checks nothing else on purpose, so an orchestrator never restarts the
// gateway because a dependency is down.
func (c *Checker) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, Live{Status: StatusHealthy, Timestamp: c.timestamp(), Version: c.opts.Version})
	})
}

// DetailedHandler serves GET /health/detailed: 200 when healthy or
// degraded, 503 when unhealthy.
func (c *Checker) DetailedHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := c.Check(r.Context())
		code := http.StatusOK
		if !rep.Healthy() {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rep)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
