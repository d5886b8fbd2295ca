package service_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/pkg/service/servicetest"
)

// writeLog records each write its destination receives.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *writeLog) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}

// TestLogsFlushedAtExit: whether LOG_BUFFERED batches the lines or not, every line logged up to the
// final "stopped" has been written when Run returns, each write holding whole lines.
func TestLogsFlushedAtExit(t *testing.T) {
	for _, buffered := range []string{"true", "false"} {
		t.Run("LOG_BUFFERED="+buffered, func(t *testing.T) {
			env, _ := servicetest.Environment(t, spec())
			env["LOG_LEVEL"] = "info"
			env["LOG_BUFFERED"] = buffered

			logs := &writeLog{}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan int, 1)
			go func() {
				done <- service.Run(ctx, spec(), func(context.Context, *service.Runtime) error { return nil }, service.Options{
					Environ: env,
					Logs:    logs,
					Ready:   func(*service.Runtime) { cancel() },
				})
			}()
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("exit code %d; logs:\n%s", code, strings.Join(logs.get(), ""))
				}
			case <-time.After(30 * time.Second):
				t.Fatal("service did not stop within 30s")
			}

			writes := logs.get()
			all := strings.Join(writes, "")
			lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, "msg=stopped") {
				t.Fatalf("last line %q, want the stopped line; logs:\n%s", last, all)
			}
			if !strings.Contains(lines[0], "msg=starting") {
				t.Errorf("first line %q, want the starting line", lines[0])
			}
			for _, w := range writes {
				if !strings.HasSuffix(w, "\n") {
					t.Errorf("write ends inside a line: %q", w)
				}
			}
			// Buffered, how lines group into writes depends on the 100 ms timer; unbuffered, each
			// line is its own write.
			if buffered == "false" && len(writes) != len(lines) {
				t.Errorf("unbuffered: %d writes for %d lines", len(writes), len(lines))
			}
		})
	}
}
