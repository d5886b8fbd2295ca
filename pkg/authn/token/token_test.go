package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hashinsight/platform/pkg/authn"
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

// source is a KeySource whose published keys and failure the test changes; it counts fetches.
type source struct {
	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fail    error
	fetches atomic.Int32
	block   chan struct{} // when set, Keys waits for it
}

func (s *source) Keys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	s.fetches.Add(1)
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	out := make(map[string]ed25519.PublicKey, len(s.keys))
	for k, v := range s.keys {
		out[k] = v
	}
	return out, nil
}

func (s *source) publish(keys ...*SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = map[string]ed25519.PublicKey{}
	for _, k := range keys {
		s.keys[k.ID] = k.Public()
	}
}

func (s *source) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

type fixture struct {
	clock    *clock
	src      *source
	keys     *KeySet
	verifier *Verifier
	issuer   *Issuer
	k1, k2   *SigningKey
	sleeps   []time.Duration
}

// newFixture returns a fixture whose verifier caches cacheSize tokens; edits change the key
// set's options.
func newFixture(t testing.TB, cacheSize int, edits ...func(*KeySetOptions)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), src: &source{}, issuer: NewIssuer(IssuerOptions{})}
	var err error
	if f.k1, err = GenerateSigningKey(); err != nil {
		t.Fatal(err)
	}
	if f.k2, err = GenerateSigningKey(); err != nil {
		t.Fatal(err)
	}
	f.src.publish(f.k1)
	ko := KeySetOptions{Now: f.clock.Now}
	for _, edit := range edits {
		edit(&ko)
	}
	f.keys = NewKeySet(f.src, ko)
	// The rate-limit wait advances the fake clock instead of sleeping.
	f.keys.sleep = func(_ context.Context, d time.Duration) error {
		f.sleeps = append(f.sleeps, d)
		f.clock.Advance(d)
		return nil
	}
	f.verifier = NewVerifier(f.keys, VerifierOptions{Now: f.clock.Now, CacheSize: cacheSize})
	return f
}

func user() *authn.Principal {
	return &authn.Principal{
		Kind: authn.KindUser, Subject: "0b6f3c1e-8d1a-4a57-9f0e-1f2d3c4b5a69", Email: "c@example.com",
		Role: authn.RoleClient, Permissions: authn.PermissionsForRole(authn.RoleClient),
		CustomerIDs: []string{"7f1c2d3e-0000-4000-8000-000000000001"}, SessionID: "sess-1",
	}
}

func (f *fixture) sign(t testing.TB, key *SigningKey, edit func(*Claims)) string {
	t.Helper()
	c := ClaimsFor(user(), "", f.clock.Now(), 15*time.Minute)
	if edit != nil {
		edit(&c)
	}
	s, err := f.issuer.Sign(c, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawSign signs claims without the Issuer's checks, to build tokens it refuses to make.
func rawSign(t testing.TB, method jwt.SigningMethod, claims jwt.Claims, kid string, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerify(t *testing.T) {
	// Cases move the clock up to an hour on: past MaxAge a lookup would start a background
	// refresh, whose rate-limit wait (the fixture's sleep) advances the shared clock under the
	// next case.
	f := newFixture(t, 0, func(o *KeySetOptions) { o.MaxAge = 2 * time.Hour })
	now := f.clock.Now()
	valid := f.sign(t, f.k1, nil)
	parts := strings.Split(valid, ".")

	// Edited claims: the role raised to owner, the signature kept.
	var payload map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &payload)
	payload["role"] = "owner"
	payload["all_cust"] = true
	edited := parts[0] + "." + seg(payload) + "." + parts[2]

	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 0x01
	badSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	algNone := seg(map[string]string{"alg": "none", "typ": "JWT", "kid": f.k1.ID}) + "." + parts[1] + "."
	noneSigned := rawSign(t, jwt.SigningMethodNone, ClaimsFor(user(), "j", now, time.Minute), f.k1.ID, jwt.UnsafeAllowNoneSignatureType)
	// Algorithm confusion: HS256 keyed with the published public key.
	hs := func() string {
		c := ClaimsFor(user(), "j", now, time.Minute)
		c.Issuer, c.Audience = DefaultIssuer, jwt.ClaimStrings{DefaultAudience}
		return rawSign(t, jwt.SigningMethodHS256, c, f.k1.ID, []byte(f.k1.Public()))
	}()
	// Another key under a published key id.
	otherKey := &SigningKey{ID: f.k1.ID, Private: f.k2.Private}

	registered := func(edit func(*Claims)) string {
		c := ClaimsFor(user(), "j", now, 15*time.Minute)
		c.Issuer, c.Audience = DefaultIssuer, jwt.ClaimStrings{DefaultAudience}
		edit(&c)
		return rawSign(t, jwt.SigningMethodEdDSA, c, f.k1.ID, f.k1.Private)
	}

	cases := []struct {
		name    string
		token   string
		advance time.Duration
		want    error // nil: valid
	}{
		{"valid", valid, 0, nil},
		{"valid within leeway after exp", valid, 15*time.Minute + 20*time.Second, nil},
		{"expired", valid, 16 * time.Minute, ErrExpired},
		{"bad signature", badSig, 0, ErrInvalid},
		{"edited claims", edited, 0, ErrInvalid},
		{"alg=none header", algNone, 0, ErrInvalid},
		{"alg=none signed", noneSigned, 0, ErrInvalid},
		{"HS256 with the public key", hs, 0, ErrInvalid},
		{"other key, published kid", f.sign(t, otherKey, nil), 0, ErrInvalid},
		{"unpublished key", f.sign(t, f.k2, nil), 0, ErrInvalid},
		{"no kid", rawSign(t, jwt.SigningMethodEdDSA, ClaimsFor(user(), "j", now, time.Minute), "", f.k1.Private), 0, ErrInvalid},
		{"missing exp", registered(func(c *Claims) { c.ExpiresAt = nil }), 0, ErrInvalid},
		{"missing iat", registered(func(c *Claims) { c.IssuedAt = nil }), 0, ErrInvalid},
		{"lifetime over 15m", registered(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(16 * time.Minute)) }), 0, ErrInvalid},
		{"iat in the future", registered(func(c *Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(5 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(10 * time.Minute))
		}), 0, ErrInvalid},
		{"not yet valid", registered(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute)) }), 0, ErrInvalid},
		{"wrong issuer", registered(func(c *Claims) { c.Issuer = "evil" }), 0, ErrInvalid},
		{"wrong audience", registered(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }), 0, ErrInvalid},
		{"wrong issuer and expired", registered(func(c *Claims) { c.Issuer = "evil" }), time.Hour, ErrInvalid},
		{"not a user token", registered(func(c *Claims) { c.Kind = "service" }), 0, ErrInvalid},
		{"unknown role", registered(func(c *Claims) { c.Role = "root" }), 0, ErrInvalid},
		{"no subject", registered(func(c *Claims) { c.Subject = "" }), 0, ErrInvalid},
		{"garbage", "a.b.c", 0, ErrInvalid},
		{"empty", "", 0, ErrInvalid},
		{"huge", strings.Repeat("a", MaxTokenLen) + ".b.c", 0, ErrInvalid},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], 0, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.mu.Lock()
			f.clock.now = now.Add(tc.advance)
			f.clock.mu.Unlock()
			p, err := f.verifier.Verify(t.Context(), tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				want := user()
				if p.Kind != authn.KindUser || p.Subject != want.Subject || p.Role != want.Role || p.Email != want.Email ||
					p.AllCustomers || len(p.CustomerIDs) != 1 || !p.Has(authn.PermMinersRead) || p.Has(authn.PermMinersWrite) ||
					p.SessionID != "sess-1" || p.TokenID == "" || !p.ExpiresAt.Equal(now.Add(15*time.Minute)) {
					t.Errorf("principal %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", p)
			}
			if !errors.Is(err, tc.want) || (tc.want == ErrInvalid && errors.Is(err, ErrExpired)) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestIssuerRefuses(t *testing.T) {
	f := newFixture(t, 0)
	now := f.clock.Now()
	for name, edit := range map[string]func(*Claims){
		"no subject":   func(c *Claims) { c.Subject = "" },
		"no exp":       func(c *Claims) { c.ExpiresAt = nil },
		"no iat":       func(c *Claims) { c.IssuedAt = nil },
		"16m lifetime": func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(16 * time.Minute)) },
	} {
		c := ClaimsFor(user(), "", now, time.Minute)
		edit(&c)
		if _, err := f.issuer.Sign(c, f.k1); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	if _, err := f.issuer.Sign(ClaimsFor(user(), "", now, time.Minute), &SigningKey{ID: "x"}); err == nil {
		t.Error("signed without a private key")
	}
	if c := ClaimsFor(user(), "", now, time.Hour); c.ExpiresAt.Sub(c.IssuedAt.Time) != MaxLifetime {
		t.Error("ClaimsFor does not cap the lifetime")
	}
}

func TestKeySetLazyAndRotation(t *testing.T) {
	f := newFixture(t, 0)
	if n := f.src.fetches.Load(); n != 0 {
		t.Fatalf("NewKeySet fetched %d times; want lazy", n)
	}
	ctx := t.Context()
	old := f.sign(t, f.k1, nil)
	if _, err := f.verifier.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	if n := f.src.fetches.Load(); n != 1 {
		t.Fatalf("fetches %d, want 1", n)
	}

	// Rotation: auth publishes k2 next to k1 and signs with k2.
	f.src.publish(f.k1, f.k2)
	f.clock.Advance(2 * time.Second)
	fresh := f.sign(t, f.k2, nil)
	if _, err := f.verifier.Verify(ctx, fresh); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if n := f.src.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d, want 2 (one refresh on the unknown kid)", n)
	}
	if _, err := f.verifier.Verify(ctx, old); err != nil {
		t.Fatalf("token of the previous key after rotation: %v (rotation must not log anyone out)", err)
	}
	if n := f.src.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d, want 2", n)
	}

	// k1 is withdrawn: once the set is refreshed its tokens stop verifying.
	f.src.publish(f.k2)
	f.clock.Advance(2 * time.Second)
	if err := f.keys.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.Verify(ctx, old); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of a withdrawn key: %v, want ErrInvalid", err)
	}
	if _, err := f.verifier.Verify(ctx, fresh); err != nil {
		t.Fatal(err)
	}
}

func TestKeySetUnknownKidRefreshesOnceAndRateLimits(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	forged := f.sign(t, f.k2, nil) // k2 is never published
	if _, err := f.verifier.Verify(ctx, forged); !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := f.src.fetches.Load(); n != 1 {
		t.Fatalf("fetches %d, want 1", n)
	}
	// Right away again: the refresh waits for the 1 s slot instead of hammering auth.
	if _, err := f.verifier.Verify(ctx, forged); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := f.src.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d, want 2", n)
	}
	if len(f.sleeps) != 1 || f.sleeps[0] != time.Second {
		t.Fatalf("rate-limit waits %v, want [1s]", f.sleeps)
	}
}

func TestKeySetSingleflight(t *testing.T) {
	f := newFixture(t, 0)
	f.src.block = make(chan struct{})
	ctx := t.Context()
	tok := f.sign(t, f.k1, nil)
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := f.verifier.Verify(ctx, tok)
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.src.fetches.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(f.src.block)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.src.fetches.Load(); got != 1 {
		t.Fatalf("fetches %d, want 1 for %d concurrent first lookups", got, n)
	}
}

func TestKeySetKeepsKeysWhenRefreshFails(t *testing.T) {
	f := newFixture(t, -1)
	ctx := t.Context()
	tok := f.sign(t, f.k1, nil)
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.src.setFail(errors.New("auth down"))
	f.clock.Advance(DefaultMaxAge + time.Second) // stale: a background refresh fails
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		t.Fatalf("known key while auth is down: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	if err := f.keys.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded against a failing source")
	}
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		t.Fatalf("known key after a failed refresh: %v", err)
	}
	// An unknown kid cannot be decided: unavailable, not invalid.
	f.clock.Advance(2 * time.Second)
	_, err := f.verifier.Verify(ctx, f.sign(t, f.k2, nil))
	if !errors.Is(err, authn.ErrUnavailable) || errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown kid while auth is down: %v, want ErrUnavailable", err)
	}
}

func TestKeySetNothingCachedAndSourceDown(t *testing.T) {
	f := newFixture(t, 0)
	f.src.setFail(errors.New("connection refused"))
	_, err := f.verifier.Verify(t.Context(), f.sign(t, f.k1, nil))
	if !errors.Is(err, authn.ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
}

func TestVerifiedTokenCache(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	tok := f.sign(t, f.k1, nil)
	p1, err := f.verifier.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := f.verifier.Verify(ctx, tok)
	if err != nil || p2.Subject != p1.Subject || p1 == p2 {
		t.Fatalf("cached verify: %v %p %p", err, p1, p2)
	}
	if f.verifier.cache.Len() != 1 {
		t.Fatalf("cache len %d", f.verifier.cache.Len())
	}
	// The entry expires with the token.
	f.clock.Advance(15*time.Minute + 31*time.Second)
	if _, err := f.verifier.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("after exp: %v, want ErrExpired", err)
	}
}

func TestVerifyContextCanceled(t *testing.T) {
	f := newFixture(t, 0)
	f.src.block = make(chan struct{})
	defer close(f.src.block)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.verifier.Verify(ctx, f.sign(t, f.k1, nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func FuzzVerify(f *testing.F) {
	fx := newFixture(f, -1)
	valid := fx.sign(f, fx.k1, nil)
	parts := strings.Split(valid, ".")
	f.Add(valid[:len(valid)-2] + "AA")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(seg(map[string]string{"alg": "none", "kid": fx.k1.ID}) + "." + parts[1] + ".")
	f.Add(parts[0] + "." + seg(map[string]any{"sub": "x", "role": "owner"}) + "." + parts[2])
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		if s == valid {
			return
		}
		p, err := fx.verifier.Verify(context.Background(), s)
		if err == nil || p != nil {
			t.Fatalf("verified %q: %+v", s, p)
		}
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// BenchmarkVerify is the per-request cost of an access token: the same token is presented
// again and again (a session's requests), so after the first all are served by the
// verified-token cache. No network.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, 0)
	tok := f.sign(b, f.k1, nil)
	ctx := context.Background()
	if _, err := f.verifier.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel is BenchmarkVerify from every core, 1,000 distinct sessions.
func BenchmarkVerifyParallel(b *testing.B) {
	f := newFixture(b, 0)
	ctx := context.Background()
	toks := make([]string, 1000)
	for i := range toks {
		toks[i] = f.sign(b, f.k1, nil)
		if _, err := f.verifier.Verify(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := f.verifier.Verify(ctx, toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkVerifyCold is the first presentation of a token: JWT parsing, claims checks and the
// Ed25519 signature verification (cache disabled).
func BenchmarkVerifyCold(b *testing.B) {
	f := newFixture(b, -1)
	tok := f.sign(b, f.k1, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify is the signature check alone, for comparison.
func BenchmarkEd25519Verify(b *testing.B) {
	f := newFixture(b, -1)
	msg := []byte(strings.Repeat("x", 400))
	sig := ed25519.Sign(f.k1.Private, msg)
	pub := f.k1.Public()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad")
		}
	}
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b, -1)
	c := ClaimsFor(user(), "", f.clock.Now(), 15*time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.issuer.Sign(c, f.k1); err != nil {
			b.Fatal(err)
		}
	}
}
