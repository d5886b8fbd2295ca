package cpuprio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// LowerToIdle puts every thread of this process in the SCHED_IDLE scheduling class at nice
// value nice (0 to 19). A SCHED_IDLE thread weighs about 0.3 % of a normal one, and the
// scheduler treats a CPU running only such threads as idle when it places a waking thread, so
// other processes' threads rarely wait behind these (within one cgroup: across cgroups, each
// group's own weight decides). Where SCHED_IDLE is refused, nice alone still leaves these
// threads a ~1.5 % share against normal ones (at nice 19).
//
// On Linux both belong to each thread, and a new thread inherits its creator's: once every
// existing thread is lowered, so is every later one. Threads created while this runs are caught
// by passing over the thread list again until a pass finds none it has not lowered.
func LowerToIdle(nice int) error {
	if nice < 0 || nice > 19 {
		return fmt.Errorf("cpuprio: nice %d: must be 0 to 19 (lowering only)", nice)
	}
	idle := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE, Nice: int32(nice)}
	lowered := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		found := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || lowered[tid] {
				continue
			}
			found = true
			_ = unix.SchedSetAttr(tid, idle, 0) // best effort: nice below is the floor
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			lowered[tid] = true
		}
		if !found {
			return nil
		}
	}
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
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread has exited
		}
		if err != nil {
			return nil, fmt.Errorf("thread %d of %d: %w", tid, pid, err)
		}
		th, err := parseStat(b)
		if err != nil {
			return nil, fmt.Errorf("thread %d of %d: %w", tid, pid, err)
		}
		th.TID = tid
		out = append(out, th)
	}
	return out, nil
}

// parseStat reads the nice value and scheduling class from a /proc/<pid>/task/<tid>/stat line
// (proc(5)). The thread's name, field 2, is in parentheses and may itself contain spaces and
// parentheses, so the fields are counted from the last ")".
func parseStat(line []byte) (Thread, error) {
	end := bytes.LastIndexByte(line, ')')
	if end < 0 {
		return Thread{}, errors.New("stat line without a parenthesised name")
	}
	// After ")": state is field 3, so field n is f[n-3]: nice (19) f[16], policy (41) f[38].
	f := strings.Fields(string(line[end+1:]))
	if len(f) < 39 {
		return Thread{}, fmt.Errorf("stat line has %d fields after the name, want at least 39", len(f))
	}
	var th Thread
	var err error
	if th.Nice, err = strconv.Atoi(f[16]); err != nil {
		return Thread{}, fmt.Errorf("stat nice: %w", err)
	}
	if th.Policy, err = strconv.Atoi(f[38]); err != nil {
		return Thread{}, fmt.Errorf("stat policy: %w", err)
	}
	return th, nil
}
