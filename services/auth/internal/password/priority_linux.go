package password

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lowerPriority puts every thread of this process in the SCHED_IDLE scheduling class at nice
// value nice. SCHED_IDLE runs a thread only on CPU time no other thread wants, and the
// scheduler treats a CPU running only such threads as idle when it places a waking thread, so
// a request never waits behind a hash. Where SCHED_IDLE is refused, nice alone still leaves a
// hash a ~1.5 % share against normal threads.
//
// On Linux both belong to each thread, and a new thread inherits its creator's: once every
// existing thread is lowered, so is every later one. A thread created while the first pass
// runs is caught by the second.
func lowerPriority(nice int) error {
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
