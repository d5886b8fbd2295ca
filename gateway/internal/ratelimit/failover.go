package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultProbeInterval is how often a Failover retries its primary while it is failing.
const DefaultProbeInterval = time.Second

// FailoverOptions configure a Failover.
type FailoverOptions struct {
	// Primary is the shared limiter (Redis); Fallback decides while it fails (Memory, which never
	// fails).
	Primary, Fallback Limiter
	// Logger receives one line per transition (primary failing / primary back).
	Logger *slog.Logger
	// ProbeInterval is how long the primary is left alone after a failure before one request
	// tries it again (default DefaultProbeInterval), so an outage costs one timeout per
	// interval, not one per request.
	ProbeInterval time.Duration
	// OnChange, when set, is called with true when the fallback takes over and false when the
	// primary is back (a metrics gauge).
	OnChange func(degraded bool)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Failover is a Limiter that asks Primary and, while Primary fails, Fallback. It never fails
// open: every request is decided by one of the two, and each switch is logged once. Budgets are
// per replica while the fallback decides.
type Failover struct {
	o FailoverOptions

	mu        sync.Mutex
	degraded  bool
	probing   bool      // one request is trying the primary
	nextProbe time.Time // while degraded: when the primary may be tried again
}

// NewFailover returns a Failover.
func NewFailover(o FailoverOptions) *Failover {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Failover{o: o}
}

// Degraded reports whether the fallback is deciding.
func (f *Failover) Degraded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.degraded
}

// Allow implements Limiter.
func (f *Failover) Allow(ctx context.Context, key string, cost int) (Decision, error) {
	if !f.tryPrimary() {
		return f.o.Fallback.Allow(ctx, key, cost)
	}
	d, err := f.o.Primary.Allow(ctx, key, cost)
	if err != nil {
		if ctx.Err() != nil {
			// The client went away; that says nothing about the primary.
			f.release()
			return Decision{}, ctx.Err()
		}
		f.failed(ctx, err)
		return f.o.Fallback.Allow(ctx, key, cost)
	}
	f.succeeded(ctx)
	return d, nil
}

// tryPrimary reports whether this call should ask the primary: always while it is healthy; while
// degraded, one call per ProbeInterval.
func (f *Failover) tryPrimary() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.degraded {
		return true
	}
	if f.probing || f.o.Now().Before(f.nextProbe) {
		return false
	}
	f.probing = true
	return true
}

func (f *Failover) release() {
	f.mu.Lock()
	f.probing = false
	f.mu.Unlock()
}

func (f *Failover) failed(ctx context.Context, err error) {
	f.mu.Lock()
	f.probing = false
	f.nextProbe = f.o.Now().Add(f.o.ProbeInterval)
	changed := !f.degraded
	f.degraded = true
	f.mu.Unlock()
	if changed {
		f.o.Logger.WarnContext(ctx, "rate limiter: redis failing, limits are now per gateway replica (in memory) until it answers again",
			slog.Any("error", err))
		if f.o.OnChange != nil {
			f.o.OnChange(true)
		}
	}
}

func (f *Failover) succeeded(ctx context.Context) {
	f.mu.Lock()
	f.probing = false
	changed := f.degraded
	f.degraded = false
	f.mu.Unlock()
	if changed {
		f.o.Logger.InfoContext(ctx, "rate limiter: redis answers again, limits are shared across replicas")
		if f.o.OnChange != nil {
			f.o.OnChange(false)
		}
	}
}
