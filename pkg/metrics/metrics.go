// Package metrics records HashInsight's request metrics under the names the
// operations manual defines (chapter 4.2, Appendix C), for gRPC servers and
// for the REST gateway alike:
//
//	hashinsight_requests_total{service, method, endpoint, status}            counter
//	hashinsight_request_latency_seconds{service, method, endpoint}           histogram (with trace-id exemplars)
//
// For gRPC, method is the call type ("unary", "client_stream",
// "server_stream", "bidi_stream"), endpoint the full method
// ("/hashinsight.mining.v1.MiningService/GetMiner") and status the gRPC code
// name ("OK", "NotFound"). For HTTP, method is the verb, endpoint the route
// pattern and status the HTTP status code.
//
// go-grpc-middleware's Prometheus provider is not used because its metric
// names (grpc_server_handled_total, …) are fixed; this package is the same
// interceptor pair, InitializeMetrics included, with the manual's names.
// Every finished request is also fed to an optional slo.Tracker. Nothing is
// registered globally: the caller passes the Registerer.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/slo"
)

// LatencyBuckets are the manual's latency histogram buckets, in seconds.
var LatencyBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// gRPC call types, the "method" label of gRPC requests.
const (
	Unary        = "unary"
	ClientStream = "client_stream"
	ServerStream = "server_stream"
	BidiStream   = "bidi_stream"
)

// Unmatched is the endpoint label of HTTP requests that matched no route,
// so unknown paths cannot blow up the label cardinality.
const Unmatched = "unmatched"

// Metrics holds the request collectors of one service.
type Metrics struct {
	service  string
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	tracker  *slo.Tracker
}

// Option configures Metrics.
type Option func(*Metrics)

// WithSLO feeds every observed request to t.
func WithSLO(t *slo.Tracker) Option {
	return func(m *Metrics) { m.tracker = t }
}

// New creates the collectors for service and registers them with reg.
func New(service string, reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if service == "" {
		return nil, errors.New("metrics: service name is required")
	}
	if reg == nil {
		return nil, errors.New("metrics: a prometheus.Registerer is required")
	}
	labels := prometheus.Labels{"service": service}
	m := &Metrics{
		service: service,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "hashinsight_requests_total",
			Help:        "Total request count.",
			ConstLabels: labels,
		}, []string{"method", "endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "hashinsight_request_latency_seconds",
			Help:        "Request latency.",
			ConstLabels: labels,
			Buckets:     LatencyBuckets,
		}, []string{"method", "endpoint"}),
	}
	for _, o := range opts {
		o(m)
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Service is the service label value.
func (m *Metrics) Service() string { return m.service }

// Observe records one finished request. It is what the interceptors and the
// HTTP middleware call; other transports may call it directly.
func (m *Metrics) Observe(ctx context.Context, method, endpoint, status string, d time.Duration, class slo.Class) {
	m.requests.WithLabelValues(method, endpoint, status).Inc()
	obs := m.latency.WithLabelValues(method, endpoint)
	secs := d.Seconds()
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsSampled() {
		if eo, ok := obs.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(secs, prometheus.Labels{"trace_id": sc.TraceID().String()})
		} else {
			obs.Observe(secs)
		}
	} else {
		obs.Observe(secs)
	}
	if m.tracker != nil {
		m.tracker.Observe(d, class)
	}
}

func (m *Metrics) observeGRPC(ctx context.Context, typ, fullMethod string, start time.Time, err error) {
	code := status.Code(err)
	if errors.Is(err, context.Canceled) && code == codes.Unknown {
		code = codes.Canceled
	}
	m.Observe(ctx, typ, fullMethod, code.String(), time.Since(start), slo.ClassifyGRPC(code))
}

// UnaryServerInterceptor records unary calls.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observeGRPC(ctx, Unary, info.FullMethod, start, err)
		return resp, err
	}
}

// StreamServerInterceptor records streaming calls (latency is the stream's lifetime).
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observeGRPC(ss.Context(), streamType(info.IsClientStream, info.IsServerStream), info.FullMethod, start, err)
		return err
	}
}

func streamType(client, server bool) string {
	switch {
	case client && server:
		return BidiStream
	case client:
		return ClientStream
	case server:
		return ServerStream
	default:
		return Unary
	}
}

// ServiceInfoProvider is implemented by *grpc.Server.
type ServiceInfoProvider interface {
	GetServiceInfo() map[string]grpc.ServiceInfo
}

// InitializeMetrics creates the series of every method registered on s,
// with status OK and an empty histogram, so dashboards and rate() queries
// see every method from the start. Call it after registering all services.
func (m *Metrics) InitializeMetrics(s ServiceInfoProvider) {
	for svc, info := range s.GetServiceInfo() {
		for _, mi := range info.Methods {
			full := "/" + svc + "/" + mi.Name
			typ := streamType(mi.IsClientStream, mi.IsServerStream)
			m.requests.WithLabelValues(typ, full, codes.OK.String())
			m.latency.WithLabelValues(typ, full)
		}
	}
}

// InitializeRoute creates the series of one HTTP route (status 200).
func (m *Metrics) InitializeRoute(method, route string) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(http.StatusOK))
	m.latency.WithLabelValues(method, route)
}

type routeKey struct{}

type routeHolder struct{ route string }

// SetRoute records the matched route pattern of the current HTTP request
// for the metrics middleware; call it from inside the handler chain (for
// grpc-gateway, from a runtime middleware with runtime.HTTPPathPattern).
// Without it the middleware uses http.Request.Pattern set by net/http's
// ServeMux, else Unmatched.
func SetRoute(ctx context.Context, route string) {
	if h, ok := ctx.Value(routeKey{}).(*routeHolder); ok {
		h.route = route
	}
}

// HTTPMiddleware records HTTP requests served by next with the same collectors.
func (m *Metrics) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		holder := &routeHolder{}
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, holder))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := holder.route
		if route == "" {
			route = r.Pattern
			// "GET /api/v1/miners/{id}": the verb is already the method label.
			if _, path, ok := strings.Cut(route, " "); ok {
				route = strings.TrimSpace(path)
			}
		}
		if route == "" {
			route = Unmatched
		}
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		m.Observe(r.Context(), r.Method, route, strconv.Itoa(code), time.Since(start), slo.ClassifyHTTP(code))
	})
}

// statusWriter captures the response status.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush supports streaming responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}
