// Package procs supervises a group of child processes for the local mesh:
// each runs in its own process group, its output is copied line by line to a
// shared writer with the process name in front and appended to its own log
// file, and the group stops as a whole (SIGTERM, a bounded wait, then SIGKILL).
package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tailLines is how many of a process's last output lines are kept for error reports.
const tailLines = 30

// Spec describes a process to start.
type Spec struct {
	// Name prefixes every output line and names the process in errors.
	Name string
	// Path is the executable; Args are its arguments (without argv[0]).
	Path string
	Args []string
	// Env is the complete environment of the process.
	Env []string
	// Dir is its working directory.
	Dir string
	// LogPath, when set, is appended with every output line.
	LogPath string
}

// ExitError reports a process that ended while the group was not stopping.
type ExitError struct {
	Name string
	// Err is what exec reported (an *exec.ExitError, or nil for exit status 0).
	Err error
	// Tail holds the process's last output lines.
	Tail []string
}

func (e *ExitError) Error() string {
	how := "exit status 0"
	if e.Err != nil {
		how = e.Err.Error()
	}
	return fmt.Sprintf("%s exited unexpectedly (%s)", e.Name, how)
}

func (e *ExitError) Unwrap() error { return e.Err }

// Group is a set of supervised processes. The zero value is not usable; use New.
type Group struct {
	out   io.Writer
	width int

	mu       sync.Mutex
	procs    []*proc
	stopping bool

	exited chan *ExitError
}

type proc struct {
	spec Spec
	cmd  *exec.Cmd
	lw   *lineWriter
	done chan struct{} // closed when the process has been waited for
}

// New returns an empty group writing prefixed output to out. width pads the
// name column so the output lines up.
func New(out io.Writer, width int) *Group {
	return &Group{out: NewSyncWriter(out), width: width, exited: make(chan *ExitError, 64)}
}

// Start starts a process in its own process group.
func (g *Group) Start(spec Spec) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopping {
		return fmt.Errorf("start %s: group is stopping", spec.Name)
	}
	var logFile *os.File
	if spec.LogPath != "" {
		f, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("start %s: open log: %w", spec.Name, err)
		}
		logFile = f
	}
	lw := &lineWriter{prefix: Prefix(spec.Name, g.width), out: g.out, file: logFile}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	cmd.Stdout, cmd.Stderr = lw, lw
	// Own process group: a terminal's Ctrl-C reaches only us, and we stop the
	// children in order. Pdeathsig stops them if we are killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// A grandchild holding the output pipe must not keep Wait from returning.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		lw.closeFile()
		return fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &proc{spec: spec, cmd: cmd, lw: lw, done: make(chan struct{})}
	g.procs = append(g.procs, p)
	go g.wait(p)
	return nil
}

func (g *Group) wait(p *proc) {
	err := p.cmd.Wait()
	p.lw.flush()
	p.lw.closeFile()
	close(p.done)
	g.mu.Lock()
	stopping := g.stopping
	g.mu.Unlock()
	if !stopping {
		select {
		case g.exited <- &ExitError{Name: p.spec.Name, Err: err, Tail: p.lw.tail()}:
		default:
		}
	}
}

// Wait blocks until ctx is done (it returns nil) or a process exits on its
// own (it returns that process's *ExitError). It does not stop anything.
func (g *Group) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case e := <-g.exited:
		return e
	}
}

// Exited returns a channel that receives each process that exits on its own.
func (g *Group) Exited() <-chan *ExitError { return g.exited }

// Stop sends SIGTERM to every running process group, waits up to timeout for
// them to exit, then sends SIGKILL to the rest and waits for them. It returns
// the names of processes that had to be killed.
func (g *Group) Stop(timeout time.Duration) []string {
	g.mu.Lock()
	g.stopping = true
	procs := append([]*proc(nil), g.procs...)
	g.mu.Unlock()

	for _, p := range procs {
		signalGroup(p, syscall.SIGTERM)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var killed []string
	for _, p := range procs {
		select {
		case <-p.done:
			continue
		case <-deadline.C:
		}
		// Deadline passed: kill this one and every other still running.
		for _, q := range procs {
			select {
			case <-q.done:
			default:
				signalGroup(q, syscall.SIGKILL)
				killed = append(killed, q.spec.Name)
			}
		}
		break
	}
	for _, p := range procs {
		<-p.done
	}
	return killed
}

// Running returns the names of the processes still running.
func (g *Group) Running() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, p := range g.procs {
		select {
		case <-p.done:
		default:
			out = append(out, p.spec.Name)
		}
	}
	return out
}

func signalGroup(p *proc, sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	// The child is the leader of its own group, so -pid reaches it and anything it spawned.
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Prefix is the column put in front of every line of the named process.
func Prefix(name string, width int) string { return fmt.Sprintf("%-*s | ", width, name) }

// SyncWriter serialises whole writes to an underlying writer, so lines
// written by several goroutines never interleave.
type SyncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewSyncWriter wraps w; a *SyncWriter is returned as is.
func NewSyncWriter(w io.Writer) *SyncWriter {
	if s, ok := w.(*SyncWriter); ok {
		return s
	}
	return &SyncWriter{w: w}
}

// Write writes p to the underlying writer under the lock.
func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// PrefixWriter returns a writer that copies each line written to it to out
// with the prefix of name, for output that is not a supervised process (go
// build). Call Flush at the end for a last line without a newline.
func PrefixWriter(out io.Writer, name string, width int) *LineWriter {
	return &LineWriter{lw: &lineWriter{prefix: Prefix(name, width), out: out}}
}

// LineWriter is the writer PrefixWriter returns.
type LineWriter struct {
	mu sync.Mutex
	lw *lineWriter
}

// Write implements io.Writer; it is safe for concurrent use.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lw.Write(p)
}

// Flush writes a pending partial line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lw.flush()
}

// lineWriter splits a process's output into lines, writes each with a prefix
// to out and unprefixed to file, and keeps the last lines. exec guarantees
// that Write is never called concurrently when Stdout == Stderr.
type lineWriter struct {
	prefix string
	out    io.Writer
	file   *os.File

	partial []byte

	mu   sync.Mutex // guards last and file
	last []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			// Keep a runaway line from growing without bound.
			if len(w.partial) > 64<<10 {
				w.emit(w.partial)
				w.partial = w.partial[:0]
			}
			break
		}
		line := p[:i]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		w.emit(line)
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.emit(w.partial)
		w.partial = nil
	}
}

func (w *lineWriter) emit(line []byte) {
	s := strings.TrimRight(string(line), "\r")
	_, _ = io.WriteString(w.out, w.prefix+s+"\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file != nil {
		_, _ = w.file.WriteString(s + "\n")
	}
	w.last = append(w.last, s)
	if len(w.last) > tailLines {
		w.last = w.last[len(w.last)-tailLines:]
	}
}

func (w *lineWriter) tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.last...)
}

func (w *lineWriter) closeFile() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file != nil {
		_ = w.file.Close()
		w.file = nil
	}
}
