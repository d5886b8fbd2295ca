package log

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a destination that keeps every Write as one element, so tests can see how lines
// were grouped into writes. fail makes the next that many writes fail.
type recorder struct {
	mu     sync.Mutex
	writes []string
	fail   int
}

var errWrite = errors.New("write failed")

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return 0, errWrite
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

// fakeClock stands in for time.AfterFunc: scheduled functions run only when the test calls fire.
type fakeClock struct {
	mu      sync.Mutex
	delays  []time.Duration // every delay ever scheduled
	pending []func()
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delays = append(c.delays, d)
	c.pending = append(c.pending, f)
}

// fire runs the scheduled functions, as if the interval had passed.
func (c *fakeClock) fire() {
	c.mu.Lock()
	fs := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func newTestBuffer(w *recorder, size int) (*Buffer, *fakeClock) {
	clock := &fakeClock{}
	b := NewBuffer(w, size, 0)
	b.afterFunc = clock.afterFunc
	return b, clock
}

// op is one step of a TestBuffer case: write a string, fire the clock, Flush or Close; then the
// destination must have seen exactly writes, and the step must have returned err.
type op struct {
	write              string
	tick, flush, close bool
	writes             []string
	err                error
}

func TestBuffer(t *testing.T) {
	tests := []struct {
		name string
		size int
		fail int // failing writes at the start
		ops  []op
	}{
		{
			name: "lines wait for the timer, then go in one write",
			size: 64,
			ops: []op{
				{write: "a\n"},
				{write: "b\n"},
				{tick: true, writes: []string{"a\nb\n"}},
				{write: "c\n", writes: []string{"a\nb\n"}},
				{tick: true, writes: []string{"a\nb\n", "c\n"}},
			},
		},
		{
			name: "a line that would overflow writes what is buffered first",
			size: 10,
			ops: []op{
				{write: "aaaa\n"},
				{write: "bbbb\n"}, // exactly full still buffers
				{write: "cc\n", writes: []string{"aaaa\nbbbb\n"}},
				{close: true, writes: []string{"aaaa\nbbbb\n", "cc\n"}},
			},
		},
		{
			name: "a line of the size or more is written through, after what is buffered",
			size: 8,
			ops: []op{
				{write: "a\n"},
				{write: "12345678\n", writes: []string{"a\n", "12345678\n"}},
				{write: "b\n", writes: []string{"a\n", "12345678\n"}},
				{flush: true, writes: []string{"a\n", "12345678\n", "b\n"}},
			},
		},
		{
			name: "flush writes at once and an empty flush writes nothing",
			size: 64,
			ops: []op{
				{flush: true},
				{write: "a\n"},
				{flush: true, writes: []string{"a\n"}},
				{tick: true, writes: []string{"a\n"}},
			},
		},
		{
			name: "close flushes and later lines are written through",
			size: 64,
			ops: []op{
				{write: "a\n"},
				{write: "b\n"},
				{close: true, writes: []string{"a\nb\n"}},
				{write: "c\n", writes: []string{"a\nb\n", "c\n"}},
				{close: true, writes: []string{"a\nb\n", "c\n"}},
			},
		},
		{
			name: "a failed write loses its lines only and is reported once",
			size: 64,
			fail: 1,
			ops: []op{
				{write: "lost\n"},
				{tick: true},
				{write: "kept\n"},
				{flush: true, writes: []string{"kept\n"}, err: errWrite},
				{write: "also kept\n", writes: []string{"kept\n"}},
				{close: true, writes: []string{"kept\n", "also kept\n"}},
			},
		},
		{
			name: "a line written through reports its own failure",
			size: 4,
			fail: 1,
			ops: []op{
				{write: "long line\n", err: errWrite},
				{write: "long line\n", writes: []string{"long line\n"}},
				{close: true, writes: []string{"long line\n"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recorder{fail: tt.fail}
			b, clock := newTestBuffer(w, tt.size)
			for i, o := range tt.ops {
				var err error
				switch {
				case o.write != "":
					var n int
					n, err = b.Write([]byte(o.write))
					want := len(o.write)
					if err != nil {
						want = 0
					}
					if n != want {
						t.Fatalf("step %d: Write(%q) = %d, want %d", i, o.write, n, want)
					}
				case o.tick:
					clock.fire()
				case o.flush:
					err = b.Flush()
				case o.close:
					err = b.Close()
				}
				if !errors.Is(err, o.err) {
					t.Fatalf("step %d: error = %v, want %v", i, err, o.err)
				}
				if got := w.got(); !slices.Equal(got, o.writes) {
					t.Fatalf("step %d: writes = %q, want %q", i, got, o.writes)
				}
			}
		})
	}
}

func TestBufferSchedulesOneFlushPerInterval(t *testing.T) {
	w := &recorder{}
	clock := &fakeClock{}
	b := NewBuffer(w, 0, 250*time.Millisecond)
	b.afterFunc = clock.afterFunc

	for range 3 {
		_, _ = b.Write([]byte("x\n"))
	}
	_ = b.Flush() // an explicit flush leaves the scheduled one in place
	_, _ = b.Write([]byte("y\n"))
	if want := []time.Duration{250 * time.Millisecond}; !slices.Equal(clock.delays, want) {
		t.Fatalf("scheduled %v, want %v", clock.delays, want)
	}
	clock.fire()
	if got, want := w.got(), []string{"x\nx\nx\n", "y\n"}; !slices.Equal(got, want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	_, _ = b.Write([]byte("z\n"))
	if len(clock.delays) != 2 {
		t.Fatalf("a line after the timed flush scheduled %d flushes in all, want 2", len(clock.delays))
	}

	d := NewBuffer(w, 0, 0)
	if d.size != DefaultBufferSize || d.interval != DefaultFlushInterval {
		t.Errorf("defaults = %d, %v; want %d, %v", d.size, d.interval, DefaultBufferSize, DefaultFlushInterval)
	}
}

// TestBufferConcurrentLoggers logs from many goroutines through a small buffer, with the real
// clock and explicit flushes racing the writes: every write must hold whole lines, every line
// must arrive once, and each goroutine's lines in the order it logged them. Run it with -race.
func TestBufferConcurrentLoggers(t *testing.T) {
	const loggers, lines = 8, 300
	w := &recorder{}
	b := NewBuffer(w, 512, time.Millisecond)
	logger, closeLogs, err := newBuffered(b, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range loggers {
		wg.Go(func() {
			for i := range lines {
				level := slog.LevelInfo
				if i%50 == 49 {
					level = slog.LevelError
				}
				logger.Log(context.Background(), level, "http request", "g", g, "i", i, "path", strings.Repeat("p", i%40))
				if i%100 == 0 {
					_ = b.Flush()
				}
			}
		})
	}
	wg.Wait()
	if err := closeLogs(); err != nil {
		t.Fatal(err)
	}

	next := make([]int, loggers)
	for _, chunk := range w.got() {
		if !strings.HasSuffix(chunk, "\n") {
			t.Fatalf("write ends inside a line: %q", chunk)
		}
		for line := range strings.SplitSeq(strings.TrimSuffix(chunk, "\n"), "\n") {
			var rec struct{ G, I int }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("line %q is not whole JSON: %v", line, err)
			}
			if rec.I != next[rec.G] {
				t.Fatalf("logger %d: line %d arrived when %d was due", rec.G, rec.I, next[rec.G])
			}
			next[rec.G]++
		}
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("logger %d: %d lines arrived, want %d", g, n, lines)
		}
	}
}

func TestBufferedLoggerFlushesErrorAtOnce(t *testing.T) {
	tests := []struct {
		level   slog.Level
		flushed bool
	}{
		{slog.LevelDebug, false},
		{slog.LevelInfo, false},
		{slog.LevelWarn, false},
		{slog.LevelError, true},
		{slog.LevelError + 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			w := &recorder{}
			b, _ := newTestBuffer(w, 0)
			logger, _, err := newBuffered(b, "json", "debug")
			if err != nil {
				t.Fatal(err)
			}
			logger.Info("before")
			// Through With and WithGroup too: the decorated handler must keep flushing.
			logger.With("k", "v").WithGroup("g").Log(context.Background(), tt.level, "this one")
			got := strings.Join(w.got(), "")
			if tt.flushed {
				if !strings.Contains(got, `"msg":"before"`) || !strings.Contains(got, `"msg":"this one"`) {
					t.Errorf("%s record not flushed at once: written %q", tt.level, got)
				}
			} else if got != "" {
				t.Errorf("%s record flushed at once: written %q", tt.level, got)
			}
		})
	}
}

func TestNewBuffered(t *testing.T) {
	tests := []struct {
		name     string
		buffered bool
	}{
		{"LOG_BUFFERED=false writes each line through", false},
		{"LOG_BUFFERED=true writes the line by close", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recorder{}
			logger, closeLogs, err := NewBuffered(w, "text", "info", tt.buffered)
			if err != nil {
				t.Fatal(err)
			}
			logger.Info("stopped")
			// Buffered, the real timer may or may not have written the line yet; unbuffered it
			// must have.
			if !tt.buffered && len(w.got()) != 1 {
				t.Errorf("unbuffered: writes before close = %q, want the line", w.got())
			}
			if err := closeLogs(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(w.got(), ""); strings.Count(got, "msg=stopped") != 1 {
				t.Errorf("after close written %q, want the line once", got)
			}
		})
	}
	if _, _, err := NewBuffered(&bytes.Buffer{}, "xml", "info", true); err == nil {
		t.Error("NewBuffered accepted format xml")
	}
	if _, _, err := NewBuffered(&bytes.Buffer{}, "json", "loud", false); err == nil {
		t.Error("NewBuffered accepted level loud")
	}
}

// BenchmarkAccessLog logs an access-log line like the gateway's, unbuffered (a write(2) per line,
// LOG_BUFFERED=false) and buffered, to a real file and to a pipe drained by another goroutine (as
// stdout is by a container runtime or hictl dev).
func BenchmarkAccessLog(b *testing.B) {
	dests := []struct {
		name string
		open func(b *testing.B) io.Writer
	}{
		{"file", func(b *testing.B) io.Writer {
			f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = f.Close() })
			return f
		}},
		{"pipe", func(b *testing.B) io.Writer {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				_, _ = io.Copy(io.Discard, r)
			}()
			b.Cleanup(func() {
				_ = w.Close()
				<-drained
				_ = r.Close()
			})
			return w
		}},
	}
	for _, d := range dests {
		for _, buffered := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/buffered=%v", d.name, buffered), func(b *testing.B) {
				w := &countingWriter{w: d.open(b)}
				logger, closeLogs, err := NewBuffered(w, "json", "info", buffered)
				if err != nil {
					b.Fatal(err)
				}
				logger = logger.With(slog.String("service", "gateway"))
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					logger.LogAttrs(ctx, slog.LevelInfo, "http request",
						slog.String("method", "GET"),
						slog.String("path", "/api/v1/miners/3f2a9c4e-0b7d-4e8a-9a51-6c2d8e1f0a42"),
						slog.Int("status", 200),
						slog.Duration("duration", 1234567*time.Nanosecond),
						slog.Int64("bytes", 1832),
						slog.String("request_id", "01JC8ZK6Q4W7V3YB2N5M9T0RXE"),
						slog.String("client_ip", "203.0.113.42"),
					)
				}
				if err := closeLogs(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(w.n)/float64(b.N), "writes/op")
			})
		}
	}
}

// countingWriter counts the writes that reach the destination (the write(2) calls). It is not
// safe for concurrent use; a Buffer, like slog's handlers, never calls Write concurrently.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n++
	return c.w.Write(p)
}
