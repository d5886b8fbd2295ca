package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
)

// HeaderRequestID is the request correlation header, accepted from clients
// and always echoed on the response.
const HeaderRequestID = "X-Request-ID"

type ctxKey int

const (
	requestIDKey ctxKey = iota
	clientIPKey
	bodyLimitKey
)

// RequestID returns the request id stored by the RequestID middleware, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// ClientIP returns the client address resolved by the RequestID middleware, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey).(string)
	return ip
}

// Middleware wraps an http.Handler.
type Middleware func(http.Handler) http.Handler

// Chain applies middleware so that the first one listed is the outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// WithRequestContext stores the request id (the client's X-Request-ID when it
// is well formed, else a new random one) and the resolved client IP in the
// request context, and echoes X-Request-ID on the response.
func WithRequestContext(trusted []netip.Prefix) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(HeaderRequestID)
			if !validRequestID(id) {
				id = newRequestID()
			}
			w.Header().Set(HeaderRequestID, id)
			ctx := context.WithValue(r.Context(), requestIDKey, id)
			ctx = context.WithValue(ctx, clientIPKey, clientIP(r, trusted))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// validRequestID accepts ids a client may reasonably send (UUIDs, ULIDs,
// trace ids) and rejects anything that could inject into logs or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns a random RFC 4122 version 4 UUID.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24).
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// clientIP is the peer address, unless the peer is a trusted proxy: then the
// right-most X-Forwarded-For entry that is not itself a trusted proxy. A
// client cannot spoof its address through X-Forwarded-For unless it connects
// from a trusted proxy address.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			break // malformed chain: stop at the last address we can vouch for
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// statusRecorder captures the status code and body size written by a handler.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush supports streaming responses (server-streaming RPCs).
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// WithAccessLog logs one line per request: method, path, status, duration,
// request id and client IP. Headers are never logged (Authorization,
// X-Collector-Key carry credentials), nor is the query string (it may carry
// tokens).
func WithAccessLog(logger *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case status >= 400:
				level = slog.LevelWarn
			}
			logger.LogAttrs(r.Context(), level, "http request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.Int64("bytes", rec.bytes),
				slog.String("request_id", RequestID(r.Context())),
				slog.String("client_ip", ClientIP(r.Context())),
			)
		})
	}
}

// WithRecovery turns a panic in a handler into a 500 JSON error (without the
// panic value in the body) and logs the panic with its stack.
// http.ErrAbortHandler is re-raised: it is the documented way to abort a
// response.
func WithRecovery(logger *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w}
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as documented
					panic(p)
				}
				logger.ErrorContext(r.Context(), "panic in http handler",
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("request_id", RequestID(r.Context())),
					slog.Any("panic", p),
					slog.String("stack", string(debug.Stack())),
				)
				if rec.status == 0 {
					writeError(w, r, http.StatusInternalServerError, apiError{
						Code:     codeInternal,
						Message:  internalMessage,
						GRPCCode: "INTERNAL",
					})
				}
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// bodyLimit remembers that a request body went over the limit, so that the
// error handler can answer 413 whatever the decoder made of the short read.
type bodyLimit struct {
	limit    int64
	exceeded atomic.Bool
}

type limitedBody struct {
	io.ReadCloser
	state *bodyLimit
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			b.state.exceeded.Store(true)
		}
	}
	return n, err
}

// bodyTooLarge reports whether err or the request's body limit state says
// the body was over the limit, and the limit.
func bodyTooLarge(ctx context.Context, err error) (int64, bool) {
	st, _ := ctx.Value(bodyLimitKey).(*bodyLimit)
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return mbe.Limit, true
	}
	if st != nil && st.exceeded.Load() {
		return st.limit, true
	}
	return 0, false
}

// WithBodyLimit caps request bodies at limit bytes. A declared
// Content-Length over the limit is refused before the handler runs; a
// chunked body is cut off by http.MaxBytesReader and the handler's error
// path turns that into the same 413.
func WithBodyLimit(limit int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			limit := bodyLimitFor(r, limit) // the import route has its own
			if r.ContentLength > limit {
				writeTooLarge(w, r, limit)
				return
			}
			st := &bodyLimit{limit: limit}
			r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), state: st}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyLimitKey, st)))
		})
	}
}

func writeTooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	writeError(w, r, http.StatusRequestEntityTooLarge, apiError{
		Code:     codeValidation,
		Message:  fmt.Sprintf("request body exceeds %d bytes", limit),
		GRPCCode: "INVALID_ARGUMENT",
	})
}
