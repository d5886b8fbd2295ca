package log

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of NewBuffer, and what NewBuffered uses.
const (
	// DefaultBufferSize is how many bytes of lines a Buffer collects before writing them; it is
	// also a Linux pipe's default capacity.
	DefaultBufferSize = 64 << 10
	// DefaultFlushInterval is the longest a line waits in a Buffer, so `tail -f` and log shippers
	// stay near-real-time.
	DefaultFlushInterval = 100 * time.Millisecond
)

// Buffer is an io.Writer that collects log lines in memory and writes many at a time to its
// destination, sparing a write(2) per line. Each Write must be one or more whole lines (every
// slog handler writes one record per Write); lines reach the destination in order and whole, a
// line never split across two writes nor mixed with another.
//
// Buffered lines are written when the next one would not fit in the size, at most the flush
// interval after the oldest was written, on Flush and on Close. A line of the size or more is
// written straight through, after what is buffered. After Close every line is written straight
// through, so a goroutine that logs after the process's final flush loses nothing. A Buffer is
// safe for concurrent use. It has two buffers: loggers fill one while the other is being written,
// and a Write waits for the destination only when its line does not fit.
//
// A failed write loses the lines of that write only: the error is returned by the next Flush or
// Close and later lines are written as usual.
//
// Why not zapcore.BufferedWriteSyncer (go.uber.org/zap), which does most of this: it buffers in a
// bufio.Writer, whose first write error is sticky, so one failed write (EAGAIN on a non-blocking
// stdout, a full disk) silently ends all logging for the life of the process; it accepts writes
// after Stop into a buffer nothing flushes any more (uber-go/zap#1594), so lines logged after the
// final flush are lost; its periodic flush calls the destination's Sync, an fsync of a log file
// every interval (and EINVAL on a pipe, uber-go/zap#328); and its ticker wakes an idle process at
// every interval. The sticky error cannot be worked around from outside; the rest would take a
// wrapper as large as this type, on top of a new dependency for every module.
type Buffer struct {
	w        io.Writer
	size     int
	interval time.Duration
	// afterFunc schedules f after d, as time.AfterFunc does; tests replace it with a fake clock.
	afterFunc func(d time.Duration, f func())

	mu     sync.Mutex // guards buf, armed and closed
	buf    []byte
	armed  bool // a timed flush is scheduled
	closed bool

	// wmu is held while writing to w. It is taken with mu held and mu released only then, so
	// writes reach w in the order their lines entered the Buffer.
	wmu   sync.Mutex
	spare []byte // the other buffer, reused after its write; guarded by wmu
	err   error  // first failed write not yet reported by Flush or Close; guarded by wmu
}

// NewBuffer returns a Buffer writing to w, holding up to size bytes (DefaultBufferSize when
// size <= 0) for at most interval (DefaultFlushInterval when interval <= 0).
func NewBuffer(w io.Writer, size int, interval time.Duration) *Buffer {
	if size <= 0 {
		size = DefaultBufferSize
	}
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	return &Buffer{
		w:         w,
		size:      size,
		interval:  interval,
		afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		buf:       make([]byte, 0, size),
	}
}

// Write buffers p, or writes it through when it is too large to buffer or the Buffer is closed.
// It returns an error only when p itself was written through and failed.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed || len(p) >= b.size {
		data := b.swapLocked()
		b.mu.Unlock()
		if err := b.writeOut(data, p, false); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	var data []byte
	full := len(b.buf)+len(p) > b.size
	if full {
		data = b.swapLocked()
	}
	b.buf = append(b.buf, p...)
	if !b.armed {
		b.armed = true
		b.afterFunc(b.interval, b.tick)
	}
	b.mu.Unlock()
	if full {
		_ = b.writeOut(data, nil, false) // an error waits for Flush or Close
	}
	return len(p), nil
}

// Flush writes what is buffered and returns once it is written, with the first error of any
// write since the last Flush or Close.
func (b *Buffer) Flush() error {
	b.mu.Lock()
	data := b.swapLocked()
	b.mu.Unlock()
	return b.writeOut(data, nil, true)
}

// Close flushes the Buffer; every later Write goes straight to the destination. It does not close
// the destination. Close may be called more than once.
func (b *Buffer) Close() error {
	b.mu.Lock()
	b.closed = true
	data := b.swapLocked()
	b.mu.Unlock()
	return b.writeOut(data, nil, true)
}

// tick is the timed flush scheduled by the first Write into an empty or just-flushed Buffer.
func (b *Buffer) tick() {
	b.mu.Lock()
	b.armed = false
	if len(b.buf) == 0 {
		b.mu.Unlock()
		return
	}
	data := b.swapLocked()
	b.mu.Unlock()
	_ = b.writeOut(data, nil, false)
}

// swapLocked takes wmu, waiting for the previous write to finish, and swaps in the spare buffer.
// It is called with mu held; the caller releases mu and passes the returned lines to writeOut,
// which releases wmu.
func (b *Buffer) swapLocked() []byte {
	b.wmu.Lock()
	data := b.buf
	b.buf = b.spare[:0]
	return data
}

// writeOut writes data, then extra, to the destination and releases wmu. A failed write of data
// is kept for Flush or Close; the error of extra is returned. With report it also returns, and
// clears, the kept error.
func (b *Buffer) writeOut(data, extra []byte, report bool) error {
	defer b.wmu.Unlock()
	if len(data) > 0 {
		if _, err := b.w.Write(data); err != nil && b.err == nil {
			b.err = err
		}
	}
	b.spare = data[:0]
	var err error
	if len(extra) > 0 {
		_, err = b.w.Write(extra)
	}
	if report {
		err = errors.Join(b.err, err)
		b.err = nil
	}
	return err
}

// flushHandler flushes its Buffer after every record at level or above: such a record may be the
// last thing a failing process says, and an operator watching the logs wants it now.
type flushHandler struct {
	inner slog.Handler
	buf   *Buffer
	level slog.Level
}

func (h flushHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.inner.Handle(ctx, r)
	if r.Level >= h.level {
		if ferr := h.buf.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushHandler{inner: h.inner.WithAttrs(attrs), buf: h.buf, level: h.level}
}

func (h flushHandler) WithGroup(name string) slog.Handler {
	return flushHandler{inner: h.inner.WithGroup(name), buf: h.buf, level: h.level}
}

// NewBuffered is New for a process's log output (LOG_BUFFERED). With buffered true the logger
// writes through a Buffer on w (DefaultBufferSize, DefaultFlushInterval) and flushes it after
// every record at Error or above (not at Warn: every 4xx answer logs a warning, and a flood of
// refused requests must not cost a write(2) each); the returned close flushes what is left and makes later lines
// write straight through. Call close on every path out of main, after the last deferred
// shutdown step that may log. With buffered false the logger writes each line to w as New's does
// and close does nothing.
func NewBuffered(w io.Writer, format, level string, buffered bool) (*slog.Logger, func() error, error) {
	if !buffered {
		logger, err := New(w, format, level)
		if err != nil {
			return nil, nil, err
		}
		return logger, func() error { return nil }, nil
	}
	return newBuffered(NewBuffer(w, 0, 0), format, level)
}

// newBuffered is NewBuffered's buffered logger on buf.
func newBuffered(buf *Buffer, format, level string) (*slog.Logger, func() error, error) {
	h, err := NewHandler(buf, format, level)
	if err != nil {
		return nil, nil, err
	}
	return slog.New(flushHandler{inner: h, buf: buf, level: slog.LevelError}), buf.Close, nil
}
