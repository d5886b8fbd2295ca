package ratelimit

import (
	"sync"
	"time"
)

// Leasing: under a high limit, asking Redis for every request costs each request a round trip
// (and the gateway a good part of its CPU) only to hear "allowed". A Redis limiter whose limit
// is at least leaseMinPerMinute therefore takes a lease of several requests of a bucket in one
// call and spends them locally until they run out or the lease expires. The budget stays shared:
// leased requests are spent from the Redis bucket before they are used, so replicas together
// never exceed the limit; an expired lease's unused requests are simply lost (stricter, never
// more lenient). Near the limit, when Redis cannot grant a whole lease, each request asks Redis
// for itself again, so the refusal and its Retry-After are exact. Under leaseMinPerMinute nothing
// changes: every request asks Redis.
const (
	// leaseMinPerMinute is the smallest limit that leases (100 requests per second).
	leaseMinPerMinute = 6000
	// leaseMax caps a lease's size.
	leaseMax = 100
	// leaseTTL is how long leased requests may be spent.
	leaseTTL = time.Second
	// leaseMaxKeys bounds the leases held; expired ones are swept beyond it, and all dropped
	// if that is not enough (a lease lost early costs only a Redis call).
	leaseMaxKeys = 10_000
)

// leaseSize is how many requests one lease takes under a limit of perMinute: a hundredth of a
// second's refill, at most leaseMax; 0 means no leasing.
func leaseSize(perMinute int) int {
	if perMinute < leaseMinPerMinute {
		return 0
	}
	return min(perMinute/leaseMinPerMinute, leaseMax)
}

// leases holds the unspent leased requests per bucket. Safe for concurrent use.
type leases struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]*lease
}

type lease struct {
	left      int
	remaining int // the bucket's Remaining when the lease was taken
	expires   time.Time
}

func newLeases(now func() time.Time) *leases {
	return &leases{now: now, m: map[string]*lease{}}
}

// take spends one leased request of key and reports the bucket's remaining requests as last
// seen, or false when key holds no live lease.
func (l *leases) take(key string) (remaining int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls, found := l.m[key]
	if !found {
		return 0, false
	}
	if ls.left <= 0 || !l.now().Before(ls.expires) {
		delete(l.m, key)
		return 0, false
	}
	ls.left--
	return ls.remaining + ls.left, true
}

// grant records a lease of n requests of key of which one is spent now.
func (l *leases) grant(key string, n, remaining int) {
	if n <= 1 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.m) >= leaseMaxKeys {
		for k, ls := range l.m {
			if ls.left <= 0 || !now.Before(ls.expires) {
				delete(l.m, k)
			}
		}
		if len(l.m) >= leaseMaxKeys {
			clear(l.m)
		}
	}
	l.m[key] = &lease{left: n - 1, remaining: remaining, expires: now.Add(leaseTTL)}
}
