// Package loadtest drives requests at a fixed rate (open loop) and reports latency percentiles.
//
// Open loop means requests are started on schedule whether or not earlier ones have finished, as
// independent clients would send them; each latency is measured from the request's scheduled
// start, so a stalled server or a lagging driver shows up in the percentiles instead of silently
// lowering the offered rate (no coordinated omission). Latencies go to a log-bucketed histogram
// (≤1% relative error) that concurrent requests record into without locks.
package loadtest

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config is one load run.
type Config struct {
	// Rate is the offered load in requests per second.
	Rate int
	// Duration is how long requests are started for.
	Duration time.Duration
	// MaxInFlight bounds outstanding requests (default 4096); a request due while the bound is
	// reached is counted in Result.Dropped, not sent.
	MaxInFlight int
}

// Do performs request number i and returns the HTTP status (or an error).
type Do func(ctx context.Context, i int) (status int, err error)

// Result summarises a run.
type Result struct {
	Offered   float64 // requests per second scheduled
	Achieved  float64 // requests per second completed
	Sent      int64
	Completed int64
	Errors    int64 // transport errors
	Dropped   int64 // not sent: MaxInFlight outstanding
	Statuses  map[int]int64
	Hist      *Histogram
	// Elapsed is the run's wall time, from the first scheduled request to the last answer.
	Elapsed time.Duration
	// MaxLag is the longest a request was sent after its scheduled time: how far the driver
	// fell behind its schedule (an open-loop driver that falls behind sends what is due in a
	// burst, so the rate holds on average but not from moment to moment).
	MaxLag time.Duration
}

// Merge returns the pooled result of r and o (two runs of the same load, such as the rounds
// of an interleaved comparison): counts and latencies added, rates over the summed time. Either
// may be the zero Result; neither is changed.
func (r Result) Merge(o Result) Result {
	out := Result{
		Sent:      r.Sent + o.Sent,
		Completed: r.Completed + o.Completed,
		Errors:    r.Errors + o.Errors,
		Dropped:   r.Dropped + o.Dropped,
		Statuses:  map[int]int64{},
		Hist:      NewHistogram(),
		Elapsed:   r.Elapsed + o.Elapsed,
		MaxLag:    max(r.MaxLag, o.MaxLag),
	}
	for _, x := range []Result{r, o} {
		for code, n := range x.Statuses {
			out.Statuses[code] += n
		}
		if x.Hist != nil {
			out.Hist.Add(x.Hist)
		}
	}
	if secs := out.Elapsed.Seconds(); secs > 0 {
		out.Offered = (r.Offered*r.Elapsed.Seconds() + o.Offered*o.Elapsed.Seconds()) / secs
		out.Achieved = float64(out.Completed) / secs
	}
	return out
}

// P returns the q-quantile (0 < q ≤ 1) of the completed requests' latencies.
func (r Result) P(q float64) time.Duration { return r.Hist.Quantile(q) }

// String is a one-line summary: rate, p50/p90/p99/max and the status counts.
func (r Result) String() string {
	codes := make([]int, 0, len(r.Statuses))
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var st []string
	for _, c := range codes {
		st = append(st, fmt.Sprintf("%d×%d", r.Statuses[c], c))
	}
	return fmt.Sprintf("offered %.0f/s achieved %.0f/s  p50 %s  p90 %s  p99 %s  max %s  sent %d errors %d dropped %d  lag %s  [%s]",
		r.Offered, r.Achieved, ms(r.P(0.50)), ms(r.P(0.90)), ms(r.P(0.99)), ms(r.Hist.Max()),
		r.Sent, r.Errors, r.Dropped, ms(r.MaxLag), strings.Join(st, " "))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// Run offers cfg.Rate requests per second for cfg.Duration, calling do for each, and waits for
// the outstanding ones. It returns early (with what completed) when ctx ends.
func Run(ctx context.Context, cfg Config, do Do) Result {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4096
	}
	interval := time.Second / time.Duration(cfg.Rate)
	total := int(cfg.Duration / interval)
	h := NewHistogram()
	var (
		mu       sync.Mutex
		statuses = map[int]int64{}
		sent     atomic.Int64
		done     atomic.Int64
		errs     atomic.Int64
		dropped  atomic.Int64
		wg       sync.WaitGroup
	)
	var maxLag time.Duration // written by the dispatcher alone
	sem := make(chan struct{}, cfg.MaxInFlight)
	// The schedule is start + i·interval. The timer is set for the next due request; when the
	// dispatcher wakes late, every request already due goes out at once (and is timed from its
	// due time).
	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	next := 0
dispatch:
	for next < total {
		select {
		case <-ctx.Done():
			break dispatch
		case <-timer.C:
		}
		now := time.Now()
		for next < total {
			due := start.Add(time.Duration(next) * interval)
			if due.After(now) {
				timer.Reset(due.Sub(now))
				break
			}
			maxLag = max(maxLag, now.Sub(due))
			next++
			select {
			case sem <- struct{}{}:
			default:
				dropped.Add(1)
				continue
			}
			sent.Add(1)
			i := next - 1
			wg.Go(func() {
				defer func() { <-sem }()
				status, err := do(ctx, i)
				lat := time.Since(due)
				if err != nil {
					errs.Add(1)
					return
				}
				h.Record(lat)
				done.Add(1)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	return Result{
		Offered:   float64(cfg.Rate),
		Achieved:  float64(done.Load()) / elapsed.Seconds(),
		Sent:      sent.Load(),
		Completed: done.Load(),
		Errors:    errs.Load(),
		Dropped:   dropped.Load(),
		Statuses:  statuses,
		Hist:      h,
		Elapsed:   elapsed,
		MaxLag:    maxLag,
	}
}

// Histogram buckets durations logarithmically from 1 µs (growth 1%), concurrently and without
// locks. Quantiles report a bucket's upper bound: at most 1% above the true value.
type Histogram struct {
	counts []atomic.Int64
	max    atomic.Int64
	n      atomic.Int64
}

const (
	histMin    = float64(time.Microsecond)
	histGrowth = 1.01
)

// NewHistogram returns an empty histogram covering 1 µs to about 2 minutes.
func NewHistogram() *Histogram {
	n := int(math.Log(float64(2*time.Minute)/histMin)/math.Log(histGrowth)) + 2
	return &Histogram{counts: make([]atomic.Int64, n)}
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	i := 0
	if f := float64(d); f > histMin {
		i = int(math.Log(f/histMin)/math.Log(histGrowth)) + 1
	}
	i = min(i, len(h.counts)-1)
	h.counts[i].Add(1)
	h.n.Add(1)
	for {
		cur := h.max.Load()
		if int64(d) <= cur || h.max.CompareAndSwap(cur, int64(d)) {
			break
		}
	}
}

// Add adds every observation of o (which must not be recorded into meanwhile) to h.
func (h *Histogram) Add(o *Histogram) {
	for i := range o.counts {
		if n := o.counts[i].Load(); n > 0 {
			h.counts[i].Add(n)
			h.n.Add(n)
		}
	}
	for {
		cur, m := h.max.Load(), o.max.Load()
		if m <= cur || h.max.CompareAndSwap(cur, m) {
			break
		}
	}
}

// Count is the number of observations.
func (h *Histogram) Count() int64 { return h.n.Load() }

// Max is the largest observation.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the q-quantile (0 < q ≤ 1), or 0 without observations.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			upper := time.Duration(histMin * math.Pow(histGrowth, float64(i)))
			return min(upper, h.Max())
		}
	}
	return h.Max()
}

// Request is one request of a FastClient load.
type Request struct {
	Method string
	URL    string
	// Header holds name, value pairs.
	Header [][2]string
	Body   []byte
}

// FastClient sends load with fasthttp over keep-alive connections. The load generator shares
// the machine with what it measures, and net/http's client costs about 250 µs of CPU per
// request there, a quarter of a core at 1,000 requests per second taken from the processes
// under test; fasthttp's costs a fraction of that. The requests are the same HTTP/1.1 on the
// wire.
type FastClient struct {
	c       *fasthttp.Client
	timeout time.Duration
}

// NewFastClient returns a FastClient whose requests time out after timeout, with as many
// connections per host as a run has requests outstanding.
func NewFastClient(timeout time.Duration) *FastClient {
	return &FastClient{
		c: &fasthttp.Client{
			MaxConnsPerHost:     4096,
			MaxIdleConnDuration: time.Minute,
			ReadTimeout:         timeout,
			WriteTimeout:        timeout,
		},
		timeout: timeout,
	}
}

// Do returns a Do that sends build(i) and returns the status; the body is read and discarded.
func (c *FastClient) Do(build func(i int) Request) Do {
	return func(_ context.Context, i int) (int, error) {
		r := build(i)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(r.Method)
		req.SetRequestURI(r.URL)
		for _, h := range r.Header {
			req.Header.Set(h[0], h[1])
		}
		if r.Body != nil {
			req.SetBodyRaw(r.Body)
		}
		if err := c.c.DoTimeout(req, resp, c.timeout); err != nil {
			return 0, err
		}
		return resp.StatusCode(), nil
	}
}
