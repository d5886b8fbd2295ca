// Package ratelimit holds the gateway's request budgets: RATE_LIMIT_REQUESTS_PER_MINUTE per bucket
// (an API key, a user, a client IP), refilled continuously (GCRA / token bucket: a full minute's
// budget may be spent at once, then one request per 60/N seconds).
//
// Two implementations share the [Limiter] interface: [Redis] keeps the buckets in Redis with
// github.com/go-redis/redis_rate (GCRA in one Lua script), so every gateway replica draws on the
// same budget; [Memory] keeps them in process with golang.org/x/time/rate, in a bounded LRU so a
// flood of distinct keys cannot exhaust memory. [Failover] uses Redis and falls back to memory
// while Redis fails, logging each transition once.
package ratelimit

import (
	"context"
	"errors"
	"math"
	"time"
)

// Limiter decides whether a bucket may spend requests now. Implementations are safe for
// concurrent use.
type Limiter interface {
	// Allow spends cost requests from key's bucket if it holds them. cost 0 spends nothing and
	// reports whether one request would be allowed now.
	Allow(ctx context.Context, key string, cost int) (Decision, error)
}

// Decision is the outcome of one Allow.
type Decision struct {
	// Allowed reports whether the requests were spent (cost 0: whether one could be).
	Allowed bool
	// Limit is the bucket's size: requests per minute.
	Limit int
	// Remaining is how many more requests the bucket allows right now (rounded down).
	Remaining int
	// RetryAfter is how long until one request will be allowed; zero when Allowed.
	RetryAfter time.Duration
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up and at least 1: the value of a
// Retry-After header.
func (d Decision) RetryAfterSeconds() int64 {
	s := int64(math.Ceil(d.RetryAfter.Seconds()))
	return max(s, 1)
}

// ErrBadLimit is returned by the constructors for a non-positive limit.
var ErrBadLimit = errors.New("ratelimit: requests per minute must be at least 1")

// interval is the refill interval of one request under a limit of perMinute.
func interval(perMinute int) time.Duration {
	return time.Minute / time.Duration(perMinute)
}
