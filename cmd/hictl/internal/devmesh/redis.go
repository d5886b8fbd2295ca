package devmesh

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisProbeTimeout bounds the PING that decides between Redis and the in-memory cache.
const RedisProbeTimeout = 500 * time.Millisecond

// ChooseRedis returns the REDIS_URL the services should use: REDIS_URL (or
// DefaultRedisURL when unset) if it answers PING within RedisProbeTimeout,
// else MemoryRedisURL with the reason. "memory" or an explicitly empty
// REDIS_URL selects the in-memory cache without probing.
func ChooseRedis(ctx context.Context, lookupEnv func(string) (string, bool)) (url string, reason error) {
	v, set := lookupEnv("REDIS_URL")
	switch {
	case !set:
		v = DefaultRedisURL
	case v == "" || v == MemoryRedisURL:
		return MemoryRedisURL, fmt.Errorf("REDIS_URL=%q asks for the in-memory cache", v)
	}
	if err := PingRedis(ctx, v, RedisProbeTimeout); err != nil {
		return MemoryRedisURL, err
	}
	return v, nil
}

// PingRedis connects to the Redis at url and sends one PING within timeout.
func PingRedis(ctx context.Context, url string, timeout time.Duration) error {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("REDIS_URL is not a redis URL: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
	opts.MaxRetries = -1 // one attempt: this is a probe
	opts.PoolSize = 1
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("no Redis answered PING at %s within %s: %w", redactURL(url), timeout, err)
	}
	return nil
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	if r := RedactDSN(s); r != "(unprintable DSN)" {
		return r
	}
	return "REDIS_URL"
}
