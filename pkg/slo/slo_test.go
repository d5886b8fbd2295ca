package slo_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/slo"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTracker(clock *fakeClock) *slo.Tracker {
	return slo.New(slo.Options{Service: "mining", Window: 30 * time.Minute, Now: clock.Now})
}

type batch struct {
	n       int
	latency time.Duration
	class   slo.Class
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name          string
		batches       []batch
		wantStatus    slo.Level
		wantReason    string
		wantCompliant map[string]bool
		wantBudget    float64
	}{
		{
			name:       "no traffic is healthy",
			wantStatus: slo.Healthy,
			wantCompliant: map[string]bool{
				slo.TypeAvailability: true, slo.TypeLatencyP95: true, slo.TypeErrorRate: true,
			},
			wantBudget: 1,
		},
		{
			name:       "fast and clean",
			batches:    []batch{{10000, 20 * time.Millisecond, slo.Success}},
			wantStatus: slo.Healthy,
			wantCompliant: map[string]bool{
				slo.TypeAvailability: true, slo.TypeSuccessRate: true, slo.TypeLatencyP50: true,
				slo.TypeLatencyP95: true, slo.TypeLatencyP99: true, slo.TypeErrorRate: true,
			},
			wantBudget: 1,
		},
		{
			name: "half the budget spent",
			batches: []batch{
				{39990, 20 * time.Millisecond, slo.Success},
				{10, 20 * time.Millisecond, slo.ServerError}, // 0.025 % of 0.05 %
			},
			wantStatus:    slo.Healthy,
			wantCompliant: map[string]bool{slo.TypeAvailability: true, slo.TypeErrorRate: true},
			wantBudget:    0.5,
		},
		{
			name: "budget below 20 percent warns",
			batches: []batch{
				{39983, 20 * time.Millisecond, slo.Success},
				{17, 20 * time.Millisecond, slo.ServerError}, // 0.0425 %: 85 % of the budget spent
			},
			wantStatus:    slo.Warning,
			wantReason:    "error budget",
			wantCompliant: map[string]bool{slo.TypeAvailability: true, slo.TypeErrorRate: true},
			wantBudget:    0.15,
		},
		{
			name: "error rate above 1 percent is critical",
			batches: []batch{
				{980, 20 * time.Millisecond, slo.Success},
				{20, 20 * time.Millisecond, slo.ServerError},
			},
			wantStatus:    slo.Critical,
			wantReason:    "error rate",
			wantCompliant: map[string]bool{slo.TypeAvailability: false, slo.TypeErrorRate: false, slo.TypeSuccessRate: false},
			wantBudget:    0,
		},
		{
			name: "p95 between 200 and 300 ms warns",
			batches: []batch{
				{90, 20 * time.Millisecond, slo.Success},
				{10, 240 * time.Millisecond, slo.Success},
			},
			wantStatus:    slo.Warning,
			wantReason:    "p95 latency",
			wantCompliant: map[string]bool{slo.TypeLatencyP95: true, slo.TypeLatencyP50: true},
			wantBudget:    1,
		},
		{
			name: "p95 above 300 ms is critical",
			batches: []batch{
				{90, 20 * time.Millisecond, slo.Success},
				{10, 900 * time.Millisecond, slo.Success},
			},
			wantStatus:    slo.Critical,
			wantReason:    "p95 latency",
			wantCompliant: map[string]bool{slo.TypeLatencyP95: false, slo.TypeLatencyP99: false, slo.TypeAvailability: true},
			wantBudget:    1,
		},
		{
			name: "client errors above 1 percent warn but spend no budget",
			batches: []batch{
				{95, 20 * time.Millisecond, slo.Success},
				{5, 20 * time.Millisecond, slo.ClientError},
			},
			wantStatus:    slo.Warning,
			wantReason:    "client error rate",
			wantCompliant: map[string]bool{slo.TypeAvailability: true, slo.TypeSuccessRate: false, slo.TypeClientErrorRate: false},
			wantBudget:    1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			tr := newTracker(clock)
			for _, b := range tt.batches {
				for range b.n {
					tr.Observe(b.latency, b.class)
				}
			}
			st := tr.Status()
			if st.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s (reasons %v)", st.Status, tt.wantStatus, st.Reasons)
			}
			if tt.wantReason != "" && !strings.Contains(strings.Join(st.Reasons, ";"), tt.wantReason) {
				t.Errorf("reasons %v lack %q", st.Reasons, tt.wantReason)
			}
			for typ, want := range tt.wantCompliant {
				if got := st.SLOs[typ].Compliant; got != want {
					t.Errorf("%s compliant = %v, want %v (%+v)", typ, got, want, st.SLOs[typ])
				}
			}
			if d := st.ErrorBudget.Remaining - tt.wantBudget; d > 1e-3 || d < -1e-3 {
				t.Errorf("budget remaining = %v, want %v", st.ErrorBudget.Remaining, tt.wantBudget)
			}
			var total int
			for _, b := range tt.batches {
				total += b.n
			}
			if st.Requests != uint64(total) {
				t.Errorf("requests = %d, want %d", st.Requests, total)
			}
		})
	}
}

func TestQuantiles(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	tr := newTracker(clock)
	// 100 requests spread 1..100 ms.
	for i := 1; i <= 100; i++ {
		tr.Observe(time.Duration(i)*time.Millisecond, slo.Success)
	}
	st := tr.Status()
	checks := []struct {
		typ      string
		min, max float64
	}{
		{slo.TypeLatencyP50, 45, 55},
		{slo.TypeLatencyP95, 90, 100},
		{slo.TypeLatencyP99, 95, 100},
	}
	for _, c := range checks {
		if got := st.SLOs[c.typ].Actual; got < c.min || got > c.max {
			t.Errorf("%s = %v ms, want in [%v, %v]", c.typ, got, c.min, c.max)
		}
		if st.SLOs[c.typ].Unit != "ms" {
			t.Errorf("%s unit = %q", c.typ, st.SLOs[c.typ].Unit)
		}
	}
	// A single slow outlier beyond the last bucket is bounded by the max seen.
	tr.Observe(time.Minute, slo.Success)
	if got := tr.Status().SLOs[slo.TypeLatencyP99].Actual; got > 60000 {
		t.Errorf("p99 = %v ms beyond max observed", got)
	}
}

func TestWindowRollsOff(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	tr := newTracker(clock)
	for range 10 {
		tr.Observe(time.Millisecond, slo.ServerError)
	}
	if st := tr.Status(); st.Status != slo.Critical || st.Requests != 10 {
		t.Fatalf("status = %s requests = %d", st.Status, st.Requests)
	}
	clock.Advance(20 * time.Minute)
	tr.Observe(time.Millisecond, slo.Success)
	if st := tr.Status(); st.Requests != 11 {
		t.Fatalf("inside window: requests = %d, want 11", st.Requests)
	}
	clock.Advance(11 * time.Minute) // the errors are now 31 min old
	st := tr.Status()
	if st.Requests != 1 || st.Status != slo.Healthy {
		t.Fatalf("after window: requests = %d status = %s %v", st.Requests, st.Status, st.Reasons)
	}
	clock.Advance(time.Hour) // everything rolled off, ring slots reused
	tr.Observe(time.Millisecond, slo.Success)
	if st := tr.Status(); st.Requests != 1 {
		t.Fatalf("after reuse: requests = %d", st.Requests)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code codes.Code
		want slo.Class
	}{
		{codes.OK, slo.Success},
		{codes.NotFound, slo.ClientError},
		{codes.InvalidArgument, slo.ClientError},
		{codes.PermissionDenied, slo.ClientError},
		{codes.Canceled, slo.ClientError},
		{codes.ResourceExhausted, slo.ClientError},
		{codes.Internal, slo.ServerError},
		{codes.Unknown, slo.ServerError},
		{codes.Unavailable, slo.ServerError},
		{codes.DeadlineExceeded, slo.ServerError},
		{codes.Unimplemented, slo.ServerError},
	}
	for _, tt := range tests {
		if got := slo.ClassifyGRPC(tt.code); got != tt.want {
			t.Errorf("ClassifyGRPC(%v) = %v, want %v", tt.code, got, tt.want)
		}
	}
	for status, want := range map[int]slo.Class{200: slo.Success, 302: slo.Success, 404: slo.ClientError, 429: slo.ClientError, 500: slo.ServerError, 503: slo.ServerError} {
		if got := slo.ClassifyHTTP(status); got != want {
			t.Errorf("ClassifyHTTP(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestCollector(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	tr := newTracker(clock)
	for range 999 {
		tr.Observe(10*time.Millisecond, slo.Success)
	}
	tr.Observe(10*time.Millisecond, slo.ServerError)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tr)
	if n := testutil.CollectAndCount(tr, "hashinsight_slo_compliance"); n != 5 {
		t.Errorf("compliance series = %d, want 5", n)
	}
	want := `
# HELP hashinsight_error_rate Server error rate over the SLO measurement window (fraction 0..1).
# TYPE hashinsight_error_rate gauge
hashinsight_error_rate{service="mining"} 0.001
# HELP hashinsight_slo_error_budget_remaining Error budget remaining over the measurement window (fraction 0..1).
# TYPE hashinsight_slo_error_budget_remaining gauge
hashinsight_slo_error_budget_remaining{service="mining"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hashinsight_error_rate", "hashinsight_slo_error_budget_remaining"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hashinsight_slo_compliance" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var typ string
			for _, l := range m.GetLabel() {
				if l.GetName() == "slo_type" {
					typ = l.GetValue()
				}
			}
			v := m.GetGauge().GetValue()
			switch typ {
			case slo.TypeAvailability:
				if v < 99.89 || v > 99.91 {
					t.Errorf("availability compliance = %v", v)
				}
			case slo.TypeLatencyP95:
				if v != 100 {
					t.Errorf("latency_p95 compliance = %v", v)
				}
			}
		}
	}
}

func TestStatusJSON(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	tr := newTracker(clock)
	tr.Observe(30*time.Millisecond, slo.Success)
	b, err := json.Marshal(tr.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"service":"mining"`, `"status":"healthy"`, `"window_minutes":30`, `"requests":1`,
		`"availability":{"target":99.95,"actual":100,"unit":"percent","comparison":"\u003e=","compliant":true}`,
		`"latency_p95":{"target":250,`, `"error_budget":{"allowed_percent":0.05,"consumed_percent":0,"remaining":1,"status":"healthy"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

func TestConcurrentObserve(t *testing.T) {
	tr := slo.New(slo.Options{Service: "x"})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				tr.Observe(time.Millisecond, slo.Success)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_ = tr.Status()
		}
	})
	wg.Wait()
	if got := tr.Status().Requests; got != 8000 {
		t.Fatalf("requests = %d", got)
	}
}
