package authn_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// keyStore is a fake auth key table: credentials map to principals; revoked ones are rejected.
type keyStore struct {
	mu      sync.Mutex
	keys    map[string]*authn.Principal
	expired map[string]bool
	down    bool
	calls   atomic.Int32
	gate    chan struct{} // when set, Resolve waits for it
	entered chan struct{} // when set, Resolve closes it on its first call
	once    sync.Once
}

func newKeyStore() *keyStore {
	return &keyStore{keys: map[string]*authn.Principal{}, expired: map[string]bool{}}
}

func (s *keyStore) Resolve(ctx context.Context, plaintext string) (*authn.Principal, error) {
	s.calls.Add(1)
	if s.entered != nil {
		s.once.Do(func() { close(s.entered) })
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.down:
		return nil, status.Error(codes.Unavailable, "auth down")
	case s.expired[plaintext]:
		return nil, authn.ErrExpired
	}
	p, ok := s.keys[plaintext]
	if !ok {
		return nil, authn.ErrInvalidCredential
	}
	return p, nil
}

func (s *keyStore) add(plaintext string, p *authn.Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[plaintext] = p
}

func (s *keyStore) revoke(plaintext string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, plaintext)
}

func (s *keyStore) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func TestCachedResolverRevokedKeyStopsWithinTTL(t *testing.T) {
	clk := newClock()
	store := newKeyStore()
	store.add("k", &authn.Principal{Kind: authn.KindAPIKey, Subject: "u", APIKeyID: "id"})
	r := authn.NewCachedResolver(store, authn.CacheOptions{Now: clk.Now})
	ctx := t.Context()

	for range 3 {
		if p, err := r.Resolve(ctx, "k"); err != nil || p.APIKeyID != "id" {
			t.Fatalf("Resolve = %v, %v", p, err)
		}
	}
	if n := store.calls.Load(); n != 1 {
		t.Fatalf("resolver calls %d, want 1 (cached)", n)
	}
	store.revoke("k")
	clk.Advance(29 * time.Second)
	if _, err := r.Resolve(ctx, "k"); err != nil {
		t.Fatalf("within the TTL the cached answer stands: %v", err)
	}
	clk.Advance(time.Second) // 30 s after resolution
	if _, err := r.Resolve(ctx, "k"); !errors.Is(err, authn.ErrInvalidCredential) {
		t.Fatalf("revoked key after 30 s: %v, want ErrInvalidCredential", err)
	}
	if n := store.calls.Load(); n != 2 {
		t.Fatalf("resolver calls %d, want 2", n)
	}
}

func TestCachedResolverEntryNeverOutlivesCredential(t *testing.T) {
	clk := newClock()
	store := newKeyStore()
	store.add("k", &authn.Principal{Kind: authn.KindAPIKey, Subject: "u", ExpiresAt: clk.Now().Add(10 * time.Second)})
	r := authn.NewCachedResolver(store, authn.CacheOptions{Now: clk.Now})
	if _, err := r.Resolve(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	store.mu.Lock()
	store.expired["k"] = true
	store.mu.Unlock()
	if _, err := r.Resolve(t.Context(), "k"); !errors.Is(err, authn.ErrExpired) {
		t.Fatalf("err %v, want ErrExpired", err)
	}
}

func TestCachedResolverNegativeAndErrors(t *testing.T) {
	clk := newClock()
	store := newKeyStore()
	r := authn.NewCachedResolver(store, authn.CacheOptions{Now: clk.Now})
	ctx := t.Context()

	// A rejection is remembered for 5 s.
	for range 3 {
		if _, err := r.Resolve(ctx, "unknown"); !errors.Is(err, authn.ErrInvalidCredential) {
			t.Fatalf("err %v", err)
		}
	}
	if n := store.calls.Load(); n != 1 {
		t.Fatalf("calls %d, want 1 (negative cache)", n)
	}
	store.add("unknown", &authn.Principal{Kind: authn.KindAPIKey, Subject: "u"})
	clk.Advance(5 * time.Second)
	if _, err := r.Resolve(ctx, "unknown"); err != nil {
		t.Fatalf("after the negative TTL: %v", err)
	}

	// An unreachable auth is never cached.
	store.setDown(true)
	for range 2 {
		if _, err := r.Resolve(ctx, "other"); err == nil || errors.Is(err, authn.ErrInvalidCredential) {
			t.Fatalf("err %v, want an outage error", err)
		}
	}
	store.setDown(false)
	store.add("other", &authn.Principal{Kind: authn.KindAPIKey, Subject: "u2"})
	if p, err := r.Resolve(ctx, "other"); err != nil || p.Subject != "u2" {
		t.Fatalf("after the outage: %v %v", p, err)
	}
	if n := store.calls.Load(); n != 5 {
		t.Fatalf("calls %d, want 5", n)
	}
}

func TestCachedResolverSingleflight(t *testing.T) {
	store := newKeyStore()
	store.gate, store.entered = make(chan struct{}), make(chan struct{})
	store.add("k", &authn.Principal{Kind: authn.KindAPIKey, Subject: "u"})
	r := authn.NewCachedResolver(store, authn.CacheOptions{})
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := r.Resolve(context.Background(), "k")
			errs <- err
		}()
	}
	// Let the first call through once it is under way: callers that joined it share its
	// answer, later ones find it in the cache.
	<-store.entered
	close(store.gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if c := store.calls.Load(); c != 1 {
		t.Fatalf("calls %d, want 1", c)
	}
}

// fakeAuthClient answers Authenticate from a function.
type fakeAuthClient struct {
	authv1.AuthServiceClient
	authenticate func(*authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error)
}

func (f fakeAuthClient) Authenticate(_ context.Context, in *authv1.AuthenticateRequest, _ ...grpc.CallOption) (*authv1.AuthenticateResponse, error) {
	return f.authenticate(in)
}

func TestRemoteResolver(t *testing.T) {
	cases := []struct {
		name string
		resp *authv1.AuthenticateResponse
		err  error
		want error // nil: principal
	}{
		{"principal", &authv1.AuthenticateResponse{
			Principal: &authv1.Principal{Kind: authv1.PrincipalKind_PRINCIPAL_KIND_API_KEY, UserId: "u", ApiKeyId: "k", Permissions: []string{"miners:read"}},
			CacheTtl:  durationpb.New(30 * time.Second),
		}, nil, nil},
		{"AUTH_001", nil, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "no"), authn.ErrInvalidCredential},
		{"AUTH_003", nil, errcode.Error(errcode.AuthExpired, codes.Unauthenticated, "expired"), authn.ErrExpired},
		{"not found", nil, status.Error(codes.NotFound, "no"), authn.ErrInvalidCredential},
		{"unavailable", nil, status.Error(codes.Unavailable, "down"), nil},
		{"caller not allowed", nil, status.Error(codes.PermissionDenied, "svc/x not allowed"), nil},
		{"empty answer", &authv1.AuthenticateResponse{}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := authn.NewRemoteResolver(fakeAuthClient{authenticate: func(in *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
				if in.GetCredential() != "hsi_cred" {
					t.Errorf("credential %q", in.GetCredential())
				}
				return tc.resp, tc.err
			}})
			p, err := r.Resolve(t.Context(), "hsi_cred")
			switch {
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
			case tc.err == nil && tc.resp.GetPrincipal() != nil:
				if err != nil || p.Kind != authn.KindAPIKey || p.APIKeyID != "k" || !p.Has("miners:read") {
					t.Fatalf("Resolve = %+v, %v", p, err)
				}
			default: // an outage: an error that is no verdict on the credential
				if err == nil || errors.Is(err, authn.ErrInvalidCredential) || errors.Is(err, authn.ErrExpired) {
					t.Fatalf("err %v, want an outage error", err)
				}
			}
		})
	}
}
