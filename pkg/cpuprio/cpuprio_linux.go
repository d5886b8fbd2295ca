package cpuprio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LowerToIdle puts every thread of this process in the SCHED_IDLE scheduling class at nice
// value nice. SCHED_IDLE runs a thread only on CPU time no other thread wants, and the scheduler
// treats a CPU running only such threads as idle when it places a waking thread, so other
// processes' threads never wait behind these. Where SCHED_IDLE is refused, nice alone still
// leaves these threads a ~1.5 % share against normal ones (at nice 19).
//
// On Linux both belong to each thread, and a new thread inherits its creator's: once every
// existing thread is lowered, so is every later one. A thread created while the first pass runs
// is caught by the second.
func LowerToIdle(nice int) error {
	idle := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE, Nice: int32(nice)}
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			_ = unix.SchedSetAttr(tid, idle, 0) // best effort: nice below is the floor
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
		}
	}
	return nil
}

// PolicyIdle is the scheduling class SCHED_IDLE, as Thread.Policy reports it.
const PolicyIdle = unix.SCHED_IDLE

// Thread is the scheduling state of one thread.
type Thread struct {
	TID    int
	Nice   int
	Policy int // scheduling class: 0 SCHED_OTHER, PolicyIdle, …
}

// Threads returns the scheduling state of every thread of process pid, from /proc.
func Threads(pid int) ([]Thread, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list threads of %d: %w", pid, err)
	}
	out := make([]Thread, 0, len(tasks))
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return nil, fmt.Errorf("thread %d of %d: %w", tid, pid, err)
		}
		// Fields after the parenthesised name: nice is field 19 of stat (the 17th after ")"),
		// policy field 41 (the 39th).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 39 {
			return nil, fmt.Errorf("thread %d of %d: short stat line", tid, pid)
		}
		th := Thread{TID: tid}
		if th.Nice, err = strconv.Atoi(f[16]); err != nil {
			return nil, fmt.Errorf("thread %d of %d: nice: %w", tid, pid, err)
		}
		if th.Policy, err = strconv.Atoi(f[38]); err != nil {
			return nil, fmt.Errorf("thread %d of %d: policy: %w", tid, pid, err)
		}
		out = append(out, th)
	}
	return out, nil
}
