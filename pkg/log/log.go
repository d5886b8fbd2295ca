// Package log builds the slog loggers of HashInsight processes: JSON or text (LOG_FORMAT), a minimum
// level (LOG_LEVEL), secrets masked on the way out, and the OpenTelemetry trace and span ids of the
// record's context attached, so a log line can be joined with its trace.
//
// Masking happens in two places. The handler masks any attribute whose key looks like a credential
// (see IsSecretKey) and the password of any URL or keyword/value DSN in a string value. Masked renders
// a config struct for the start-up log line, hiding fields tagged `secret:"true"`.
//
// A process builds its logger with NewBuffered (LOG_BUFFERED, on by default): lines are written in
// batches by a Buffer rather than with a write(2) each, errors at once, and the
// close function it returns writes what is left before the process exits.
package log

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Mask is what a secret value is replaced with.
const Mask = "****"

// New returns a logger writing to w in format "json" or "text" at level "debug", "info", "warn"
// (or "warning") or "error"; format and level are case-insensitive. Records logged with a context
// carrying a span get trace_id and span_id attributes.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	h, err := NewHandler(w, format, level)
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

// NewHandler is the handler behind New, for callers that decorate it further.
func NewHandler(w io.Writer, format, level string) (slog.Handler, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: MaskAttr}
	var h slog.Handler
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "json", "":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log: unknown format %q (want json or text)", format)
	}
	return NewTraceHandler(h), nil
}

// ParseLevel parses LOG_LEVEL; the empty string means info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log: unknown level %q (want debug, info, warn or error)", s)
}

// NewTraceHandler decorates h so that every record handled with a context that carries a valid
// span context gets trace_id and span_id attributes. Records logged inside a WithGroup group carry
// the ids inside that group.
func NewTraceHandler(h slog.Handler) slog.Handler {
	if th, ok := h.(traceHandler); ok {
		return th
	}
	return traceHandler{inner: h}
}

type traceHandler struct{ inner slog.Handler }

func (h traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !hasTraceID(r) {
			// Clone: the record's attribute storage may be shared with the caller.
			r = r.Clone()
			r.AddAttrs(
				slog.String("trace_id", sc.TraceID().String()),
				slog.String("span_id", sc.SpanID().String()),
			)
		}
	}
	return h.inner.Handle(ctx, r)
}

// hasTraceID reports whether the record carries trace_id already (the gRPC logging interceptor adds
// its own), so the ids are never written twice.
func hasTraceID(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == "trace_id"
		return !found
	})
	return found
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{inner: h.inner.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{inner: h.inner.WithGroup(name)}
}

// WithTrace returns logger with the trace_id and span_id of ctx's span bound to it, for code that
// logs without passing a context. Without a valid span it returns logger unchanged.
func WithTrace(ctx context.Context, logger *slog.Logger) *slog.Logger {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return logger
	}
	return logger.With(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
}
