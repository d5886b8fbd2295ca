package ratelimit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// countingHook counts the commands a client sends.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestLeaseSize(t *testing.T) {
	for _, tc := range []struct{ perMinute, want int }{
		{1, 0}, {100, 0}, {5999, 0}, {6000, 1}, {60_000, 10}, {600_000, 100}, {10_000_000, 100},
	} {
		if got := leaseSize(tc.perMinute); got != tc.want {
			t.Errorf("leaseSize(%d) = %d, want %d", tc.perMinute, got, tc.want)
		}
	}
}

// TestRedisLeases: under a high limit one Redis call spends a lease of requests from the shared
// bucket, which this replica then spends locally until it runs out or expires; another replica
// leases its own from the same bucket.
func TestRedisLeases(t *testing.T) {
	addr, _ := startRedis(t)
	var clock atomic.Int64
	clock.Store(time.Date(2025, 10, 3, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	const perMinute = 600_000 // lease of 100
	var hooks [2]*countingHook
	var replicas [2]*Redis
	for i := range replicas {
		client := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = client.Close() })
		hooks[i] = &countingHook{}
		client.AddHook(hooks[i])
		r, err := NewRedis(RedisOptions{Client: client, PerMinute: perMinute, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = r
	}
	ctx := context.Background()
	allow := func(i int) Decision {
		t.Helper()
		d, err := replicas[i].Allow(ctx, "key:k", 1)
		if err != nil || !d.Allowed || d.Limit != perMinute {
			t.Fatalf("replica %d: %+v %v", i, d, err)
		}
		return d
	}
	calls := func(i int) int64 { return hooks[i].n.Load() }

	allow(0)
	base := calls(0)
	if base == 0 {
		t.Fatal("the first request made no Redis call")
	}
	for range 99 {
		allow(0)
	}
	if calls(0) != base {
		t.Fatalf("%d Redis calls for the 99 leased requests, want none", calls(0)-base)
	}
	if allow(0); calls(0) == base {
		t.Fatal("the 101st request made no Redis call, want a new lease")
	}
	// The other replica takes its own lease from the shared bucket. (Remaining counts are not
	// compared: at this limit Redis refills 10 requests per millisecond.)
	if allow(1); calls(1) == 0 {
		t.Error("replica 1 spent from replica 0's lease")
	}
	// A lease expires: the next request takes a new one though the old one had requests left.
	base = calls(0)
	clock.Add(int64(leaseTTL))
	allow(0)
	if calls(0) == base {
		t.Error("no Redis call after the lease expired")
	}
	// Spending more than one request, or checking (cost 0), always asks Redis.
	base = calls(1)
	if _, err := replicas[1].Allow(ctx, "key:k", 0); err != nil || calls(1) == base {
		t.Errorf("cost 0: err %v, %d calls", err, calls(1)-base)
	}
}

func TestLeasesBounded(t *testing.T) {
	l := newLeases(time.Now)
	for i := range leaseMaxKeys + 10 {
		l.grant(string(rune('a'+i%26))+time.Duration(i).String(), 5, 100)
	}
	if n := len(l.m); n > leaseMaxKeys {
		t.Errorf("%d leases held, want at most %d", n, leaseMaxKeys)
	}
	l.grant("one", 1, 100) // a lease of one is spent at once: nothing to hold
	if _, ok := l.take("one"); ok {
		t.Error("a lease of one request left something to take")
	}
}
