//go:build unix && !linux

package password

import "golang.org/x/sys/unix"

// lowerPriority sets the nice value of this process (on these systems, of all its threads).
func lowerPriority(nice int) error { return unix.Setpriority(unix.PRIO_PROCESS, 0, nice) }
