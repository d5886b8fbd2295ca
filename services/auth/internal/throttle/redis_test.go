package throttle

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashinsight/platform/pkg/testkit/redistest"
)

// startRedis runs a throwaway redis-server until the test ends.
func startRedis(t *testing.T) (addr string, stop func()) {
	s := redistest.Start(t)
	return s.Addr(), s.Stop
}

func TestRedis(t *testing.T) {
	addr, stop := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	r := NewRedis(rdb, "test:throttle:", DefaultPolicy, nil)
	exerciseBackoff(t, r)

	t.Run("replicas share counts", func(t *testing.T) {
		other := NewRedis(rdb, "test:throttle:", DefaultPolicy, nil)
		ctx := t.Context()
		for range 3 {
			_, _ = r.Fail(ctx, "shared")
		}
		_, _ = other.Fail(ctx, "shared")
		if lock, _ := other.Fail(ctx, "shared"); lock != time.Second {
			t.Fatalf("5th failure across two replicas: lock %v, want 1s", lock)
		}
		if d, _ := r.Check(ctx, "shared"); d <= 0 {
			t.Fatal("the other replica does not see the lock")
		}
	})
	t.Run("keys hold no plaintext", func(t *testing.T) {
		keys, err := rdb.Keys(t.Context(), "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.Contains(k, "@") || strings.Contains(k, "shared") {
				t.Errorf("redis key %q carries the throttled key in clear", k)
			}
		}
	})
	t.Run("falls back to memory when redis is down", func(t *testing.T) {
		stop()
		ctx := t.Context()
		var lock time.Duration
		for range 5 {
			var err error
			if lock, err = r.Fail(ctx, "down"); err != nil {
				t.Fatalf("Fail with redis down: %v", err)
			}
		}
		if lock != time.Second {
			t.Fatalf("5th failure with redis down: lock %v, want 1s", lock)
		}
		if d, err := r.Check(ctx, "down"); err != nil || d <= 0 {
			t.Fatalf("Check with redis down = %v, %v; want locked", d, err)
		}
	})
}
