// Package grpcclient dials HashInsight services over mutual TLS.
//
// A connection made by [Dial]:
//   - presents this process's certificate and accepts only a server carrying
//     the expected SPIFFE identity (see mtls.Source.ClientTLS);
//   - is traced with the otelgrpc client stats handler;
//   - gives every call without a deadline a default one;
//   - retries calls that fail with UNAVAILABLE, through gRPC's own retry
//     support in the service config, but only for the methods declared
//     idempotent with [WithIdempotentMethods]. Other methods are never
//     retried, because a write that timed out may still have been applied.
package grpcclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/hashinsight/platform/pkg/mtls"
)

// DefaultTimeout is the deadline given to calls that have none.
const DefaultTimeout = 10 * time.Second

// RetryPolicy is the gRPC retry policy applied to idempotent methods. Only
// UNAVAILABLE is retried.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt; gRPC caps it at 5.
	MaxAttempts int
	// InitialBackoff, MaxBackoff and BackoffMultiplier shape the randomised
	// exponential backoff between attempts.
	InitialBackoff    time.Duration
	MaxBackoff        time.Duration
	BackoffMultiplier float64
}

// DefaultRetryPolicy is used unless [WithRetryPolicy] says otherwise.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:       3,
		InitialBackoff:    100 * time.Millisecond,
		MaxBackoff:        time.Second,
		BackoffMultiplier: 2,
	}
}

// Option configures [Dial].
type Option func(*options)

type options struct {
	timeout    time.Duration
	idempotent []string
	retry      RetryPolicy
	keepalive  *keepalive.ClientParameters
	otel       []otelgrpc.Option
	dial       []grpc.DialOption
}

// WithDefaultTimeout sets the deadline given to calls whose context has none
// (default DefaultTimeout). It must be positive. Long-lived streams should
// carry their own deadline.
func WithDefaultTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithIdempotentMethods declares full method names ("/pkg.Service/Method")
// that are safe to retry on UNAVAILABLE. May be given more than once.
func WithIdempotentMethods(fullMethods ...string) Option {
	return func(o *options) { o.idempotent = append(o.idempotent, fullMethods...) }
}

// WithRetryPolicy replaces DefaultRetryPolicy for the idempotent methods.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(o *options) { o.retry = p }
}

// WithKeepalive enables client keepalive pings. The server's keepalive
// enforcement policy must allow the chosen interval, or it closes the
// connection with "too_many_pings". Without this option no pings are sent.
func WithKeepalive(p keepalive.ClientParameters) Option {
	return func(o *options) { o.keepalive = &p }
}

// WithOTelOptions passes options to the otelgrpc client stats handler, e.g.
// a tracer provider other than the global one.
func WithOTelOptions(opts ...otelgrpc.Option) Option {
	return func(o *options) { o.otel = append(o.otel, opts...) }
}

// WithDialOptions appends raw gRPC dial options, applied after the ones Dial
// sets. Options that replace the transport credentials defeat mTLS; do not
// pass them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// Dial returns a client connection to target (gRPC target syntax, e.g.
// "127.0.0.1:7002" or "dns:///mining:7002") that authenticates with src and
// accepts only a server whose certificate carries identity expect.
//
// Like grpc.NewClient it does not connect: the first call does. ctx is only
// checked for cancellation; the connection outlives it and must be closed by
// the caller.
func Dial(ctx context.Context, target string, src *mtls.Source, expect mtls.Identity, opts ...Option) (*grpc.ClientConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("grpcclient: dial %s: %w", target, err)
	}
	if src == nil {
		return nil, fmt.Errorf("grpcclient: dial %s: nil mtls source", target)
	}
	if err := expect.Validate(); err != nil {
		return nil, fmt.Errorf("grpcclient: dial %s: expected server identity: %w", target, err)
	}
	o := options{timeout: DefaultTimeout, retry: DefaultRetryPolicy()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("grpcclient: dial %s: default timeout must be positive, got %s", target, o.timeout)
	}
	sc, err := serviceConfigJSON(o.idempotent, o.retry)
	if err != nil {
		return nil, fmt.Errorf("grpcclient: dial %s: %w", target, err)
	}

	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(src.ClientTLS(expect))),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(o.otel...)),
		grpc.WithChainUnaryInterceptor(unaryDeadline(o.timeout)),
		grpc.WithChainStreamInterceptor(streamDeadline(o.timeout)),
		grpc.WithDefaultServiceConfig(sc),
	}
	if o.keepalive != nil {
		dialOpts = append(dialOpts, grpc.WithKeepaliveParams(*o.keepalive))
	}
	dialOpts = append(dialOpts, o.dial...)

	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("grpcclient: dial %s: %w", target, err)
	}
	return conn, nil
}

// unaryDeadline gives calls without a deadline one of d.
func unaryDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// streamDeadline gives streams without a deadline one of d. The timer is
// released when the stream ends (an error or io.EOF from RecvMsg) or, for a
// stream its caller abandons, when the deadline fires.
func streamDeadline(d time.Duration) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if _, ok := ctx.Deadline(); ok {
			return streamer(ctx, desc, cc, method, opts...)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		return &cancelOnEnd{ClientStream: s, cancel: cancel}, nil
	}
}

type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

// Service-config JSON (https://github.com/grpc/grpc/blob/master/doc/service_config.md).
type serviceConfig struct {
	MethodConfig []methodConfig `json:"methodConfig,omitempty"`
}

type methodConfig struct {
	Name        []methodName    `json:"name"`
	RetryPolicy *retryPolicyDoc `json:"retryPolicy,omitempty"`
}

type methodName struct {
	Service string `json:"service"`
	Method  string `json:"method"`
}

type retryPolicyDoc struct {
	MaxAttempts          int      `json:"maxAttempts"`
	InitialBackoff       string   `json:"initialBackoff"`
	MaxBackoff           string   `json:"maxBackoff"`
	BackoffMultiplier    float64  `json:"backoffMultiplier"`
	RetryableStatusCodes []string `json:"retryableStatusCodes"`
}

// serviceConfigJSON renders the retry policy for the idempotent methods.
func serviceConfigJSON(fullMethods []string, p RetryPolicy) (string, error) {
	var sc serviceConfig
	if len(fullMethods) > 0 {
		if err := p.validate(); err != nil {
			return "", err
		}
		names := make([]methodName, 0, len(fullMethods))
		seen := make(map[string]bool, len(fullMethods))
		for _, fm := range fullMethods {
			n, err := parseFullMethod(fm)
			if err != nil {
				return "", err
			}
			if seen[fm] {
				continue
			}
			seen[fm] = true
			names = append(names, n)
		}
		sc.MethodConfig = []methodConfig{{
			Name: names,
			RetryPolicy: &retryPolicyDoc{
				MaxAttempts:          p.MaxAttempts,
				InitialBackoff:       protoDuration(p.InitialBackoff),
				MaxBackoff:           protoDuration(p.MaxBackoff),
				BackoffMultiplier:    p.BackoffMultiplier,
				RetryableStatusCodes: []string{"UNAVAILABLE"},
			},
		}}
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return "", fmt.Errorf("service config: %w", err)
	}
	return string(b), nil
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 2:
		return fmt.Errorf("retry policy: max attempts %d, want at least 2", p.MaxAttempts)
	case p.InitialBackoff <= 0 || p.MaxBackoff <= 0:
		return errors.New("retry policy: backoffs must be positive")
	case p.MaxBackoff < p.InitialBackoff:
		return errors.New("retry policy: max backoff below initial backoff")
	case p.BackoffMultiplier <= 0:
		return errors.New("retry policy: backoff multiplier must be positive")
	}
	return nil
}

// parseFullMethod splits "/pkg.Service/Method".
func parseFullMethod(fm string) (methodName, error) {
	rest, ok := strings.CutPrefix(fm, "/")
	if !ok {
		return methodName{}, fmt.Errorf("method %q: want /package.Service/Method", fm)
	}
	svc, method, ok := strings.Cut(rest, "/")
	if !ok || svc == "" || method == "" || strings.Contains(method, "/") {
		return methodName{}, fmt.Errorf("method %q: want /package.Service/Method", fm)
	}
	return methodName{Service: svc, Method: method}, nil
}

// protoDuration formats d as the JSON form of google.protobuf.Duration.
func protoDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
