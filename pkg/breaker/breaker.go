// Package breaker provides named circuit breakers (sony/gobreaker/v2 under
// the hood) kept in a per-process Registry, with the status the operations
// manual's /api/circuit-breakers endpoint shows (chapter 4.5):
//
//	{"database_queries": {"state": "closed", "failure_count": 0, "total_calls": 1234, "success_rate": "99.8%"}}
//
// and the gauge hashinsight_circuit_breaker_state{service,name}
// (0 closed, 1 half-open, 2 open). A breaker opens after FailureThreshold
// consecutive failures and lets a trial call through after RecoveryTimeout.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors returned without calling the protected function.
var (
	// ErrOpen: the breaker is open.
	ErrOpen = gobreaker.ErrOpenState
	// ErrTooManyRequests: the breaker is half-open and its trial calls are taken.
	ErrTooManyRequests = gobreaker.ErrTooManyRequests
)

// State of a breaker.
type State string

// States, spelled as the manual's status endpoint shows them.
const (
	Closed   State = "closed"
	HalfOpen State = "half_open"
	Open     State = "open"
)

func stateOf(s gobreaker.State) State {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	default:
		return Closed
	}
}

// gaugeValue is the hashinsight_circuit_breaker_state value of s.
func (s State) gaugeValue() float64 {
	switch s {
	case Open:
		return 2
	case HalfOpen:
		return 1
	default:
		return 0
	}
}

// Settings configure one breaker. Zero values take the defaults.
type Settings struct {
	// FailureThreshold is the number of consecutive failures that opens the
	// breaker; default 5 (the manual's database breaker).
	FailureThreshold uint32
	// RecoveryTimeout is how long the breaker stays open before a trial
	// call; default 60 s.
	RecoveryTimeout time.Duration
	// HalfOpenMaxCalls is how many trial calls may run while half-open; default 1.
	HalfOpenMaxCalls uint32
	// IsFailure decides whether an error counts as a failure; default: every
	// non-nil error that IsExcluded does not exclude. Use it to let
	// "not found" and validation errors count as successes.
	IsFailure func(error) bool
	// IsExcluded decides whether an error is ignored altogether; default:
	// context.Canceled and gRPC Canceled (the caller went away).
	IsExcluded func(error) bool
}

// Stats is one breaker's entry of /api/circuit-breakers.
type Stats struct {
	State State `json:"state"`
	// FailureCount is the number of consecutive failures since the last success.
	FailureCount uint64 `json:"failure_count"`
	// TotalCalls counts every call, including the ones rejected while open
	// and excluding the ones the caller canceled.
	TotalCalls uint64 `json:"total_calls"`
	// SuccessRate is the share of TotalCalls that succeeded, e.g. "99.8%".
	SuccessRate string `json:"success_rate"`
	// RejectedCalls counts the calls refused without running.
	RejectedCalls uint64 `json:"rejected_calls"`
}

// Breaker is one named circuit breaker.
type Breaker struct {
	name       string
	cb         *gobreaker.CircuitBreaker[struct{}]
	isFailure  func(error) bool
	isExcluded func(error) bool

	total, successes, rejected, consecutiveFailures atomic.Uint64
}

// Name is the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State is the breaker's current state.
func (b *Breaker) State() State { return stateOf(b.cb.State()) }

// Execute runs fn through the breaker. When the breaker is open it returns
// ErrOpen (or ErrTooManyRequests) without calling fn; a context that is
// already done returns its error without calling fn or counting.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ran := false
	_, err := b.cb.Execute(func() (struct{}, error) {
		ran = true
		return struct{}{}, fn(ctx)
	})
	switch {
	case !ran:
		b.total.Add(1)
		b.rejected.Add(1)
	case err != nil && b.isExcluded(err):
		// Neither a success nor a failure: the caller went away.
	case err != nil && b.isFailure(err):
		b.total.Add(1)
		b.consecutiveFailures.Add(1)
	default:
		b.total.Add(1)
		b.successes.Add(1)
		b.consecutiveFailures.Store(0)
	}
	return err
}

// Do runs fn through b and returns its result.
func Do[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	var out T
	err := b.Execute(ctx, func(ctx context.Context) error {
		v, err := fn(ctx)
		out = v
		return err
	})
	return out, err
}

// Stats returns the breaker's status.
func (b *Breaker) Stats() Stats {
	total, ok := b.total.Load(), b.successes.Load()
	rate := 100.0
	if total > 0 {
		rate = float64(ok) / float64(total) * 100
	}
	return Stats{
		State:         b.State(),
		FailureCount:  b.consecutiveFailures.Load(),
		TotalCalls:    total,
		SuccessRate:   fmt.Sprintf("%.1f%%", rate),
		RejectedCalls: b.rejected.Load(),
	}
}

// Registry holds a service's named breakers and exports their state. It is
// a prometheus.Collector; create one per process.
type Registry struct {
	service string
	logger  *slog.Logger
	desc    *prometheus.Desc

	mu       sync.Mutex
	breakers map[string]*Breaker
}

// NewRegistry returns an empty registry for service. When reg is not nil
// the registry registers itself there as the collector of
// hashinsight_circuit_breaker_state. logger may be nil.
func NewRegistry(service string, reg prometheus.Registerer, logger *slog.Logger) (*Registry, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		service:  service,
		logger:   logger,
		breakers: make(map[string]*Breaker),
		desc: prometheus.NewDesc("hashinsight_circuit_breaker_state",
			"Circuit breaker state (0 closed, 1 half-open, 2 open).",
			[]string{"name"}, prometheus.Labels{"service": service}),
	}
	if reg != nil {
		if err := reg.Register(r); err != nil {
			return nil, fmt.Errorf("breaker: register collector: %w", err)
		}
	}
	return r, nil
}

// Get returns the breaker called name, creating it with s on first use;
// later calls return the same breaker and ignore s.
func (r *Registry) Get(name string, s Settings) *Breaker {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.breakers[name]; ok {
		return b
	}
	threshold := s.FailureThreshold
	if threshold == 0 {
		threshold = 5
	}
	timeout := s.RecoveryTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	excluded := s.IsExcluded
	if excluded == nil {
		excluded = isCanceled
	}
	isFailure := s.IsFailure
	if isFailure == nil {
		isFailure = func(err error) bool { return err != nil }
	}
	logger := r.logger
	b := &Breaker{name: name, isFailure: isFailure, isExcluded: excluded}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  s.HalfOpenMaxCalls,
		Timeout:      timeout,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		IsExcluded:   excluded,
		IsSuccessful: func(err error) bool { return !isFailure(err) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			level := slog.LevelInfo
			if to == gobreaker.StateOpen {
				level = slog.LevelWarn
			}
			logger.Log(context.Background(), level, "circuit breaker state change",
				"breaker", name, "from", stateOf(from), "to", stateOf(to))
		},
	})
	r.breakers[name] = b
	return b
}

// Stats returns every breaker's status keyed by name: the body of /api/circuit-breakers.
func (r *Registry) Stats() map[string]Stats {
	r.mu.Lock()
	bs := slices.Collect(maps.Values(r.breakers))
	r.mu.Unlock()
	out := make(map[string]Stats, len(bs))
	for _, b := range bs {
		out[b.name] = b.Stats()
	}
	return out
}

// Describe implements prometheus.Collector.
func (r *Registry) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

// Collect implements prometheus.Collector. The state is read at scrape
// time, so an open breaker whose timeout has passed shows as half-open.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	bs := slices.Collect(maps.Values(r.breakers))
	r.mu.Unlock()
	for _, b := range bs {
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, b.State().gaugeValue(), b.name)
	}
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}
