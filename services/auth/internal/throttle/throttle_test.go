package throttle

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestLockFor(t *testing.T) {
	p := DefaultPolicy
	tests := []struct {
		failures int64
		want     time.Duration
	}{
		{0, 0}, {4, 0}, {5, time.Second}, {6, 2 * time.Second}, {7, 4 * time.Second},
		{14, 512 * time.Second}, {15, 15 * time.Minute}, {40, 15 * time.Minute}, {1 << 40, 15 * time.Minute},
	}
	for _, tc := range tests {
		if got := p.LockFor(tc.failures); got != tc.want {
			t.Errorf("LockFor(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// throttle is the interface both implementations satisfy.
type throttle interface {
	Check(ctx context.Context, key string) (time.Duration, error)
	Fail(ctx context.Context, key string) (time.Duration, error)
	Reset(ctx context.Context, key string) error
}

// exerciseBackoff checks the shared behaviour: no lock below the threshold, then doubling locks,
// other keys unaffected, Reset forgets.
func exerciseBackoff(t *testing.T, th throttle) {
	t.Helper()
	ctx := t.Context()
	for i := 1; i <= 4; i++ {
		if lock, err := th.Fail(ctx, "account:a@example.com"); err != nil || lock != 0 {
			t.Fatalf("failure %d: lock %v, %v; want none", i, lock, err)
		}
	}
	if d, _ := th.Check(ctx, "account:a@example.com"); d != 0 {
		t.Fatalf("locked after 4 failures: %v", d)
	}
	if lock, _ := th.Fail(ctx, "account:a@example.com"); lock != time.Second {
		t.Fatalf("5th failure: lock %v, want 1s", lock)
	}
	if d, _ := th.Check(ctx, "account:a@example.com"); d <= 0 || d > time.Second {
		t.Fatalf("Check after the 5th failure = %v, want (0, 1s]", d)
	}
	if lock, _ := th.Fail(ctx, "account:a@example.com"); lock != 2*time.Second {
		t.Fatalf("6th failure: lock %v, want 2s", lock)
	}
	if d, _ := th.Check(ctx, "account:b@example.com"); d != 0 {
		t.Fatalf("another key is locked: %v", d)
	}
	if err := th.Reset(ctx, "account:a@example.com"); err != nil {
		t.Fatal(err)
	}
	if d, _ := th.Check(ctx, "account:a@example.com"); d != 0 {
		t.Fatalf("locked after Reset: %v", d)
	}
}

func TestMemory(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	m := NewMemory(DefaultPolicy)
	m.now = clock.Now
	exerciseBackoff(t, m)

	t.Run("lock ends", func(t *testing.T) {
		ctx := t.Context()
		for range 5 {
			_, _ = m.Fail(ctx, "k")
		}
		clock.Advance(999 * time.Millisecond)
		if d, _ := m.Check(ctx, "k"); d != time.Millisecond {
			t.Fatalf("remaining lock %v, want 1ms", d)
		}
		clock.Advance(time.Millisecond)
		if d, _ := m.Check(ctx, "k"); d != 0 {
			t.Fatalf("still locked after the lock: %v", d)
		}
	})
	t.Run("a quiet window forgets", func(t *testing.T) {
		ctx := t.Context()
		for range 4 {
			_, _ = m.Fail(ctx, "w")
		}
		clock.Advance(DefaultPolicy.Window)
		if lock, _ := m.Fail(ctx, "w"); lock != 0 {
			t.Fatalf("failure after a quiet window locked for %v", lock)
		}
	})
	t.Run("failures keep the window open", func(t *testing.T) {
		ctx := t.Context()
		for range 4 {
			_, _ = m.Fail(ctx, "s")
			clock.Advance(DefaultPolicy.Window - time.Minute)
		}
		if lock, _ := m.Fail(ctx, "s"); lock != time.Second {
			t.Fatalf("5th failure spread over an hour: lock %v, want 1s", lock)
		}
	})
}

func TestMemoryBounded(t *testing.T) {
	m := NewMemory(DefaultPolicy)
	ctx := t.Context()
	for i := range maxEntries + 10 {
		_, _ = m.Fail(ctx, "ip:"+strconv.Itoa(i))
	}
	m.mu.Lock()
	n := len(m.entries)
	m.mu.Unlock()
	if n > maxEntries {
		t.Fatalf("%d entries, want at most %d", n, maxEntries)
	}
}
