package ratelimit

import (
	"container/list"
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the buckets a Memory limiter keeps (about 200 bytes each).
const DefaultMaxKeys = 100_000

// MemoryOptions configure a Memory limiter.
type MemoryOptions struct {
	// PerMinute is the bucket size and refill rate (RATE_LIMIT_REQUESTS_PER_MINUTE).
	PerMinute int
	// MaxKeys bounds the buckets kept; the least recently used one is dropped beyond it.
	// Default DefaultMaxKeys.
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Memory is an in-process Limiter: one golang.org/x/time/rate token bucket per key in a bounded
// LRU. Dropping a bucket forgets what it spent, so MaxKeys must comfortably exceed the keys that
// are active within a minute; an attacker who cycles through more keys than that gains nothing
// the per-IP bucket does not already bound.
type Memory struct {
	perMinute int
	every     rate.Limit
	maxKeys   int
	now       func() time.Time

	mu    sync.Mutex
	order *list.List // of *entry, most recently used first
	byKey map[string]*list.Element
}

type entry struct {
	key string
	lim *rate.Limiter
}

// NewMemory returns a Memory limiter.
func NewMemory(o MemoryOptions) (*Memory, error) {
	if o.PerMinute < 1 {
		return nil, ErrBadLimit
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Memory{
		perMinute: o.PerMinute,
		every:     rate.Every(interval(o.PerMinute)),
		maxKeys:   o.MaxKeys,
		now:       o.Now,
		order:     list.New(),
		byKey:     make(map[string]*list.Element),
	}, nil
}

// Allow implements Limiter. It never fails.
func (m *Memory) Allow(_ context.Context, key string, cost int) (Decision, error) {
	lim := m.bucket(key)
	now := m.now()
	d := Decision{Limit: m.perMinute}
	if cost > 0 && lim.AllowN(now, cost) {
		d.Allowed = true
		d.Remaining = remaining(lim.TokensAt(now))
		return d, nil
	}
	tokens := lim.TokensAt(now)
	need := float64(max(cost, 1))
	if cost == 0 && tokens >= 1 {
		d.Allowed = true
		d.Remaining = remaining(tokens)
		return d, nil
	}
	d.RetryAfter = time.Duration((need - tokens) / float64(m.every) * float64(time.Second))
	if d.RetryAfter <= 0 {
		d.RetryAfter = time.Millisecond // a concurrent spend raced us; the budget is about to refill
	}
	return d, nil
}

// Len returns the number of buckets kept.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

// bucket returns key's bucket, creating it (full) and evicting the least recently used one when
// the LRU is full.
func (m *Memory) bucket(key string) *rate.Limiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.byKey[key]; ok {
		m.order.MoveToFront(el)
		return el.Value.(*entry).lim
	}
	if m.order.Len() >= m.maxKeys {
		if last := m.order.Back(); last != nil {
			m.order.Remove(last)
			delete(m.byKey, last.Value.(*entry).key)
		}
	}
	e := &entry{key: key, lim: rate.NewLimiter(m.every, m.perMinute)}
	m.byKey[key] = m.order.PushFront(e)
	return e.lim
}

func remaining(tokens float64) int {
	if tokens < 0 {
		return 0
	}
	return int(math.Floor(tokens))
}
