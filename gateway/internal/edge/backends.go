package edge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashinsight/platform/pkg/breaker"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/mtls"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// BreakerSettings are the settings of every backend's circuit breaker.
type BreakerSettings struct {
	// FailureThreshold consecutive failures open the breaker.
	FailureThreshold uint32
	// RecoveryTimeout is how long it stays open before a trial call.
	RecoveryTimeout time.Duration
}

// Backend is one gRPC service behind the gateway.
type Backend struct {
	// Name is the service name (auth, mining, …); its identity is svc/<Name>.
	Name string
	// Addr is the dial target.
	Addr string
	// Conn is the mTLS connection; every unary call on it runs through
	// Breaker.
	Conn *grpc.ClientConn
	// Breaker is the backend's circuit breaker.
	Breaker *breaker.Breaker
}

// Health returns a grpc.health.v1 client on the backend's connection. Health
// checks bypass the breaker so that they always report the truth.
func (b *Backend) Health() healthpb.HealthClient { return healthpb.NewHealthClient(b.Conn) }

// Backends are the dialed services, in the order they were given.
type Backends []*Backend

// ByName returns the backend called name, or nil.
func (bs Backends) ByName(name string) *Backend {
	for _, b := range bs {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Close closes every connection.
func (bs Backends) Close() error {
	var errs []error
	for _, b := range bs {
		if b.Conn != nil {
			if err := b.Conn.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s connection: %w", b.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// BackendTarget names a backend and its address.
type BackendTarget struct {
	Name string
	Addr string
}

// DialBackends dials every target over mTLS with src, expecting the server
// identity svc/<name>, and puts each connection behind the breaker of that
// name in breakers. Dialing does not connect; an unreachable backend shows
// up in health checks and as 503s, never as a start-up failure.
func DialBackends(ctx context.Context, targets []BackendTarget, src *mtls.Source, breakers *breaker.Registry, bs BreakerSettings, opts ...grpcclient.Option) (Backends, error) {
	out := make(Backends, 0, len(targets))
	for _, t := range targets {
		br := breakers.Get(t.Name, breaker.Settings{
			FailureThreshold: bs.FailureThreshold,
			RecoveryTimeout:  bs.RecoveryTimeout,
			IsFailure:        IsBackendFailure,
		})
		o := append([]grpcclient.Option{grpcclient.WithDialOptions(
			grpc.WithChainUnaryInterceptor(BreakerUnaryInterceptor(t.Name, br)),
			grpc.WithChainStreamInterceptor(BreakerStreamInterceptor(t.Name, br)),
		)}, opts...)
		conn, err := grpcclient.Dial(ctx, t.Addr, src, mtls.Service(t.Name), o...)
		if err != nil {
			_ = out.Close()
			return nil, fmt.Errorf("dial %s backend: %w", t.Name, err)
		}
		out = append(out, &Backend{Name: t.Name, Addr: t.Addr, Conn: conn, Breaker: br})
	}
	return out, nil
}

// IsBackendFailure decides what counts against a backend's breaker: only
// the codes that say the backend itself is in trouble (Unavailable,
// DeadlineExceeded, ResourceExhausted). Everything else — including a
// caller's own mistakes (InvalidArgument, NotFound, PermissionDenied) — is
// a sign of a working backend. A ResourceExhausted that carries the API_001
// reason is one caller's rate limit, not backend overload, and does not
// count either: otherwise one abusive client could open the breaker for
// everyone.
func IsBackendFailure(err error) bool {
	if err == nil {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	case codes.ResourceExhausted:
		code, explicit := errcode.FromStatus(st)
		return !(explicit && code == errcode.RateLimited)
	}
	return false
}

// bypassBreaker lists methods that never go through the breaker.
func bypassBreaker(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(method, "/grpc.reflection.")
}

// openError is the status returned while a backend's breaker refuses calls.
func openError(name string) error {
	return errcode.Error(errcode.Unavailable, codes.Unavailable, name+" service is temporarily unavailable")
}

// BreakerUnaryInterceptor runs each unary call through br.
func BreakerUnaryInterceptor(name string, br *breaker.Breaker) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if bypassBreaker(method) {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		err := br.Execute(ctx, func(ctx context.Context) error {
			return invoker(ctx, method, req, reply, cc, opts...)
		})
		if errors.Is(err, breaker.ErrOpen) || errors.Is(err, breaker.ErrTooManyRequests) {
			return openError(name)
		}
		return err
	}
}

// BreakerStreamInterceptor runs the opening of each stream through br (the
// messages of an established stream are not counted).
func BreakerStreamInterceptor(name string, br *breaker.Breaker) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if bypassBreaker(method) {
			return streamer(ctx, desc, cc, method, opts...)
		}
		s, err := breaker.Do(ctx, br, func(ctx context.Context) (grpc.ClientStream, error) {
			return streamer(ctx, desc, cc, method, opts...)
		})
		if errors.Is(err, breaker.ErrOpen) || errors.Is(err, breaker.ErrTooManyRequests) {
			return nil, openError(name)
		}
		return s, err
	}
}
