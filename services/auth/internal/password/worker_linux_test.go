package password

import (
	"os"
	"testing"

	"github.com/hashinsight/platform/pkg/cpuprio"
)

// TestWorkerPriority: every thread of a worker runs in the SCHED_IDLE class at WorkerNice.
func TestWorkerPriority(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc: thread priorities cannot be read here")
	}
	p := startPool(t, 1)
	// A derivation first, so the runtime has started the threads it uses for work.
	if _, err := p.DeriveKey(t.Context(), []byte("pw"), []byte("0123456789abcdef"), OWASP); err != nil {
		t.Fatal(err)
	}
	pid := idleWorkers(p)[0]
	threads, err := cpuprio.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		if th.Nice != WorkerNice || th.Policy != cpuprio.PolicyIdle {
			t.Errorf("worker %d thread %d runs in class %d at nice %d, want %d (SCHED_IDLE) at %d",
				pid, th.TID, th.Policy, th.Nice, cpuprio.PolicyIdle, WorkerNice)
		}
	}
}
