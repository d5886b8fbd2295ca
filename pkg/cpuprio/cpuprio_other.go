//go:build unix && !linux

package cpuprio

import "golang.org/x/sys/unix"

// LowerToIdle sets the nice value of this process (on these systems, of all its threads); there
// is no SCHED_IDLE class here.
func LowerToIdle(nice int) error { return unix.Setpriority(unix.PRIO_PROCESS, 0, nice) }
