// Package slo tracks a service's service-level objectives over a rolling
// window (SLO_MEASUREMENT_WINDOW, 30 minutes by default) from the requests
// the metrics interceptors observe, and reports them the way the operations
// manual (chapter 4.1, Appendix C) defines them:
//
//   - availability: share of requests not failed by the server (HTTP ≥ 500,
//     gRPC Internal/Unknown/Unavailable/DeadlineExceeded/Unimplemented/DataLoss),
//     target ≥ 99.95 %;
//   - success rate: share of requests that succeeded (client errors count
//     against it too), target ≥ 99.9 %;
//   - latency p50/p95/p99, targets ≤ 100/250/500 ms;
//   - error rate (server errors), target ≤ 0.1 %, and client error rate
//     (4xx), target ≤ 1 %;
//   - the error budget: the share of the availability budget (0.05 % of
//     requests) not yet spent.
//
// The overall status follows Appendix C's thresholds: availability < 99.9 %,
// p95 > 200 ms, error rate > 0.5 %, error budget < 20 % or a 4xx rate > 1 %
// is a warning; availability < 99.5 %, p95 > 300 ms, error rate > 1 % or an
// error budget < 10 % is critical.
//
// The Tracker keeps a ring of fixed-width time slots, each with request
// counts by class and a fixed-bucket latency histogram, so memory is bounded
// and percentiles are interpolated within buckets. It is a
// prometheus.Collector exporting hashinsight_slo_compliance{service,slo_type}
// (percent), hashinsight_slo_error_budget_remaining{service} (0..1) and
// hashinsight_error_rate{service} (0..1).
package slo

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/hashinsight/platform/pkg/errcode"
)

// Class is the outcome class of one request.
type Class int

// Outcome classes.
const (
	// Success: OK / 2xx / 3xx.
	Success Class = iota
	// ClientError: the request was rejected because of the caller (4xx).
	ClientError
	// ServerError: the service failed to serve the request (5xx).
	ServerError
)

// ClassifyHTTP classifies an HTTP status code.
func ClassifyHTTP(status int) Class {
	switch {
	case status >= 500:
		return ServerError
	case status >= 400:
		return ClientError
	default:
		return Success
	}
}

// ClassifyGRPC classifies a gRPC code through its HTTP equivalent.
func ClassifyGRPC(c codes.Code) Class {
	return ClassifyHTTP(errcode.HTTPStatusFromGRPC(c))
}

// Level is an overall SLO status.
type Level string

// Levels, from best to worst.
const (
	Healthy  Level = "healthy"
	Warning  Level = "warning"
	Critical Level = "critical"
)

func (l Level) rank() int {
	switch l {
	case Critical:
		return 2
	case Warning:
		return 1
	default:
		return 0
	}
}

func worse(a, b Level) Level {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// SLO type names, used as the slo_type label and as keys of Status.SLOs.
const (
	TypeAvailability    = "availability"
	TypeSuccessRate     = "success_rate"
	TypeLatencyP50      = "latency_p50"
	TypeLatencyP95      = "latency_p95"
	TypeLatencyP99      = "latency_p99"
	TypeErrorRate       = "error_rate"
	TypeClientErrorRate = "client_error_rate"
)

// Objectives are the targets and the status thresholds. Ratios are
// fractions (0.9995 = 99.95 %).
type Objectives struct {
	Availability         float64 // target, ≥
	AvailabilityWarning  float64 // warning below
	AvailabilityCritical float64 // critical below
	SuccessRate          float64 // target, ≥
	LatencyP50           time.Duration
	LatencyP95           time.Duration
	LatencyP95Warning    time.Duration // warning above
	LatencyP95Critical   time.Duration // critical above
	LatencyP99           time.Duration
	ErrorRate            float64 // target (server errors), ≤
	ErrorRateWarning     float64 // warning above
	ErrorRateCritical    float64 // critical above
	ClientErrorRate      float64 // target (4xx), ≤; warning above
	BudgetWarning        float64 // warning when the remaining budget is below
	BudgetCritical       float64 // critical when the remaining budget is below
}

// DefaultObjectives are the manual's targets (chapter 4.1) and thresholds (Appendix C).
func DefaultObjectives() Objectives {
	return Objectives{
		Availability:         0.9995,
		AvailabilityWarning:  0.999,
		AvailabilityCritical: 0.995,
		SuccessRate:          0.999,
		LatencyP50:           100 * time.Millisecond,
		LatencyP95:           250 * time.Millisecond,
		LatencyP95Warning:    200 * time.Millisecond,
		LatencyP95Critical:   300 * time.Millisecond,
		LatencyP99:           500 * time.Millisecond,
		ErrorRate:            0.001,
		ErrorRateWarning:     0.005,
		ErrorRateCritical:    0.01,
		ClientErrorRate:      0.01,
		BudgetWarning:        0.20,
		BudgetCritical:       0.10,
	}
}

// Options configure a Tracker.
type Options struct {
	// Service names the service (the "service" label).
	Service string
	// Window is the rolling measurement window; default 30 minutes.
	Window time.Duration
	// Resolution is the width of one time slot; default 10 s. The window
	// advances slot by slot.
	Resolution time.Duration
	// Objectives default to DefaultObjectives when nil.
	Objectives *Objectives
	// Now is the clock; time.Now when nil (tests inject a fake).
	Now func() time.Time
}

// latencyBounds are the upper bounds of the latency buckets; they include
// every default target and threshold so compliance with them is exact.
var latencyBounds = []time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	75 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond,
	250 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond,
	750 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second, 30 * time.Second,
}

type slot struct {
	index   int64 // absolute slot number; identifies which period the slot holds
	total   uint64
	client  uint64
	server  uint64
	max     time.Duration
	buckets []uint64 // len(latencyBounds)+1, last is overflow
}

// Tracker tracks SLOs over a rolling window. It is safe for concurrent use.
type Tracker struct {
	service string
	window  time.Duration
	res     time.Duration
	obj     Objectives
	now     func() time.Time

	mu    sync.Mutex
	slots []slot

	complianceDesc *prometheus.Desc
	budgetDesc     *prometheus.Desc
	errorRateDesc  *prometheus.Desc
}

// New returns a Tracker.
func New(opts Options) *Tracker {
	t := &Tracker{
		service: opts.Service,
		window:  opts.Window,
		res:     opts.Resolution,
		now:     opts.Now,
	}
	if t.window <= 0 {
		t.window = 30 * time.Minute
	}
	if t.res <= 0 {
		t.res = 10 * time.Second
	}
	if t.res > t.window {
		t.res = t.window
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.obj = DefaultObjectives()
	if opts.Objectives != nil {
		t.obj = *opts.Objectives
	}
	n := int((t.window + t.res - 1) / t.res)
	t.slots = make([]slot, n)
	for i := range t.slots {
		t.slots[i] = slot{index: math.MinInt64, buckets: make([]uint64, len(latencyBounds)+1)}
	}
	labels := prometheus.Labels{"service": opts.Service}
	t.complianceDesc = prometheus.NewDesc("hashinsight_slo_compliance",
		"SLO compliance percentage over the measurement window: the share of requests meeting the SLO's criterion.",
		[]string{"slo_type"}, labels)
	t.budgetDesc = prometheus.NewDesc("hashinsight_slo_error_budget_remaining",
		"Error budget remaining over the measurement window (fraction 0..1).", nil, labels)
	t.errorRateDesc = prometheus.NewDesc("hashinsight_error_rate",
		"Server error rate over the SLO measurement window (fraction 0..1).", nil, labels)
	return t
}

// Service is the service name the tracker reports for.
func (t *Tracker) Service() string { return t.service }

// Window is the measurement window.
func (t *Tracker) Window() time.Duration { return t.window }

// Observe records one finished request.
func (t *Tracker) Observe(latency time.Duration, class Class) {
	if latency < 0 {
		latency = 0
	}
	idx := t.now().UnixNano() / int64(t.res)
	b := bucketOf(latency)

	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.slots[int(mod(idx, int64(len(t.slots))))]
	if s.index != idx {
		s.reset(idx)
	}
	s.total++
	switch class {
	case ClientError:
		s.client++
	case ServerError:
		s.server++
	}
	s.buckets[b]++
	if latency > s.max {
		s.max = latency
	}
}

func (s *slot) reset(idx int64) {
	s.index = idx
	s.total, s.client, s.server, s.max = 0, 0, 0, 0
	clear(s.buckets)
}

func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

func bucketOf(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return len(latencyBounds)
}

// window is the aggregate of the slots inside the window.
type aggregate struct {
	total, client, server uint64
	max                   time.Duration
	buckets               []uint64
}

func (t *Tracker) aggregate() aggregate {
	cur := t.now().UnixNano() / int64(t.res)
	oldest := cur - int64(len(t.slots)) + 1
	a := aggregate{buckets: make([]uint64, len(latencyBounds)+1)}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.slots {
		s := &t.slots[i]
		if s.index < oldest || s.index > cur {
			continue
		}
		a.total += s.total
		a.client += s.client
		a.server += s.server
		if s.max > a.max {
			a.max = s.max
		}
		for j, c := range s.buckets {
			a.buckets[j] += c
		}
	}
	return a
}

// bucketRange returns the lower and upper latency of bucket i.
func (a aggregate) bucketRange(i int) (lo, hi time.Duration) {
	if i > 0 {
		lo = latencyBounds[i-1]
	}
	if i < len(latencyBounds) {
		return lo, latencyBounds[i]
	}
	return lo, max(a.max, lo)
}

// quantile interpolates the q-quantile latency linearly within its bucket.
func (a aggregate) quantile(q float64) time.Duration {
	if a.total == 0 {
		return 0
	}
	rank := q * float64(a.total)
	var cum float64
	for i, c := range a.buckets {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lo, hi := a.bucketRange(i)
			frac := (rank - cum) / float64(c)
			d := lo + time.Duration(frac*float64(hi-lo))
			return min(d, a.max)
		}
		cum += float64(c)
	}
	return a.max
}

// within is the share of requests at or under d, interpolated within the
// bucket holding d (exact when d is a bucket bound).
func (a aggregate) within(d time.Duration) float64 {
	if a.total == 0 {
		return 1
	}
	var n float64
	for i, c := range a.buckets {
		lo, hi := a.bucketRange(i)
		switch {
		case hi <= d:
			n += float64(c)
		case lo < d && hi > lo:
			n += float64(c) * float64(d-lo) / float64(hi-lo)
		}
	}
	return n / float64(a.total)
}

func (a aggregate) ratio(n uint64) float64 {
	if a.total == 0 {
		return 0
	}
	return float64(n) / float64(a.total)
}

// Objective is one SLO's target and measured value.
type Objective struct {
	// Target is the objective in Unit ("percent" or "ms").
	Target float64 `json:"target"`
	// Actual is the measured value over the window in Unit.
	Actual float64 `json:"actual"`
	// Unit is "percent" or "ms".
	Unit string `json:"unit"`
	// Comparison says how Actual must relate to Target: ">=" or "<=".
	Comparison string `json:"comparison"`
	// Compliant reports whether Actual meets Target.
	Compliant bool `json:"compliant"`
}

// ErrorBudget is the state of the availability error budget over the window.
type ErrorBudget struct {
	// AllowedPercent is the share of requests that may fail (100 − availability target).
	AllowedPercent float64 `json:"allowed_percent"`
	// ConsumedPercent is the share of the budget already spent (may exceed 100).
	ConsumedPercent float64 `json:"consumed_percent"`
	// Remaining is the unspent fraction of the budget, 0..1.
	Remaining float64 `json:"remaining"`
	// Status is the budget's own level (Appendix C: < 20 % warning, < 10 % critical).
	Status Level `json:"status"`
}

// Status is the SLO report served at /api/slo/status.
type Status struct {
	Service       string               `json:"service"`
	Status        Level                `json:"status"`
	Reasons       []string             `json:"reasons,omitempty"`
	Timestamp     time.Time            `json:"timestamp"`
	WindowMinutes float64              `json:"window_minutes"`
	Requests      uint64               `json:"requests"`
	SLOs          map[string]Objective `json:"slos"`
	ErrorBudget   ErrorBudget          `json:"error_budget"`
}

func round(v float64) float64 { return math.Round(v*1e4) / 1e4 }

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }

func atLeast(target, actual float64) Objective {
	return Objective{Target: round(target * 100), Actual: round(actual * 100), Unit: "percent", Comparison: ">=", Compliant: actual >= target}
}

func atMost(target, actual float64) Objective {
	return Objective{Target: round(target * 100), Actual: round(actual * 100), Unit: "percent", Comparison: "<=", Compliant: actual <= target}
}

func latency(target, actual time.Duration) Objective {
	return Objective{Target: ms(target), Actual: ms(actual), Unit: "ms", Comparison: "<=", Compliant: actual <= target}
}

// Status computes the current SLO report.
func (t *Tracker) Status() Status {
	a := t.aggregate()
	o := t.obj
	availability := 1 - a.ratio(a.server)
	success := 1 - a.ratio(a.server+a.client)
	errRate := a.ratio(a.server)
	clientRate := a.ratio(a.client)
	p50, p95, p99 := a.quantile(0.50), a.quantile(0.95), a.quantile(0.99)

	st := Status{
		Service:       t.service,
		Status:        Healthy,
		Timestamp:     t.now().UTC(),
		WindowMinutes: t.window.Minutes(),
		Requests:      a.total,
		SLOs: map[string]Objective{
			TypeAvailability:    atLeast(o.Availability, availability),
			TypeSuccessRate:     atLeast(o.SuccessRate, success),
			TypeLatencyP50:      latency(o.LatencyP50, p50),
			TypeLatencyP95:      latency(o.LatencyP95, p95),
			TypeLatencyP99:      latency(o.LatencyP99, p99),
			TypeErrorRate:       atMost(o.ErrorRate, errRate),
			TypeClientErrorRate: atMost(o.ClientErrorRate, clientRate),
		},
	}

	remaining := budgetRemaining(o, errRate)
	allowed := 1 - o.Availability
	consumed := 0.0
	if allowed > 0 {
		consumed = errRate / allowed
	}
	st.ErrorBudget = ErrorBudget{
		AllowedPercent:  round(allowed * 100),
		ConsumedPercent: round(consumed * 100),
		Remaining:       round(remaining),
		Status:          Healthy,
	}

	flag := func(l Level, format string, args ...any) {
		st.Status = worse(st.Status, l)
		st.Reasons = append(st.Reasons, string(l)+": "+fmt.Sprintf(format, args...))
	}
	pct := func(v float64) string { return fmt.Sprintf("%.3f%%", v*100) }
	switch {
	case availability < o.AvailabilityCritical:
		flag(Critical, "availability %s < %s", pct(availability), pct(o.AvailabilityCritical))
	case availability < o.AvailabilityWarning:
		flag(Warning, "availability %s < %s", pct(availability), pct(o.AvailabilityWarning))
	}
	switch {
	case p95 > o.LatencyP95Critical:
		flag(Critical, "p95 latency %v > %v", p95, o.LatencyP95Critical)
	case p95 > o.LatencyP95Warning:
		flag(Warning, "p95 latency %v > %v", p95, o.LatencyP95Warning)
	}
	switch {
	case errRate > o.ErrorRateCritical:
		flag(Critical, "error rate %s > %s", pct(errRate), pct(o.ErrorRateCritical))
	case errRate > o.ErrorRateWarning:
		flag(Warning, "error rate %s > %s", pct(errRate), pct(o.ErrorRateWarning))
	}
	if clientRate > o.ClientErrorRate {
		flag(Warning, "client error rate %s > %s", pct(clientRate), pct(o.ClientErrorRate))
	}
	switch {
	case remaining < o.BudgetCritical:
		st.ErrorBudget.Status = Critical
		flag(Critical, "error budget remaining %s < %s", pct(remaining), pct(o.BudgetCritical))
	case remaining < o.BudgetWarning:
		st.ErrorBudget.Status = Warning
		flag(Warning, "error budget remaining %s < %s", pct(remaining), pct(o.BudgetWarning))
	}
	return st
}

func budgetRemaining(o Objectives, errRate float64) float64 {
	allowed := 1 - o.Availability
	if allowed <= 0 {
		if errRate > 0 {
			return 0
		}
		return 1
	}
	return math.Max(0, math.Min(1, 1-errRate/allowed))
}

// Describe implements prometheus.Collector.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	ch <- t.complianceDesc
	ch <- t.budgetDesc
	ch <- t.errorRateDesc
}

// Collect implements prometheus.Collector.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	a := t.aggregate()
	o := t.obj
	errRate := a.ratio(a.server)
	compliance := map[string]float64{
		TypeAvailability: 1 - errRate,
		TypeSuccessRate:  1 - a.ratio(a.server+a.client),
		TypeLatencyP50:   a.within(o.LatencyP50),
		TypeLatencyP95:   a.within(o.LatencyP95),
		TypeLatencyP99:   a.within(o.LatencyP99),
	}
	for typ, v := range compliance {
		ch <- prometheus.MustNewConstMetric(t.complianceDesc, prometheus.GaugeValue, v*100, typ)
	}
	ch <- prometheus.MustNewConstMetric(t.budgetDesc, prometheus.GaugeValue, budgetRemaining(o, errRate))
	ch <- prometheus.MustNewConstMetric(t.errorRateDesc, prometheus.GaugeValue, errRate)
}

var _ prometheus.Collector = (*Tracker)(nil)
