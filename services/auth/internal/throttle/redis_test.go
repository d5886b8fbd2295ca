package throttle

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis runs a throwaway redis-server on a free loopback port until the test ends; it skips
// the test when the binary is missing.
func startRedis(t *testing.T) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not available: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for ping(addr) != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer PING in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr, stop
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected %q", line)
	}
	return nil
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
