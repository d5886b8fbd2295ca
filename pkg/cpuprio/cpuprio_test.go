//go:build linux

package cpuprio_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashinsight/platform/pkg/cpuprio"
)

// childEnv makes this test binary the process that lowers itself (TestMain).
const childEnv = "CPUPRIO_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child prints its thread ids, lowers itself, starts more threads, prints its thread ids again
// and waits for stdin to close.
func child() int {
	before, err := cpuprio.Threads(os.Getpid())
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	if err := cpuprio.LowerToIdle(19); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	// Threads started after the call inherit the class: goroutines locked to their threads and
	// blocked make the runtime start new ones for everything else.
	var started sync.WaitGroup
	for range 4 {
		started.Add(1)
		go func() {
			runtime.LockOSThread()
			started.Done()
			select {}
		}()
	}
	started.Wait()
	for _, th := range before {
		fmt.Printf("%d ", th.TID)
	}
	fmt.Println()
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// TestLowerToIdle: after LowerToIdle every thread of the process, those started later included,
// runs in SCHED_IDLE at the nice value given; the calling test process is untouched.
func TestLowerToIdle(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	before := map[int]bool{}
	for _, f := range strings.Fields(line) {
		tid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("child said %q", line)
		}
		before[tid] = true
	}
	threads, err := cpuprio.Threads(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	later := 0
	for _, th := range threads {
		if !before[th.TID] {
			later++
		}
	}
	if len(before) == 0 || later == 0 {
		t.Fatalf("%d threads before the call, %d after it: want some of each", len(before), later)
	}
	for _, th := range threads {
		if th.Policy != cpuprio.PolicyIdle || th.Nice != 19 {
			t.Errorf("thread %d: class %d nice %d, want %d (SCHED_IDLE) at 19", th.TID, th.Policy, th.Nice, cpuprio.PolicyIdle)
		}
	}
	self, err := cpuprio.Threads(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range self {
		if th.Policy == cpuprio.PolicyIdle {
			t.Errorf("test process thread %d was lowered too", th.TID)
		}
	}
	if _, err := cpuprio.Threads(-1); err == nil {
		t.Error("Threads(-1) succeeded")
	}
}
