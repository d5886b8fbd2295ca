package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, 1000 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*1.0101 {
			t.Errorf("q%.2f = %s, want within 1%% above %s", tc.q, got, tc.want)
		}
	}
	if h.Count() != 1000 || h.Max() != time.Second {
		t.Errorf("count %d max %s", h.Count(), h.Max())
	}
	if NewHistogram().Quantile(0.99) != 0 {
		t.Error("empty histogram quantile != 0")
	}
	h.Record(0)
	h.Record(time.Hour) // beyond the range: clamped to the last bucket, max exact
	if h.Max() != time.Hour {
		t.Errorf("max = %s", h.Max())
	}
}

func TestRunOffersTheRate(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	client := NewClient(5 * time.Second)
	res := Run(context.Background(), Config{Rate: 500, Duration: 400 * time.Millisecond},
		HTTPDo(client, func(ctx context.Context, _ int) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		}))
	if res.Sent != 200 || res.Completed != 200 || hits.Load() != 200 || res.Statuses[http.StatusTeapot] != 200 {
		t.Fatalf("result %s, want exactly 200 requests (500/s for 400 ms)", res)
	}
	if res.P(0.99) <= 0 || res.P(0.5) > res.P(0.99) {
		t.Errorf("percentiles %s", res)
	}
}
