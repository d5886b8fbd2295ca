package devmesh

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is held (flock) by a running `dev up` and records its pid.
const lockFile = "dev-up.lock"

// ErrLocked reports another `hictl dev up` using the same data directory.
var ErrLocked = errors.New("another hictl dev up is using this data directory")

// Lock takes the data directory's lock for the life of a `dev up`. The lock
// is released by the returned function, or by the kernel when the process
// dies, so a crash never leaves a stale lock behind.
func Lock(l Layout) (unlock func(), err error) {
	p := filepath.Join(l.Root, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid, ok := LockHolder(l); ok {
				return nil, fmt.Errorf("%w (pid %d); stop it with Ctrl-C or `hictl dev down`", ErrLocked, pid)
			}
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// LockHolder returns the pid of the `dev up` holding the lock, if one does.
func LockHolder(l Layout) (int, bool) {
	p := filepath.Join(l.Root, lockFile)
	f, err := os.Open(p)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	// If we can take the lock, nobody holds it.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}
