package cache

import (
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/testkit/redistest"
)

// testRedis is a throwaway redis-server owned by one test; stop and start crash and restart it on
// the same port.
type testRedis struct{ *redistest.Server }

func startRedis(t testing.TB) *testRedis { return &testRedis{redistest.Start(t)} }

func (r *testRedis) url() string { return r.URL() }
func (r *testRedis) start()      { r.Restart() }
func (r *testRedis) stop()       { r.Stop() }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
