package grpcapi

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/services/auth/internal/apikeys"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/sessions"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

func TestToStatus(t *testing.T) {
	s := New(Deps{})
	tests := []struct {
		err  error
		code codes.Code
		ec   errcode.Code
	}{
		{&users.FieldError{Field: "email", Reason: "bad"}, codes.InvalidArgument, errcode.Validation},
		{fmt.Errorf("wrapped: %w", users.ErrNotFound), codes.NotFound, errcode.NotFound},
		{users.ErrEmailTaken, codes.AlreadyExists, errcode.Conflict},
		{users.ErrOwnerRequired, codes.PermissionDenied, errcode.AuthForbidden},
		{users.ErrBootstrapClosed, codes.PermissionDenied, errcode.AuthForbidden},
		{users.ErrLastOwner, codes.FailedPrecondition, errcode.Precondition},
		{sessions.ErrInvalidCredentials, codes.Unauthenticated, errcode.AuthRequired},
		{sessions.ErrTokenReuse, codes.Unauthenticated, errcode.AuthRequired},
		{sessions.ErrRefreshExpired, codes.Unauthenticated, errcode.AuthExpired},
		{&sessions.ThrottledError{RetryAfter: 2 * time.Second}, codes.ResourceExhausted, errcode.RateLimited},
		{&sessions.ThrottledError{RetryAfter: time.Second, Busy: true}, codes.ResourceExhausted, errcode.RateLimited},
		{users.ErrNotBroker, codes.FailedPrecondition, errcode.Precondition},
		{fmt.Errorf("x: %w", apikeys.ErrExpired), codes.Unauthenticated, errcode.AuthExpired},
		{apikeys.ErrRevoked, codes.Unauthenticated, errcode.AuthRequired},
		{apikeys.ErrScopeExceeds, codes.PermissionDenied, errcode.AuthForbidden},
		{apikeys.ErrSiteMismatch, codes.PermissionDenied, errcode.AuthForbidden},
		{apikeys.ErrNotFound, codes.NotFound, errcode.NotFound},
		{apikeys.ErrInactive, codes.FailedPrecondition, errcode.Conflict},
		{fmt.Errorf("apikeys: %w: name must be 1-128 characters", apikeys.ErrInvalidArgument), codes.InvalidArgument, errcode.Validation},
		{audit.ErrInvalidFilter, codes.InvalidArgument, errcode.Validation},
		{fmt.Errorf("q: %w", &pgconn.PgError{Code: "08006"}), codes.Unavailable, errcode.DBUnavailable},
		{&pgconn.PgError{Code: "57014"}, codes.DeadlineExceeded, errcode.DBTimeout},
		{context.DeadlineExceeded, codes.DeadlineExceeded, errcode.DBTimeout},
		{errors.New("boom: secret detail"), codes.Internal, errcode.Internal},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%T %v", tc.err, tc.err), func(t *testing.T) {
			st := status.Convert(s.toStatus(t.Context(), tc.err))
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v", st.Code(), tc.code)
			}
			if got, _ := errcode.FromStatus(st); got != tc.ec {
				t.Errorf("error code %s, want %s", got, tc.ec)
			}
			if tc.code == codes.Internal && st.Message() != "internal error" {
				t.Errorf("internal error leaks its text: %q", st.Message())
			}
		})
	}
}

func TestThrottledCarriesRetryInfo(t *testing.T) {
	st := status.Convert(throttled(1500 * time.Millisecond))
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			if got := ri.GetRetryDelay().AsDuration(); got != 1500*time.Millisecond {
				t.Fatalf("retry delay %v", got)
			}
			return
		}
	}
	t.Fatal("no RetryInfo")
}

// TestBusyLoginCarriesRetryInfo: a login refused for want of a hashing slot is 429 API_001 with
// a RetryInfo (the gateway's Retry-After) and says why.
func TestBusyLoginCarriesRetryInfo(t *testing.T) {
	s := New(Deps{})
	st := status.Convert(s.toStatus(t.Context(), &sessions.ThrottledError{RetryAfter: time.Second, Busy: true}))
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "logins in progress") {
		t.Fatalf("status %v %q", st.Code(), st.Message())
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			if got := ri.GetRetryDelay().AsDuration(); got != time.Second {
				t.Fatalf("retry delay %v, want 1s", got)
			}
			return
		}
	}
	t.Fatal("no RetryInfo")
}

// peerAs returns ctx with a gRPC peer at addr whose verified certificate has the SPIFFE id.
func peerAs(ctx context.Context, spiffe, addr string) context.Context {
	u, _ := url.Parse(spiffe)
	cert := &x509.Certificate{URIs: []*url.URL{u}}
	tcp, _ := net.ResolveTCPAddr("tcp", addr)
	return peer.NewContext(ctx, &peer.Peer{
		Addr:     tcp,
		AuthInfo: credentials.TLSInfo{State: tlsState(cert)},
	})
}

func TestClientIP(t *testing.T) {
	xff := metadata.Pairs("x-forwarded-for", "198.51.100.7, 10.0.0.1")
	tests := []struct {
		name   string
		spiffe string
		md     metadata.MD
		want   string
	}{
		{"gateway forwards the client", "spiffe://hashinsight.local/svc/gateway", xff, "198.51.100.7"},
		{"gateway without header", "spiffe://hashinsight.local/svc/gateway", nil, "127.0.0.9"},
		{"gateway with garbage", "spiffe://hashinsight.local/svc/gateway", metadata.Pairs("x-forwarded-for", "not-an-ip"), "127.0.0.9"},
		{"operator cannot claim an address", "spiffe://hashinsight.local/operator/alice", xff, "127.0.0.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := peerAs(t.Context(), tc.spiffe, "127.0.0.9:5555")
			if tc.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tc.md)
			}
			if got := clientIP(ctx); got != tc.want {
				t.Errorf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
