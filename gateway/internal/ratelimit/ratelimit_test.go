package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashinsight/platform/pkg/testkit/redistest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// contract runs the behaviour every Limiter must have with a limit of 3 per minute. fresh
// returns a limiter on clean state; keys are unique per call so Redis runs do not collide.
func contract(t *testing.T, fresh func(t *testing.T) Limiter) {
	ctx := context.Background()
	t.Run("below the limit, then over it, other keys unaffected", func(t *testing.T) {
		l := fresh(t)
		key, other := uniqueKey(t, "a"), uniqueKey(t, "b")
		for i := range 3 {
			d, err := l.Allow(ctx, key, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed || d.Limit != 3 || d.Remaining != 2-i {
				t.Fatalf("request %d = %+v, want allowed with %d remaining", i+1, d, 2-i)
			}
		}
		d, err := l.Allow(ctx, key, 1)
		if err != nil {
			t.Fatal(err)
		}
		// One request refills every 20 s.
		if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > 20*time.Second {
			t.Fatalf("4th request = %+v, want refused with RetryAfter in (0, 20s]", d)
		}
		if s := d.RetryAfterSeconds(); s < 1 || s > 20 {
			t.Errorf("RetryAfterSeconds = %d", s)
		}
		if d, _ := l.Allow(ctx, other, 1); !d.Allowed || d.Remaining != 2 {
			t.Errorf("another key = %+v, want its own full budget", d)
		}
	})
	t.Run("cost 0 inspects without spending", func(t *testing.T) {
		l := fresh(t)
		key := uniqueKey(t, "peek")
		for range 5 {
			if d, _ := l.Allow(ctx, key, 0); !d.Allowed || d.Remaining != 3 {
				t.Fatalf("peek = %+v, want allowed, 3 remaining", d)
			}
		}
		for range 3 {
			if d, _ := l.Allow(ctx, key, 1); !d.Allowed {
				t.Fatal("spend refused")
			}
		}
		d, err := l.Allow(ctx, key, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 20*time.Second {
			t.Errorf("peek of an empty bucket = %+v, want refused with RetryAfter in (0, 20s]", d)
		}
	})
}

var keySeq atomic.Int64

func uniqueKey(t *testing.T, s string) string {
	return t.Name() + ":" + s + ":" + strconv.FormatInt(keySeq.Add(1), 10)
}

func TestMemoryContract(t *testing.T) {
	contract(t, func(t *testing.T) Limiter {
		m, err := NewMemory(MemoryOptions{PerMinute: 3, Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}

func TestMemoryRefillAndRetryAfter(t *testing.T) {
	c := newClock()
	m, err := NewMemory(MemoryOptions{PerMinute: 60, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 60 {
		if d, _ := m.Allow(ctx, "k", 1); !d.Allowed {
			t.Fatal("refused within the budget")
		}
	}
	d, _ := m.Allow(ctx, "k", 1)
	if d.Allowed || d.RetryAfter != time.Second || d.RetryAfterSeconds() != 1 {
		t.Fatalf("over the limit = %+v, want RetryAfter 1s", d)
	}
	c.Advance(400 * time.Millisecond)
	d, _ = m.Allow(ctx, "k", 1)
	if d.Allowed || d.RetryAfter != 600*time.Millisecond || d.RetryAfterSeconds() != 1 {
		t.Fatalf("after 400ms = %+v, want RetryAfter 600ms (header 1)", d)
	}
	c.Advance(600 * time.Millisecond)
	if d, _ := m.Allow(ctx, "k", 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after the refill interval = %+v, want allowed", d)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	c := newClock()
	m, err := NewMemory(MemoryOptions{PerMinute: 1, MaxKeys: 100, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if d, _ := m.Allow(ctx, "hot", 1); !d.Allowed {
		t.Fatal("first request refused")
	}
	for i := range 1000 {
		_, _ = m.Allow(ctx, "cold-"+strconv.Itoa(i), 1)
		if i%10 == 0 {
			// "hot" stays recently used, so it is never the one evicted.
			if d, _ := m.Allow(ctx, "hot", 1); d.Allowed {
				t.Fatalf("hot key was evicted and refilled after %d cold keys", i)
			}
		}
	}
	if n := m.Len(); n != 100 {
		t.Errorf("Len = %d, want the bound 100", n)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m, err := NewMemory(MemoryOptions{PerMinute: 100, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if d, _ := m.Allow(context.Background(), "shared", 1); d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Errorf("allowed %d of 400 concurrent requests, want exactly the budget of 100", got)
	}
}

func TestBadLimit(t *testing.T) {
	if _, err := NewMemory(MemoryOptions{PerMinute: 0}); !errors.Is(err, ErrBadLimit) {
		t.Errorf("NewMemory(0) = %v", err)
	}
	if _, err := NewRedis(RedisOptions{Client: redis.NewClient(&redis.Options{}), PerMinute: -1}); !errors.Is(err, ErrBadLimit) {
		t.Errorf("NewRedis(-1) = %v", err)
	}
}

func TestRedisContract(t *testing.T) {
	addr, _ := startRedis(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	contract(t, func(t *testing.T) Limiter {
		r, err := NewRedis(RedisOptions{Client: client, PerMinute: 3})
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
}

// TestRedisSharedAcrossInstances: two limiters (two gateway replicas, each with its own client)
// draw on one budget per key.
func TestRedisSharedAcrossInstances(t *testing.T) {
	addr, _ := startRedis(t)
	var limiters [2]*Redis
	for i := range limiters {
		client := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = client.Close() })
		l, err := NewRedis(RedisOptions{Client: client, PerMinute: 4})
		if err != nil {
			t.Fatal(err)
		}
		limiters[i] = l
	}
	ctx := context.Background()
	for i := range 4 {
		if d, err := limiters[i%2].Allow(ctx, "key:dev:key:AbCdEfGhIjKl", 1); err != nil || !d.Allowed {
			t.Fatalf("request %d on replica %d = %+v %v", i+1, i%2, d, err)
		}
	}
	for i, l := range limiters {
		d, err := l.Allow(ctx, "key:dev:key:AbCdEfGhIjKl", 1)
		if err != nil || d.Allowed || d.RetryAfter <= 0 {
			t.Errorf("replica %d after the shared budget = %+v %v, want refused", i, d, err)
		}
	}
	if d, _ := limiters[1].Allow(ctx, "key:dev:key:ZZZZZZZZZZZZ", 1); !d.Allowed {
		t.Errorf("another key on replica 1 refused: %+v", d)
	}
}

// flaky is a Limiter that fails while down is set.
type flaky struct {
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flaky) Allow(_ context.Context, _ string, _ int) (Decision, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return Decision{}, errors.New("dial tcp 127.0.0.1:6379: connection refused")
	}
	return Decision{Allowed: true, Limit: 7, Remaining: 6}, nil
}

func TestFailover(t *testing.T) {
	c := newClock()
	primary := &flaky{}
	mem, err := NewMemory(MemoryOptions{PerMinute: 2, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var changes []bool
	f := NewFailover(FailoverOptions{
		Primary: primary, Fallback: mem, ProbeInterval: time.Second, Now: c.Now,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		OnChange: func(d bool) { changes = append(changes, d) },
	})
	ctx := context.Background()

	if d, err := f.Allow(ctx, "k", 1); err != nil || d.Limit != 7 {
		t.Fatalf("healthy primary: %+v %v", d, err)
	}

	primary.down.Store(true)
	// The fallback decides, with its own (never failing-open) budget of 2.
	var got []bool
	for range 3 {
		d, err := f.Allow(ctx, "k", 1)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Allowed)
	}
	if got[0] != true || got[1] != true || got[2] != false {
		t.Errorf("fallback decisions = %v, want [true true false]", got)
	}
	if n := primary.calls.Load(); n != 2 {
		t.Errorf("primary called %d times, want 2 (one success, one failure; then left alone for the probe interval)", n)
	}
	if !f.Degraded() {
		t.Error("not degraded")
	}

	// After the probe interval one call tries the primary again (still down).
	c.Advance(time.Second)
	_, _ = f.Allow(ctx, "k", 1)
	_, _ = f.Allow(ctx, "k", 1)
	if n := primary.calls.Load(); n != 3 {
		t.Errorf("primary called %d times, want 3 (one probe)", n)
	}

	primary.down.Store(false)
	c.Advance(time.Second)
	if d, _ := f.Allow(ctx, "k", 1); d.Limit != 7 || f.Degraded() {
		t.Errorf("recovered primary not used: %+v degraded=%v", d, f.Degraded())
	}

	if n := strings.Count(logs.String(), "redis failing"); n != 1 {
		t.Errorf("%d failure lines, want one per transition:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "redis answers again"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, logs.String())
	}
	if len(changes) != 2 || changes[0] != true || changes[1] != false {
		t.Errorf("OnChange calls = %v, want [true false]", changes)
	}
}

// TestFailoverRealRedis: a Redis that stops answering hands over to memory; limits keep holding.
func TestFailoverRealRedis(t *testing.T) {
	addr, stop := startRedis(t)
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	shared, err := NewRedis(RedisOptions{Client: client, PerMinute: 2})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := NewMemory(MemoryOptions{PerMinute: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := NewFailover(FailoverOptions{Primary: shared, Fallback: mem, ProbeInterval: time.Hour})
	ctx := context.Background()
	if d, err := f.Allow(ctx, "ip:192.0.2.1", 1); err != nil || !d.Allowed || f.Degraded() {
		t.Fatalf("with redis: %+v %v", d, err)
	}
	stop()
	var allowed int
	for range 4 {
		d, err := f.Allow(ctx, "ip:192.0.2.1", 1)
		if err != nil {
			t.Fatalf("failover returned an error: %v", err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if !f.Degraded() || allowed != 2 {
		t.Errorf("after redis stopped: degraded=%v allowed=%d of 4, want the in-memory budget of 2", f.Degraded(), allowed)
	}
}

// startRedis runs a throwaway redis-server; stop kills it.
func startRedis(t *testing.T) (addr string, stop func()) {
	s := redistest.Start(t)
	return s.Addr(), s.Stop
}
