package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// DefaultRedisTimeout bounds one Redis round trip of the limiter; past it the request is decided
// by the in-memory fallback instead of waiting on a slow Redis.
const DefaultRedisTimeout = 250 * time.Millisecond

// RedisOptions configure a Redis limiter.
type RedisOptions struct {
	// Client is the gateway's Redis (REDIS_URL).
	Client redis.UniversalClient
	// PerMinute is the bucket size and refill rate.
	PerMinute int
	// Prefix namespaces the keys (redis_rate adds "rate:" in front). Default "gateway:".
	Prefix string
	// Timeout bounds one call (default DefaultRedisTimeout).
	Timeout time.Duration
	// Now is the clock of the local leases (default time.Now); see lease.go.
	Now func() time.Time
}

// Redis is a Limiter whose buckets live in Redis (GCRA, github.com/go-redis/redis_rate), shared
// by every gateway replica. Redis's clock decides, so replicas' clocks need not agree. Under a
// high limit it leases several requests per round trip (see lease.go).
type Redis struct {
	rl      *redis_rate.Limiter
	limit   redis_rate.Limit
	prefix  string
	timeout time.Duration
	lease   int // requests per lease; 0: none
	leases  *leases
}

// NewRedis returns a Redis limiter. It does not connect.
func NewRedis(o RedisOptions) (*Redis, error) {
	if o.PerMinute < 1 {
		return nil, ErrBadLimit
	}
	if o.Client == nil {
		return nil, fmt.Errorf("ratelimit: a Redis client is required")
	}
	if o.Prefix == "" {
		o.Prefix = "gateway:"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Redis{
		rl:      redis_rate.NewLimiter(o.Client),
		limit:   redis_rate.PerMinute(o.PerMinute),
		prefix:  o.Prefix,
		timeout: o.Timeout,
		lease:   leaseSize(o.PerMinute),
		leases:  newLeases(o.Now),
	}, nil
}

// Allow implements Limiter. Errors are Redis failures; the bucket was not charged.
func (r *Redis) Allow(ctx context.Context, key string, cost int) (Decision, error) {
	if cost == 1 && r.lease > 1 {
		if remaining, ok := r.leases.take(key); ok {
			return Decision{Allowed: true, Limit: r.limit.Rate, Remaining: max(remaining, 0)}, nil
		}
		// Take a lease: spent from the shared bucket now, used locally below.
		d, err := r.allow(ctx, key, r.lease)
		if err != nil {
			return Decision{}, err
		}
		if d.Allowed {
			r.leases.grant(key, r.lease, d.Remaining)
			d.Remaining += r.lease - 1
			return d, nil
		}
		// Not a whole lease left: this request asks for itself.
	}
	return r.allow(ctx, key, cost)
}

func (r *Redis) allow(ctx context.Context, key string, cost int) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := r.rl.AllowN(ctx, r.prefix+key, r.limit, cost)
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	d := Decision{Limit: r.limit.Rate, Remaining: max(res.Remaining, 0)}
	switch {
	case cost == 0:
		// The script reports the whole (fractional, truncated) budget left; one request needs
		// a whole one. Its reset time is when the bucket is full again; one request is
		// possible (Burst-1) intervals earlier.
		if res.Remaining >= 1 {
			d.Allowed = true
			return d, nil
		}
		d.RetryAfter = res.ResetAfter - time.Duration(r.limit.Burst-1)*interval(r.limit.Rate)
	case res.Allowed > 0:
		d.Allowed = true
		return d, nil
	default:
		d.RetryAfter = res.RetryAfter
	}
	if d.RetryAfter <= 0 {
		d.RetryAfter = time.Millisecond
	}
	return d, nil
}
