package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/metrics"
	"github.com/hashinsight/platform/pkg/slo"
)

func newMetrics(t *testing.T, opts ...metrics.Option) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New("mining", reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestNewValidates(t *testing.T) {
	if _, err := metrics.New("", prometheus.NewRegistry()); err == nil {
		t.Error("empty service accepted")
	}
	if _, err := metrics.New("x", nil); err == nil {
		t.Error("nil registerer accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.New("x", reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New("x", reg); err == nil {
		t.Error("double registration accepted")
	}
}

func TestInitializeMetrics(t *testing.T) {
	m, reg := newMetrics(t)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	m.InitializeMetrics(s)

	want := `
# HELP hashinsight_requests_total Total request count.
# TYPE hashinsight_requests_total counter
hashinsight_requests_total{endpoint="/grpc.health.v1.Health/Check",method="unary",service="mining",status="OK"} 0
hashinsight_requests_total{endpoint="/grpc.health.v1.Health/List",method="unary",service="mining",status="OK"} 0
hashinsight_requests_total{endpoint="/grpc.health.v1.Health/Watch",method="server_stream",service="mining",status="OK"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hashinsight_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "hashinsight_request_latency_seconds"); err != nil || n != 3 {
		t.Fatalf("latency series = %d, %v", n, err)
	}
}

func TestUnaryInterceptor(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	tracker := slo.New(slo.Options{Service: "mining", Now: func() time.Time { return clock }})
	m, reg := newMetrics(t, metrics.WithSLO(tracker))
	ic := m.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/hashinsight.mining.v1.MiningService/GetMiner"}

	tests := []struct {
		name string
		err  error
	}{
		{"ok", nil},
		{"not found", status.Error(codes.NotFound, "no")},
		{"internal", status.Error(codes.Internal, "boom")},
		{"plain error", errors.New("plain")},
		{"canceled", context.Canceled},
	}
	for _, tt := range tests {
		if _, err := ic(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, tt.err }); !errors.Is(err, tt.err) {
			t.Fatalf("%s: interceptor changed the error: %v", tt.name, err)
		}
	}
	for _, c := range []string{"OK", "NotFound", "Internal", "Unknown", "Canceled"} {
		if v := testutil.ToFloat64(mustCounter(t, reg, c)); v != 1 {
			t.Errorf("status %s = %v, want 1", c, v)
		}
	}
	st := tracker.Status()
	if st.Requests != 5 {
		t.Errorf("tracker requests = %d", st.Requests)
	}
	if got := st.SLOs[slo.TypeErrorRate].Actual; got != 40 { // Internal + Unknown of 5
		t.Errorf("error rate = %v%%, want 40", got)
	}
}

// mustCounter returns the hashinsight_requests_total series of GetMiner with the given status.
func mustCounter(t *testing.T, reg *prometheus.Registry, code string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "hashinsight_requests_total" {
				continue
			}
			for _, mm := range mf.GetMetric() {
				for _, l := range mm.GetLabel() {
					if l.GetName() == "status" && l.GetValue() == code {
						ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.CounterValue, mm.GetCounter().GetValue())
					}
				}
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestStreamInterceptorAndExemplar(t *testing.T) {
	m, reg := newMetrics(t)
	traceID := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled,
	}))
	ic := m.StreamServerInterceptor()
	info := &grpc.StreamServerInfo{FullMethod: "/hashinsight.mining.v1.MiningService/ImportMiners", IsClientStream: true}
	if err := ic(nil, fakeStream{ctx: ctx}, info, func(any, grpc.ServerStream) error { return nil }); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range mfs {
		if mf.GetName() != "hashinsight_request_latency_seconds" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mm.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] != "client_stream" || labels["endpoint"] != info.FullMethod {
				t.Errorf("labels = %v", labels)
			}
			for _, b := range mm.GetHistogram().GetBucket() {
				if ex := b.GetExemplar(); ex != nil {
					for _, l := range ex.GetLabel() {
						if l.GetName() == "trace_id" && l.GetValue() == traceID.String() {
							found = true
						}
					}
				}
			}
		}
	}
	if !found {
		t.Error("no exemplar with the trace id")
	}
}

func TestHTTPMiddleware(t *testing.T) {
	m, reg := newMetrics(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/miners/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "nope", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("POST /custom", func(w http.ResponseWriter, r *http.Request) {
		metrics.SetRoute(r.Context(), "/api/v1/custom-route")
		w.WriteHeader(http.StatusCreated)
	})
	h := m.HTTPMiddleware(mux)
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/api/v1/miners/1", nil),
		httptest.NewRequest(http.MethodGet, "/api/v1/miners/2", nil),
		httptest.NewRequest(http.MethodGet, "/api/v1/miners/missing", nil),
		httptest.NewRequest(http.MethodPost, "/custom", nil),
		httptest.NewRequest(http.MethodGet, "/random/path/123", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := `
# HELP hashinsight_requests_total Total request count.
# TYPE hashinsight_requests_total counter
hashinsight_requests_total{endpoint="/api/v1/custom-route",method="POST",service="mining",status="201"} 1
hashinsight_requests_total{endpoint="/api/v1/miners/{id}",method="GET",service="mining",status="200"} 2
hashinsight_requests_total{endpoint="/api/v1/miners/{id}",method="GET",service="mining",status="404"} 1
hashinsight_requests_total{endpoint="unmatched",method="GET",service="mining",status="404"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hashinsight_requests_total"); err != nil {
		t.Fatal(err)
	}
}
