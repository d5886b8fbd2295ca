package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/authn/internal/lru"
	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// CredentialResolver turns an API key or collector token (already checked by apikey.Parse) into
// its principal. It returns an error wrapping ErrInvalidCredential for an unknown, revoked or
// disabled credential, ErrExpired for an expired one, and any other error when the answer is not
// known (auth unreachable, database down): such errors are never cached.
type CredentialResolver interface {
	Resolve(ctx context.Context, plaintext string) (*Principal, error)
}

// CredentialResolverFunc adapts a function to CredentialResolver.
type CredentialResolverFunc func(ctx context.Context, plaintext string) (*Principal, error)

// Resolve calls f.
func (f CredentialResolverFunc) Resolve(ctx context.Context, plaintext string) (*Principal, error) {
	return f(ctx, plaintext)
}

// Cache bounds of CachedResolver.
const (
	// MaxResolveTTL is the longest a resolved credential is trusted without asking auth again: a
	// revoked API key stops working within it.
	MaxResolveTTL = 30 * time.Second
	// DefaultNegativeTTL is how long a rejected credential is remembered.
	DefaultNegativeTTL = 5 * time.Second
	// DefaultResolveCacheSize bounds the entries (positive and negative).
	DefaultResolveCacheSize = 10_000
	// DefaultResolveTimeout bounds one call to the underlying resolver.
	DefaultResolveTimeout = 5 * time.Second
)

// CacheOptions configure a CachedResolver; zero values take the defaults.
type CacheOptions struct {
	// TTL of a resolved principal, at most MaxResolveTTL (default and cap); an entry never
	// outlives the credential's own expiry.
	TTL time.Duration
	// NegativeTTL of a rejection (default DefaultNegativeTTL; capped at TTL).
	NegativeTTL time.Duration
	// MaxEntries bounds the cache (default DefaultResolveCacheSize).
	MaxEntries int
	// Timeout bounds one call to the wrapped resolver (default DefaultResolveTimeout).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CachedResolver caches a CredentialResolver: concurrent lookups of one credential make one call
// (singleflight), answers are kept ≤30 s, rejections briefly, failures not at all. Entries are
// keyed by the SHA-256 of the credential, so the cache holds no plaintext. Safe for concurrent use.
type CachedResolver struct {
	next  CredentialResolver
	opts  CacheOptions
	cache *lru.Cache[[sha256.Size]byte, resolved]
	sf    singleflight.Group
}

type resolved struct {
	p   *Principal
	err error // ErrInvalidCredential or ErrExpired (wrapped) for a cached rejection
}

// NewCachedResolver wraps next.
func NewCachedResolver(next CredentialResolver, opts CacheOptions) *CachedResolver {
	if opts.TTL <= 0 || opts.TTL > MaxResolveTTL {
		opts.TTL = MaxResolveTTL
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	opts.NegativeTTL = min(opts.NegativeTTL, opts.TTL)
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultResolveCacheSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultResolveTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &CachedResolver{next: next, opts: opts, cache: lru.New[[sha256.Size]byte, resolved](opts.MaxEntries)}
}

// Resolve returns the cached answer for plaintext or asks the wrapped resolver. The principal is
// shared: read-only.
func (c *CachedResolver) Resolve(ctx context.Context, plaintext string) (*Principal, error) {
	key := sha256.Sum256([]byte(plaintext))
	if r, ok := c.cache.Get(key, c.opts.Now()); ok {
		return r.result()
	}
	ch := c.sf.DoChan(string(key[:]), func() (any, error) {
		// A caller that missed the cache while an earlier call for the same key was finishing
		// starts a new flight: if that call's answer was cached, it is here by now.
		if r, ok := c.cache.Get(key, c.opts.Now()); ok {
			return r, nil
		}
		// Detached from the first caller's cancellation: the other waiters share this call.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
		defer cancel()
		p, err := c.next.Resolve(fctx, plaintext)
		now := c.opts.Now()
		switch {
		case err == nil && p == nil:
			return nil, errors.New("authn: resolver returned no principal")
		case err == nil:
			exp := now.Add(c.opts.TTL)
			if !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(exp) {
				exp = p.ExpiresAt
			}
			r := resolved{p: p}
			c.cache.Add(key, r, exp, now)
			return r, nil
		case errors.Is(err, ErrInvalidCredential) || errors.Is(err, ErrExpired):
			r := resolved{err: err}
			c.cache.Add(key, r, now.Add(c.opts.NegativeTTL), now)
			return r, nil
		default:
			return nil, err
		}
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(resolved).result()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r resolved) result() (*Principal, error) {
	if r.err != nil {
		return nil, r.err
	}
	c := *r.p
	return &c, nil
}

// RemoteResolver resolves credentials with auth.v1.AuthService/Authenticate.
type RemoteResolver struct {
	client authv1.AuthServiceClient
}

// NewRemoteResolver returns a resolver calling client (an mTLS connection to svc/auth). Wrap it
// with NewCachedResolver.
func NewRemoteResolver(client authv1.AuthServiceClient) *RemoteResolver {
	return &RemoteResolver{client: client}
}

// Resolve calls Authenticate. Unauthenticated answers become ErrExpired (AUTH_003) or
// ErrInvalidCredential; every other failure is returned as is (not a verdict on the credential).
func (r *RemoteResolver) Resolve(ctx context.Context, plaintext string) (*Principal, error) {
	resp, err := r.client.Authenticate(ctx, &authv1.AuthenticateRequest{Credential: plaintext})
	if err != nil {
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unauthenticated:
			if errcode.Is(err, errcode.AuthExpired) {
				return nil, fmt.Errorf("%w: auth says expired", ErrExpired)
			}
			return nil, fmt.Errorf("%w: auth rejected it", ErrInvalidCredential)
		case codes.NotFound, codes.InvalidArgument:
			return nil, fmt.Errorf("%w: auth rejected it (%s)", ErrInvalidCredential, st.Code())
		}
		return nil, fmt.Errorf("auth Authenticate: %w", err)
	}
	p := FromProto(resp.GetPrincipal())
	if p == nil {
		return nil, errors.New("auth Authenticate: answer carries no principal")
	}
	return p, nil
}
