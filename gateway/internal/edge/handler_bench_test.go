package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashinsight/platform/gateway/internal/ratelimit"
	"github.com/hashinsight/platform/pkg/log"
	"github.com/hashinsight/platform/pkg/metrics"
	hiotel "github.com/hashinsight/platform/pkg/otel"
)

// BenchmarkHandlerAPIKey is the gateway's own cost per API-key request: the whole middleware chain
// (tracing, request id, access log as JSON, metrics, admission with an in-memory limiter) around a
// router that answers at once. Profile it with
//
//	go test ./gateway/internal/edge -run '^$' -bench HandlerAPIKey -cpuprofile /tmp/edge.cpu
func BenchmarkHandlerAPIKey(b *testing.B) {
	if _, err := hiotel.Setup(b.Context(), "gateway", "bench", ""); err != nil {
		b.Fatal(err)
	}
	logger, err := log.New(io.Discard, "json", "info")
	if err != nil {
		b.Fatal(err)
	}
	m, err := metrics.New("gateway", prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	limiter, err := ratelimit.NewMemory(ratelimit.MemoryOptions{PerMinute: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	failures, err := ratelimit.NewMemory(ratelimit.MemoryOptions{PerMinute: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"principal":{"kind":"PRINCIPAL_KIND_API_KEY"}}`)
	router := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	h := Handler(router, HandlerOptions{
		Logger: logger, Metrics: m, MaxBodyBytes: 1 << 20, Propagator: hiotel.Propagator(),
		Guard: GuardOptions{Limiter: limiter, Failures: failures, Logger: logger},
	})
	plain, _ := newKey(&testing.T{}, "key")
	req := httptest.NewRequest(http.MethodGet, "/api/v1/auth/me", nil)
	req.Header.Set("Authorization", "Bearer "+plain)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkHandlerLoginShed is the gateway's cost of a login shed by the login cap (the flood
// path of BenchmarkMeUnderLoginFlood): the whole chain, answering 429 without a backend call.
func BenchmarkHandlerLoginShed(b *testing.B) {
	logger, err := log.New(io.Discard, "json", "info")
	if err != nil {
		b.Fatal(err)
	}
	m, err := metrics.New("gateway", prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	router := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := Handler(router, HandlerOptions{
		Logger: logger, Metrics: m, MaxBodyBytes: 1 << 20, Propagator: hiotel.Propagator(),
		LoginCap: LoginCap{MaxInFlight: 1, PerSecond: 1},
	})
	// (One login per second passes; the rest are shed.)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, LoginPath, strings.NewReader(`{"email":"a@b.c","password":"x"}`)))
		if w.Code != http.StatusTooManyRequests && w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
