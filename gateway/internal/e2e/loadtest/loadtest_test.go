package loadtest

import (
	"context"
	"io"
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

// TestRunOffersTheRate: a run sends exactly rate × duration requests, with their headers and
// bodies, and counts the answers by status.
func TestRunOffersTheRate(t *testing.T) {
	var hits, good atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.Header.Get("X-Test") == "yes" && string(body) == `{"n":1}` {
			good.Add(1)
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("a body the client discards"))
	}))
	defer srv.Close()
	client := NewFastClient(5 * time.Second)
	res := Run(context.Background(), Config{Rate: 500, Duration: 400 * time.Millisecond},
		client.Do(func(int) Request {
			return Request{Method: http.MethodPost, URL: srv.URL, Header: [][2]string{{"X-Test", "yes"}}, Body: []byte(`{"n":1}`)}
		}))
	if res.Sent != 200 || res.Completed != 200 || hits.Load() != 200 || good.Load() != 200 || res.Statuses[http.StatusTeapot] != 200 {
		t.Fatalf("result %s (%d of %d requests as sent), want exactly 200 requests (500/s for 400 ms)", res, good.Load(), hits.Load())
	}
	if res.P(0.99) <= 0 || res.P(0.5) > res.P(0.99) {
		t.Errorf("percentiles %s", res)
	}
}

// TestFastClientErrors: a request to a closed port is a transport error, not a status.
func TestFastClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	res := Run(context.Background(), Config{Rate: 100, Duration: 50 * time.Millisecond},
		NewFastClient(time.Second).Do(func(int) Request { return Request{Method: http.MethodGet, URL: url} }))
	if res.Errors != res.Sent || res.Completed != 0 {
		t.Fatalf("result %s, want every request a transport error", res)
	}
}

// TestResultMerge: pooling two runs adds their counts and latencies, so the pooled quantiles are
// those of all the observations together.
func TestResultMerge(t *testing.T) {
	run := func(from, to int, status int, elapsed time.Duration) Result {
		h := NewHistogram()
		for i := from; i <= to; i++ {
			h.Record(time.Duration(i) * time.Millisecond)
		}
		n := int64(to - from + 1)
		return Result{Offered: float64(n) / elapsed.Seconds(), Sent: n, Completed: n, Errors: 1, Dropped: 2,
			Statuses: map[int]int64{status: n}, Hist: h, Elapsed: elapsed}
	}
	a, b := run(1, 500, http.StatusOK, time.Second), run(501, 1000, http.StatusTooManyRequests, 3*time.Second)
	got := Result{}.Merge(a).Merge(b)
	if got.Sent != 1000 || got.Completed != 1000 || got.Errors != 2 || got.Dropped != 4 || got.Elapsed != 4*time.Second {
		t.Fatalf("pooled counts %s elapsed %s", got, got.Elapsed)
	}
	if got.Statuses[http.StatusOK] != 500 || got.Statuses[http.StatusTooManyRequests] != 500 {
		t.Errorf("statuses %v", got.Statuses)
	}
	if got.Achieved != 250 || got.Offered != 250 {
		t.Errorf("achieved %.1f offered %.1f, want 250 (1,000 in 4 s)", got.Achieved, got.Offered)
	}
	if p := got.P(0.5); p < 500*time.Millisecond || float64(p) > 500*1.0101*float64(time.Millisecond) {
		t.Errorf("pooled median %s, want 500ms", p)
	}
	if got.Hist.Max() != time.Second || got.Hist.Count() != 1000 {
		t.Errorf("pooled max %s count %d", got.Hist.Max(), got.Hist.Count())
	}
	if a.Hist.Count() != 500 {
		t.Errorf("merge changed its input: %d observations", a.Hist.Count())
	}
	a.MaxLag, b.MaxLag = time.Millisecond, 3*time.Millisecond
	if lag := a.Merge(b).MaxLag; lag != 3*time.Millisecond {
		t.Errorf("pooled lag %s, want the larger, 3ms", lag)
	}
	// The zero Result on either side: the other's figures, in a histogram of their own.
	for _, got := range []Result{a.Merge(Result{}), (Result{}).Merge(a)} {
		if got.Completed != 500 || got.Hist.Count() != 500 || got.Hist == a.Hist {
			t.Errorf("merge with the zero Result: %s, shares the histogram: %v", got, got.Hist == a.Hist)
		}
	}
}
