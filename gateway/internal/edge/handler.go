package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/hashinsight/platform/pkg/metrics"
	analyticsv1 "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	billingv1 "github.com/hashinsight/platform/proto/hashinsight/billing/v1"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	slav1 "github.com/hashinsight/platform/proto/hashinsight/sla/v1"
)

// registrars are the generated grpc-gateway registrations by backend name.
func registrars() map[string]func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error {
	return map[string]func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		"auth":      authv1.RegisterAuthServiceHandler,
		"mining":    miningv1.RegisterMiningServiceHandler,
		"billing":   billingv1.RegisterBillingServiceHandler,
		"sla":       slav1.RegisterSLAServiceHandler,
		"analytics": analyticsv1.RegisterAnalyticsServiceHandler,
	}
}

// RegisterServices registers every backend's REST routes on mux, then the
// raw-body collector upload routes on the mining backend. Every backend
// name must be known and mining must be present.
func RegisterServices(ctx context.Context, mux *runtime.ServeMux, backends Backends) error {
	regs := registrars()
	for _, b := range backends {
		reg, ok := regs[b.Name]
		if !ok {
			return fmt.Errorf("register routes: unknown backend %q", b.Name)
		}
		if err := reg(ctx, mux, b.Conn); err != nil {
			return fmt.Errorf("register %s routes: %w", b.Name, err)
		}
	}
	mining := backends.ByName("mining")
	if mining == nil {
		return fmt.Errorf("register routes: no mining backend for the collector upload routes")
	}
	if err := RegisterCollectorRoutes(mux, miningv1.NewMiningServiceClient(mining.Conn)); err != nil {
		return fmt.Errorf("register collector routes: %w", err)
	}
	if err := RegisterImportRoute(mux, miningv1.NewMiningServiceClient(mining.Conn)); err != nil {
		return fmt.Errorf("register import route: %w", err)
	}
	return nil
}

// RouteMiddleware is the grpc-gateway middleware that names the matched
// route pattern (e.g. /api/v1/miners/{id}) for the metrics middleware and
// the server span, so neither carries raw ids.
func RouteMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route := routeName(p)
			metrics.SetRoute(r.Context(), route)
			trace.SpanFromContext(r.Context()).SetName(r.Method + " " + route)
		}
		next(w, r, params)
	}
}

// routeName renders a pattern as written in the proto's google.api.http
// template: Pattern.String gives "/api/v1/users/{id=*}", which becomes
// "/api/v1/users/{id}". Multi-segment variables keep their template.
func routeName(p runtime.Pattern) string {
	return strings.ReplaceAll(p.String(), "=*}", "}")
}

// HandlerOptions configure Handler.
type HandlerOptions struct {
	Logger *slog.Logger
	// Metrics records hashinsight_requests_total and the latency histogram
	// (service="gateway") and feeds the SLO tracker.
	Metrics *metrics.Metrics
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// Propagator extracts W3C trace context from requests; the otelgrpc
	// client handler of every backend connection injects it into the
	// outgoing metadata.
	Propagator propagation.TextMapPropagator
	// Unmetered paths are served without request metrics (health probes, so
	// that they neither dominate nor distort the SLOs).
	Unmetered []string
	// Guard is the admission check: malformed credentials and rate limits
	// (see WithGuard).
	Guard GuardOptions
	// LoginCap bounds the logins passed to the auth service (WithLoginCap);
	// zero fields take the defaults.
	LoginCap LoginCap
}

// Handler wraps the router in the gateway's middleware, outermost first:
// tracing (otelhttp, W3C propagation) → security headers → request id and
// client IP → access log → metrics/SLO → panic recovery → Grpc-Timeout
// removal → login cap → admission (malformed credentials, rate limits) →
// body limit → router.
func Handler(router http.Handler, o HandlerOptions) http.Handler {
	metered := o.Metrics.HTTPMiddleware
	unmetered := make(map[string]bool, len(o.Unmetered))
	for _, p := range o.Unmetered {
		unmetered[p] = true
	}
	withMetrics := func(next http.Handler) http.Handler {
		m := metered(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if unmetered[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			m.ServeHTTP(w, r)
		})
	}
	h := Chain(router,
		withSecurityHeaders,
		WithRequestContext(o.TrustedProxies),
		WithAccessLog(o.Logger),
		withMetrics,
		WithRecovery(o.Logger),
		withoutClientTimeouts,
		WithLoginCap(o.LoginCap, o.Guard.OnReject),
		WithGuard(o.Guard),
		WithBodyLimit(o.MaxBodyBytes),
	)
	opts := []otelhttp.Option{
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method }),
	}
	if o.Propagator != nil {
		opts = append(opts, otelhttp.WithPropagators(o.Propagator))
	}
	return otelhttp.NewHandler(h, "gateway", opts...)
}

// withSecurityHeaders sets defaults every response should carry; handlers
// may override Cache-Control (the OpenAPI document is cacheable).
func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// withoutClientTimeouts drops the Grpc-Timeout request header, which
// grpc-gateway would otherwise turn into the backend call's deadline: a
// client could set tiny deadlines to make calls fail with DeadlineExceeded
// and open a backend's circuit breaker for everyone.
func withoutClientTimeouts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Grpc-Timeout")
		next.ServeHTTP(w, r)
	})
}
