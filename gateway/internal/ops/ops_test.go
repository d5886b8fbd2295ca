package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/breaker"
	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/slo"
)

func TestHandlers(t *testing.T) {
	tracker := slo.New(slo.Options{Service: "gateway"})
	tracker.Observe(20*time.Millisecond, slo.Success)
	reg, err := breaker.NewRegistry("gateway", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := reg.Get("mining", breaker.Settings{})
	_ = b.Execute(context.Background(), func(context.Context) error { return nil })
	_ = b.Execute(context.Background(), func(context.Context) error { return errors.New("x") })
	c := cache.New(cache.Options{Name: "gateway"})
	for range 2 {
		if _, err := c.GetOrLoad(context.Background(), "k", func(context.Context) ([]byte, error) { return []byte("v"), nil }); err != nil {
			t.Fatal(err)
		}
	}
	h := New(tracker, reg, c)

	tests := []struct {
		name    string
		handler http.Handler
		method  string
		want    map[string]any // top-level fields that must have these values
	}{
		{"slo", h.SLOStatus(), http.MethodGet, map[string]any{"service": "gateway", "requests": 1.0}},
		{"breakers", h.CircuitBreakers(), http.MethodGet, map[string]any{"mining": map[string]any{
			"state": "closed", "failure_count": 1.0, "total_calls": 2.0, "success_rate": "50.0%", "rejected_calls": 0.0,
		}}},
		{"cache", h.CacheStats(), http.MethodGet, map[string]any{"cache_type": "memory", "hits": 1.0, "misses": 1.0, "total_requests": 2.0, "hit_rate": 50.0}},
		{"memory", h.MemoryStats(), http.MethodGet, map[string]any{"cache_type": "memory", "entries": 1.0, "evictions": 0.0}},
		{"coalescing", h.CoalescingStats(), http.MethodGet, map[string]any{"enabled": true, "total_requests": 1.0, "deduplicated_requests": 0.0, "performance_improvement": "1.0x"}},
		{"clear", h.ClearCoalescing(), http.MethodPost, map[string]any{"success": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.handler.ServeHTTP(w, httptest.NewRequest(tt.method, "/", nil))
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				wb, _ := json.Marshal(want)
				gb, _ := json.Marshal(got[k])
				if string(wb) != string(gb) {
					t.Errorf("%s = %s, want %s", k, gb, wb)
				}
			}
		})
	}
	if s := c.CoalescingStats(); s.TotalRequests != 0 {
		t.Errorf("coalescing stats after clear = %+v", s)
	}
}
