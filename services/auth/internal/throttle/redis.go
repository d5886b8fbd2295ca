package throttle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Throttle shared by every replica through Redis. While Redis does not answer it counts
// in its own Memory, so a Redis outage degrades the throttle to per-replica instead of disabling it.
type Redis struct {
	rdb      redis.UniversalClient
	prefix   string
	policy   Policy
	fallback *Memory
	logger   *slog.Logger
	timeout  time.Duration
	degraded atomic.Bool
}

// NewRedis returns a throttle keeping its state under prefix (e.g. "hashinsight:auth:throttle:ip:").
func NewRedis(rdb redis.UniversalClient, prefix string, policy Policy, logger *slog.Logger) *Redis {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Redis{rdb: rdb, prefix: prefix, policy: policy, fallback: NewMemory(policy), logger: logger, timeout: 200 * time.Millisecond}
}

func (r *Redis) keys(key string) (fail, lock string) {
	d := digest(key)
	return r.prefix + "fail:" + d, r.prefix + "lock:" + d
}

// Check returns how long key stays locked (0 when it is not).
func (r *Redis) Check(ctx context.Context, key string) (time.Duration, error) {
	_, lockKey := r.keys(key)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ttl, err := r.rdb.PTTL(ctx, lockKey).Result()
	if err != nil {
		r.down(err)
		return r.fallback.Check(ctx, key)
	}
	r.up()
	fb, _ := r.fallback.Check(ctx, key) // failures counted during an outage still count
	if ttl < 0 {                        // -2: no key, -1: no expiry (never set by us)
		ttl = 0
	}
	return max(ttl, fb), nil
}

// Fail records a failure of key and returns the lock it starts (0 for none).
func (r *Redis) Fail(ctx context.Context, key string) (time.Duration, error) {
	failKey, lockKey := r.keys(key)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var incr *redis.IntCmd
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, failKey)
		p.PExpire(ctx, failKey, r.policy.Window)
		return nil
	})
	if err != nil {
		r.down(err)
		return r.fallback.Fail(ctx, key)
	}
	lock := r.policy.LockFor(incr.Val())
	if lock > 0 {
		if err := r.rdb.Set(ctx, lockKey, "1", lock).Err(); err != nil {
			r.down(err)
			return r.fallback.Fail(ctx, key)
		}
	}
	r.up()
	return lock, nil
}

// Reset forgets key's failures and lock.
func (r *Redis) Reset(ctx context.Context, key string) error {
	failKey, lockKey := r.keys(key)
	_ = r.fallback.Reset(ctx, key)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.rdb.Del(ctx, failKey, lockKey).Err(); err != nil && !errors.Is(err, redis.Nil) {
		r.down(err)
		return fmt.Errorf("throttle: reset: %w", err)
	}
	return nil
}

func (r *Redis) down(err error) {
	if r.degraded.CompareAndSwap(false, true) {
		r.logger.Warn("login throttle: redis unavailable; counting in memory on this replica", "error", err)
	}
}

func (r *Redis) up() {
	if r.degraded.CompareAndSwap(true, false) {
		r.logger.Info("login throttle: redis available again")
	}
}
