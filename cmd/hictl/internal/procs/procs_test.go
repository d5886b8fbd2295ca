package procs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// buffer is a goroutine-safe bytes.Buffer.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func sh(t *testing.T, name, script, logPath string) Spec {
	t.Helper()
	return Spec{Name: name, Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: t.TempDir(), LogPath: logPath}
}

func TestOutputIsPrefixedAndLogged(t *testing.T) {
	var out buffer
	g := New(&out, 6)
	logPath := filepath.Join(t.TempDir(), "x.log")
	if err := g.Start(sh(t, "x", `echo one; echo two >&2; printf 'no newline'; exit 0`, logPath)); err != nil {
		t.Fatal(err)
	}
	err := g.Wait(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Name != "x" || ee.Err != nil {
		t.Fatalf("Wait = %v, want an unexpected clean exit of x", err)
	}
	for _, want := range []string{"x      | one\n", "x      | two\n", "x      | no newline\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, "one\n") || !strings.Contains(got, "two\n") || strings.Contains(got, "|") {
		t.Errorf("log file = %q, want the unprefixed lines", got)
	}
	if !slices.Equal(ee.Tail, []string{"one", "two", "no newline"}) {
		t.Errorf("tail = %q", ee.Tail)
	}
}

func TestUnexpectedExitReportsStatusAndLastLines(t *testing.T) {
	var out buffer
	g := New(&out, 8)
	if err := g.Start(sh(t, "steady", `trap 'exit 0' TERM; while :; do sleep 0.05; done`, "")); err != nil {
		t.Fatal(err)
	}
	script := `i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); done; echo boom >&2; exit 3`
	if err := g.Start(sh(t, "crasher", script, "")); err != nil {
		t.Fatal(err)
	}
	err := g.Wait(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Wait = %v, want *ExitError", err)
	}
	var xe *exec.ExitError
	if ee.Name != "crasher" || !errors.As(err, &xe) || xe.ExitCode() != 3 {
		t.Fatalf("ExitError = %v, want crasher with status 3", ee)
	}
	if len(ee.Tail) != tailLines || ee.Tail[len(ee.Tail)-1] != "boom" {
		t.Errorf("tail has %d lines ending %q, want %d ending boom", len(ee.Tail), ee.Tail[len(ee.Tail)-1], tailLines)
	}
	if killed := g.Stop(5 * time.Second); len(killed) != 0 {
		t.Errorf("killed %v, want a clean stop", killed)
	}
	if r := g.Running(); len(r) != 0 {
		t.Errorf("still running: %v", r)
	}
}

func TestStopTerminatesThenKills(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		wantKilled bool
	}{
		{name: "honours SIGTERM", script: `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`},
		{name: "ignores SIGTERM", script: `trap '' TERM; echo ready; while :; do sleep 0.05; done`, wantKilled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out buffer
			g := New(&out, 4)
			if err := g.Start(sh(t, "p", tt.script, "")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
			start := time.Now()
			killed := g.Stop(300 * time.Millisecond)
			if got := len(killed) > 0; got != tt.wantKilled {
				t.Errorf("killed = %v, want killed %v", killed, tt.wantKilled)
			}
			if !tt.wantKilled && time.Since(start) > 250*time.Millisecond {
				t.Errorf("stop took %s for a process that honours SIGTERM", time.Since(start))
			}
			if len(g.Running()) != 0 {
				t.Error("process still running after Stop")
			}
			// Exits caused by Stop are not reported as unexpected.
			select {
			case e := <-g.Exited():
				t.Errorf("Stop reported %v as unexpected", e)
			default:
			}
			if err := g.Start(sh(t, "late", "true", "")); err == nil {
				t.Error("Start after Stop succeeded")
			}
		})
	}
}

func TestWaitReturnsNilWhenContextEnds(t *testing.T) {
	g := New(&buffer{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Wait(ctx); err != nil {
		t.Errorf("Wait = %v, want nil", err)
	}
}

func TestPrefixWriter(t *testing.T) {
	var out buffer
	w := PrefixWriter(&out, "build", 6)
	_, _ = w.Write([]byte("a\nb"))
	_, _ = w.Write([]byte("c\n\nd"))
	w.Flush()
	if got, want := out.String(), "build  | a\nbuild  | bc\nbuild  | \nbuild  | d\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
