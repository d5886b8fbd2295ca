package apikeys_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/services/auth/internal/apikeys"
	"github.com/hashinsight/platform/services/auth/internal/apikeys/apikeyspg"
	"github.com/hashinsight/platform/services/auth/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const env = "test"

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingStore counts every call into the store, and the last_used_at writes separately.
type countingStore struct {
	apikeys.Store
	calls   atomic.Int64
	touches atomic.Int64
}

func (s *countingStore) CreateKey(ctx context.Context, k apikeys.Key, h []byte) (apikeys.Key, error) {
	s.calls.Add(1)
	return s.Store.CreateKey(ctx, k, h)
}

func (s *countingStore) GetKey(ctx context.Context, id string) (apikeys.Key, error) {
	s.calls.Add(1)
	return s.Store.GetKey(ctx, id)
}

func (s *countingStore) KeyByHash(ctx context.Context, h []byte) (apikeys.Key, error) {
	s.calls.Add(1)
	return s.Store.KeyByHash(ctx, h)
}

func (s *countingStore) ListKeys(ctx context.Context, q apikeys.KeyQuery) ([]apikeys.Key, error) {
	s.calls.Add(1)
	return s.Store.ListKeys(ctx, q)
}

func (s *countingStore) RevokeKey(ctx context.Context, id string, at time.Time) (apikeys.Key, error) {
	s.calls.Add(1)
	return s.Store.RevokeKey(ctx, id, at)
}

func (s *countingStore) RevokeUserKeys(ctx context.Context, userID string, at time.Time) (int64, error) {
	s.calls.Add(1)
	return s.Store.RevokeUserKeys(ctx, userID, at)
}

func (s *countingStore) RotateKey(ctx context.Context, id string, fn func(apikeys.Key) (apikeys.Rotation, error)) (apikeys.Key, apikeys.Key, error) {
	s.calls.Add(1)
	return s.Store.RotateKey(ctx, id, fn)
}

func (s *countingStore) TouchKey(ctx context.Context, id string, at time.Time, d time.Duration) error {
	s.calls.Add(1)
	s.touches.Add(1)
	return s.Store.TouchKey(ctx, id, at, d)
}

func (s *countingStore) CreateCollectorToken(ctx context.Context, t apikeys.CollectorToken, h []byte) (apikeys.CollectorToken, error) {
	s.calls.Add(1)
	return s.Store.CreateCollectorToken(ctx, t, h)
}

func (s *countingStore) GetCollectorToken(ctx context.Context, id string) (apikeys.CollectorToken, error) {
	s.calls.Add(1)
	return s.Store.GetCollectorToken(ctx, id)
}

func (s *countingStore) CollectorTokenByHash(ctx context.Context, h []byte) (apikeys.CollectorToken, error) {
	s.calls.Add(1)
	return s.Store.CollectorTokenByHash(ctx, h)
}

func (s *countingStore) ListCollectorTokens(ctx context.Context, q apikeys.TokenQuery) ([]apikeys.CollectorToken, error) {
	s.calls.Add(1)
	return s.Store.ListCollectorTokens(ctx, q)
}

func (s *countingStore) RevokeCollectorToken(ctx context.Context, id string, at time.Time) (apikeys.CollectorToken, error) {
	s.calls.Add(1)
	return s.Store.RevokeCollectorToken(ctx, id, at)
}

func (s *countingStore) TouchCollectorToken(ctx context.Context, id string, at time.Time, d time.Duration) error {
	s.calls.Add(1)
	s.touches.Add(1)
	return s.Store.TouchCollectorToken(ctx, id, at, d)
}

type fixture struct {
	pool   *pgxpool.Pool
	store  *countingStore
	svc    *apikeys.Service
	clock  *fakeClock
	admin  apikeys.Actor
	broker apikeys.Actor
	other  apikeys.Actor // a second broker
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t, pgtest.Options{Schema: "auth", Migrations: migrations.FS, Role: true})
	hasher, err := apikey.NewHasher(strings.Repeat("s", 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		pool:  pool,
		store: &countingStore{Store: apikeyspg.New(pool)},
		clock: &fakeClock{now: time.Date(2025, 10, 3, 12, 0, 0, 0, time.UTC)},
	}
	f.svc, err = apikeys.New(apikeys.Options{Store: f.store, Hasher: hasher, Env: env, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.admin = apikeys.Actor{UserID: f.user(t, "admin@example.com", authn.RoleAdmin), Permissions: authn.PermissionsForRole(authn.RoleAdmin)}
	f.broker = apikeys.Actor{UserID: f.user(t, "broker@example.com", authn.RoleBroker), Permissions: authn.PermissionsForRole(authn.RoleBroker)}
	f.other = apikeys.Actor{UserID: f.user(t, "other@example.com", authn.RoleBroker), Permissions: authn.PermissionsForRole(authn.RoleBroker)}
	return f
}

// user inserts a user row directly (the users store is not this package's concern).
func (f *fixture) user(t *testing.T, email, role string) string {
	t.Helper()
	var id string
	err := f.pool.QueryRow(t.Context(),
		`INSERT INTO users (email, password_hash, role) VALUES ($1, 'x', $2) RETURNING id::text`, email, role).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) create(t *testing.T, a apikeys.Actor, name string, scopes []string, ttl time.Duration) (string, apikeys.Key) {
	t.Helper()
	plain, k, err := f.svc.Create(t.Context(), a, name, scopes, ttl)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return plain, k
}

func (f *fixture) authOK(t *testing.T, plain string) apikeys.Resolved {
	t.Helper()
	r, err := f.svc.Authenticate(t.Context(), plain)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return r
}

func (f *fixture) authErr(t *testing.T, plain string, want error) {
	t.Helper()
	if _, err := f.svc.Authenticate(t.Context(), plain); !errors.Is(err, want) {
		t.Fatalf("Authenticate err = %v, want %v", err, want)
	}
}

func TestCreateAuthenticate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	plain, k := f.create(t, f.broker, "  ci pipeline ", []string{"miners:read", "billing:read", "miners:read"}, 0)

	if !strings.HasPrefix(plain, "hsi_test_key_") || len(plain) != len("hsi_test_key_")+apikey.RandomLen+apikey.ChecksumLen {
		t.Fatalf("plaintext does not have the format: %d chars", len(plain))
	}
	if !strings.HasPrefix(plain, k.DisplayPrefix) || len(k.DisplayPrefix) != len("hsi_test_key_")+apikey.PrefixLen {
		t.Fatalf("display prefix %q", k.DisplayPrefix)
	}
	if k.ID == "" || k.UserID != f.broker.UserID || k.Name != "ci pipeline" ||
		!slices.Equal(k.Scopes, []string{"billing:read", "miners:read"}) ||
		!k.CreatedAt.Equal(now) || !k.ExpiresAt.Equal(now.Add(apikeys.DefaultTTL)) ||
		!k.RevokedAt.IsZero() || !k.LastUsedAt.IsZero() || k.State(now) != apikeys.StateActive {
		t.Fatalf("created key %+v", k)
	}

	r := f.authOK(t, plain)
	want := apikeys.Resolved{Kind: apikeys.KindAPIKey, KeyID: k.ID, UserID: f.broker.UserID,
		Scopes: []string{"billing:read", "miners:read"}, ExpiresAt: k.ExpiresAt}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Fatalf("Resolved = %+v, want %+v", r, want)
	}
	if err := r.CheckSite(""); !errors.Is(err, apikeys.ErrSiteMismatch) {
		t.Fatal("an API key passed a collector site check")
	}

	// Explicit lifetimes.
	_, k30 := f.create(t, f.broker, "short", []string{"miners:read"}, 30*24*time.Hour)
	if !k30.ExpiresAt.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Fatalf("ExpiresAt %v", k30.ExpiresAt)
	}
	_, kMax := f.create(t, f.broker, "max", []string{"miners:read"}, apikeys.MaxTTL)
	if !kMax.ExpiresAt.Equal(now.Add(apikeys.MaxTTL)) {
		t.Fatalf("ExpiresAt %v", kMax.ExpiresAt)
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	tests := []struct {
		name    string
		creator apikeys.Actor
		keyName string
		scopes  []string
		ttl     time.Duration
		want    error
	}{
		{"scope beyond creator", f.broker, "k", []string{"miners:read", "users:admin"}, 0, apikeys.ErrScopeExceeds},
		{"collector scope beyond broker", f.broker, "k", []string{"collector:write"}, 0, apikeys.ErrScopeExceeds},
		{"no permissions at all", apikeys.Actor{UserID: f.broker.UserID}, "k", []string{"miners:read"}, 0, apikeys.ErrScopeExceeds},
		{"empty scopes", f.broker, "k", nil, 0, apikeys.ErrInvalidArgument},
		{"unknown permission", f.admin, "k", []string{"miners:fly"}, 0, apikeys.ErrInvalidArgument},
		{"empty name", f.broker, "   ", []string{"miners:read"}, 0, apikeys.ErrInvalidArgument},
		{"long name", f.broker, strings.Repeat("n", 129), []string{"miners:read"}, 0, apikeys.ErrInvalidArgument},
		{"ttl over a year", f.broker, "k", []string{"miners:read"}, apikeys.MaxTTL + time.Second, apikeys.ErrInvalidArgument},
		{"negative ttl", f.broker, "k", []string{"miners:read"}, -time.Second, apikeys.ErrInvalidArgument},
		{"owner does not exist", apikeys.Actor{UserID: "0b7e2f7c-2d2b-4f43-9e43-7f4d0e3d1c9a",
			Permissions: []string{"miners:read"}}, "k", []string{"miners:read"}, 0, apikeys.ErrUnknownUser},
		{"owner not a uuid", apikeys.Actor{UserID: "operator/alice", Permissions: []string{"miners:read"}},
			"k", []string{"miners:read"}, 0, apikeys.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := f.svc.Create(ctx, tt.creator, tt.keyName, tt.scopes, tt.ttl); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// Keys for someone else: admin only, and within the owner's permissions too.
	if _, _, err := f.svc.CreateFor(ctx, f.broker, f.other, "k", []string{"miners:read"}, 0); !errors.Is(err, apikeys.ErrPermissionDenied) {
		t.Fatalf("broker creating for another user: %v", err)
	}
	if _, _, err := f.svc.CreateFor(ctx, f.admin, f.broker, "k", []string{"audit:read"}, 0); !errors.Is(err, apikeys.ErrScopeExceeds) {
		t.Fatalf("admin granting the broker a scope it lacks: %v", err)
	}
	plain, k, err := f.svc.CreateFor(ctx, f.admin, f.broker, "k", []string{"miners:write"}, 0)
	if err != nil || k.UserID != f.broker.UserID {
		t.Fatalf("admin creating for broker: %+v, %v", k, err)
	}
	if r := f.authOK(t, plain); r.UserID != f.broker.UserID {
		t.Fatalf("resolved owner %s", r.UserID)
	}
}

func TestAuthenticateRejectsBeforeLookup(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	plain, _ := f.create(t, f.admin, "k", []string{"miners:read"}, 0)
	flipped := []byte(plain)
	if flipped[20] == 'a' {
		flipped[20] = 'b'
	} else {
		flipped[20] = 'a'
	}
	prodKey, _, err := apikey.Generate("prod", apikey.KindKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"garbage", "not-a-key"},
		{"jwt", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2ln"},
		{"truncated", plain[:len(plain)-1]},
		{"extended", plain + "0"},
		{"checksum fails", string(flipped)},
		{"kind swapped", strings.Replace(plain, "_key_", "_col_", 1)},
		{"other environment", prodKey},
		{"huge", strings.Repeat("a", 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.store.calls.Load()
			f.authErr(t, tc.in, apikeys.ErrInvalidKey)
			if n := f.store.calls.Load() - before; n != 0 {
				t.Fatalf("%d store calls for a credential that cannot be valid", n)
			}
		})
	}
	// A well-formed key that was never issued is looked up (once) and is invalid.
	unknown, _, err := apikey.Generate(env, apikey.KindKey)
	if err != nil {
		t.Fatal(err)
	}
	before := f.store.calls.Load()
	f.authErr(t, unknown, apikeys.ErrInvalidKey)
	if n := f.store.calls.Load() - before; n != 1 {
		t.Fatalf("%d store calls for a well-formed unknown key, want 1", n)
	}
	unknownCol, _, _ := apikey.Generate(env, apikey.KindCollector)
	f.authErr(t, unknownCol, apikeys.ErrInvalidKey)
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	plain, k := f.create(t, f.broker, "k", []string{"miners:read"}, 0)
	f.authOK(t, plain)

	if _, err := f.svc.Revoke(ctx, k.ID, f.other); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("another user revoking: %v", err)
	}
	if _, err := f.svc.Revoke(ctx, "not-a-uuid", f.broker); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("malformed id: %v", err)
	}
	if _, err := f.svc.Revoke(ctx, "0b7e2f7c-2d2b-4f43-9e43-7f4d0e3d1c9a", f.admin); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	f.authOK(t, plain)

	revoked, err := f.svc.Revoke(ctx, k.ID, f.broker)
	if err != nil {
		t.Fatal(err)
	}
	if !revoked.RevokedAt.Equal(f.clock.Now()) || revoked.State(f.clock.Now()) != apikeys.StateRevoked {
		t.Fatalf("revoked key %+v", revoked)
	}
	f.authErr(t, plain, apikeys.ErrRevoked)

	// Idempotent: the first revocation time stays.
	f.clock.Advance(time.Hour)
	again, err := f.svc.Revoke(ctx, k.ID, f.admin)
	if err != nil || !again.RevokedAt.Equal(revoked.RevokedAt) {
		t.Fatalf("second revoke: %+v, %v", again, err)
	}

	// Admins revoke anybody's keys; RevokeUserKeys revokes them all.
	p1, _ := f.create(t, f.other, "a", []string{"miners:read"}, 0)
	p2, _ := f.create(t, f.other, "b", []string{"miners:read"}, 0)
	n, err := f.svc.RevokeUserKeys(ctx, f.other.UserID)
	if err != nil || n != 2 {
		t.Fatalf("RevokeUserKeys = %d, %v", n, err)
	}
	f.authErr(t, p1, apikeys.ErrRevoked)
	f.authErr(t, p2, apikeys.ErrRevoked)
}

func TestRotate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	oldPlain, old := f.create(t, f.broker, "deploy", []string{"miners:read", "sla:read"}, 0)
	f.clock.Advance(24 * time.Hour)
	rotatedAt := f.clock.Now()

	if _, _, _, err := f.svc.Rotate(ctx, old.ID, f.other, apikeys.DefaultOverlap); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("another user rotating: %v", err)
	}
	if _, _, _, err := f.svc.Rotate(ctx, old.ID, f.broker, apikeys.MaxOverlap+time.Second); !errors.Is(err, apikeys.ErrInvalidArgument) {
		t.Fatalf("overlap too long: %v", err)
	}

	newPlain, newKey, prev, err := f.svc.Rotate(ctx, old.ID, f.broker, apikeys.DefaultOverlap)
	if err != nil {
		t.Fatal(err)
	}
	overlapEnd := rotatedAt.Add(apikeys.DefaultOverlap)
	switch {
	case newPlain == oldPlain || newKey.ID == old.ID:
		t.Fatal("rotation returned the old key")
	case newKey.UserID != old.UserID || newKey.Name != old.Name || !slices.Equal(newKey.Scopes, old.Scopes):
		t.Fatalf("successor %+v does not keep owner, name and scopes of %+v", newKey, old)
	case newKey.RotatedFromID != old.ID || prev.RotatedToID != newKey.ID:
		t.Fatalf("links: new.from=%s old.to=%s", newKey.RotatedFromID, prev.RotatedToID)
	case !newKey.ExpiresAt.Equal(rotatedAt.Add(apikeys.DefaultTTL)):
		t.Fatalf("successor expires %v, want the old key's lifetime from now", newKey.ExpiresAt)
	case !prev.ExpiresAt.Equal(overlapEnd) || !prev.OverlapUntil.Equal(overlapEnd):
		t.Fatalf("old key expires %v (overlap %v), want %v", prev.ExpiresAt, prev.OverlapUntil, overlapEnd)
	case prev.State(rotatedAt) != apikeys.StateRotated || newKey.State(rotatedAt) != apikeys.StateActive:
		t.Fatalf("states old=%s new=%s", prev.State(rotatedAt), newKey.State(rotatedAt))
	}

	// Both valid during the overlap.
	if r := f.authOK(t, oldPlain); r.KeyID != old.ID || !r.ExpiresAt.Equal(overlapEnd) {
		t.Fatalf("old key resolved %+v", r)
	}
	if r := f.authOK(t, newPlain); r.KeyID != newKey.ID {
		t.Fatalf("new key resolved %+v", r)
	}
	f.clock.Advance(apikeys.DefaultOverlap - time.Second)
	f.authOK(t, oldPlain)
	f.authOK(t, newPlain)
	// Then the old one expires and the new one carries on.
	f.clock.Advance(time.Second)
	f.authErr(t, oldPlain, apikeys.ErrExpired)
	f.authOK(t, newPlain)

	// A rotated, expired or revoked key cannot be rotated again.
	if _, _, _, err := f.svc.Rotate(ctx, old.ID, f.broker, apikeys.DefaultOverlap); !errors.Is(err, apikeys.ErrInactive) {
		t.Fatalf("rotating the expired old key: %v", err)
	}
	if _, err := f.svc.Revoke(ctx, newKey.ID, f.broker); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.svc.Rotate(ctx, newKey.ID, f.broker, apikeys.DefaultOverlap); !errors.Is(err, apikeys.ErrInactive) {
		t.Fatalf("rotating a revoked key: %v", err)
	}
}

func TestRotateOverlapEdges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()

	// Overlap 0 ends the old key at once.
	p0, k0 := f.create(t, f.admin, "zero", []string{"miners:read"}, 0)
	np0, _, _, err := f.svc.Rotate(ctx, k0.ID, f.admin, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.authErr(t, p0, apikeys.ErrExpired)
	f.authOK(t, np0)

	// The overlap never extends a key past its own expiry; the successor keeps its lifetime.
	p2, k2 := f.create(t, f.admin, "two days", []string{"miners:read"}, 48*time.Hour)
	f.clock.Advance(24 * time.Hour)
	_, n2, prev, err := f.svc.Rotate(ctx, k2.ID, f.admin, apikeys.DefaultOverlap)
	if err != nil {
		t.Fatal(err)
	}
	if !prev.ExpiresAt.Equal(k2.ExpiresAt) || !n2.ExpiresAt.Equal(f.clock.Now().Add(48*time.Hour)) {
		t.Fatalf("old expires %v (want %v), new expires %v", prev.ExpiresAt, k2.ExpiresAt, n2.ExpiresAt)
	}
	f.clock.Advance(24 * time.Hour)
	f.authErr(t, p2, apikeys.ErrExpired)

	// Concurrent rotations of one key: exactly one wins.
	_, k3 := f.create(t, f.admin, "race", []string{"miners:read"}, 0)
	var wg sync.WaitGroup
	var wins, inactive atomic.Int64
	for range 5 {
		wg.Go(func() {
			_, _, _, err := f.svc.Rotate(context.Background(), k3.ID, f.admin, apikeys.DefaultOverlap)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, apikeys.ErrInactive):
				inactive.Add(1)
			default:
				t.Errorf("rotate: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || inactive.Load() != 4 {
		t.Fatalf("%d rotations succeeded, %d were refused; want 1 and 4", wins.Load(), inactive.Load())
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	plain, k := f.create(t, f.broker, "hour", []string{"miners:read"}, time.Hour)
	f.clock.Advance(time.Hour - time.Microsecond)
	f.authOK(t, plain)
	f.clock.Advance(time.Microsecond)
	f.authErr(t, plain, apikeys.ErrExpired)

	keys, _, err := f.svc.List(t.Context(), f.broker, apikeys.ListFilter{})
	if err != nil || len(keys) != 0 {
		t.Fatalf("active keys %v, %v", keys, err)
	}
	keys, _, err = f.svc.List(t.Context(), f.broker, apikeys.ListFilter{IncludeInactive: true})
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].State(f.clock.Now()) != apikeys.StateExpired {
		t.Fatalf("all keys %v, %v", keys, err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	var secrets []string
	var adminIDs, brokerIDs []string
	for i := range 3 {
		p, k := f.create(t, f.admin, fmt.Sprintf("admin-%d", i), []string{"audit:read"}, 0)
		secrets, adminIDs = append(secrets, p), append(adminIDs, k.ID)
		f.clock.Advance(time.Second)
	}
	for i := range 2 {
		p, k := f.create(t, f.broker, fmt.Sprintf("broker-%d", i), []string{"miners:read"}, 0)
		secrets, brokerIDs = append(secrets, p), append(brokerIDs, k.ID)
		f.clock.Advance(time.Second)
	}
	// Same creation instant for two keys: the id breaks the tie in the keyset.
	p, k := f.create(t, f.broker, "broker-2", []string{"miners:read"}, 0)
	secrets, brokerIDs = append(secrets, p), append(brokerIDs, k.ID)
	p, k = f.create(t, f.broker, "broker-3", []string{"miners:read"}, 0)
	secrets, brokerIDs = append(secrets, p), append(brokerIDs, k.ID)
	revoked := brokerIDs[0]
	if _, err := f.svc.Revoke(ctx, revoked, f.broker); err != nil {
		t.Fatal(err)
	}

	listAll := func(t *testing.T, a apikeys.Actor, flt apikeys.ListFilter) []apikeys.Key {
		t.Helper()
		flt.PageSize = 2
		var out []apikeys.Key
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("too many pages")
			}
			keys, next, err := f.svc.List(ctx, a, flt)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 2 {
				t.Fatalf("page of %d", len(keys))
			}
			out = append(out, keys...)
			if next == "" {
				return out
			}
			flt.PageToken = next
		}
	}
	ids := func(keys []apikeys.Key) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	sameSet := func(a, b []string) bool {
		a, b = slices.Clone(a), slices.Clone(b)
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(a, b)
	}

	brokerActive := listAll(t, f.broker, apikeys.ListFilter{})
	if !sameSet(ids(brokerActive), brokerIDs[1:]) {
		t.Fatalf("broker's active keys %v, want %v", ids(brokerActive), brokerIDs[1:])
	}
	brokerAll := listAll(t, f.broker, apikeys.ListFilter{IncludeInactive: true})
	if !sameSet(ids(brokerAll), brokerIDs) {
		t.Fatalf("broker's keys %v, want %v", ids(brokerAll), brokerIDs)
	}
	for i := 1; i < len(brokerAll); i++ {
		if brokerAll[i].CreatedAt.After(brokerAll[i-1].CreatedAt) {
			t.Fatal("not newest first")
		}
	}
	everything := listAll(t, f.admin, apikeys.ListFilter{IncludeInactive: true})
	if !sameSet(ids(everything), append(slices.Clone(adminIDs), brokerIDs...)) {
		t.Fatalf("admin sees %d keys, want 7", len(everything))
	}
	if got := listAll(t, f.admin, apikeys.ListFilter{UserID: f.broker.UserID, IncludeInactive: true}); !sameSet(ids(got), brokerIDs) {
		t.Fatalf("admin listing the broker's keys: %v", ids(got))
	}
	if _, _, err := f.svc.List(ctx, f.broker, apikeys.ListFilter{UserID: f.admin.UserID}); !errors.Is(err, apikeys.ErrPermissionDenied) {
		t.Fatalf("broker listing admin's keys: %v", err)
	}
	if _, _, err := f.svc.List(ctx, f.broker, apikeys.ListFilter{PageToken: "bogus"}); !errors.Is(err, apikeys.ErrInvalidArgument) {
		t.Fatalf("bad page token: %v", err)
	}

	// No secret anywhere in what List returns, nor in the table.
	dump := fmt.Sprintf("%+v", everything)
	var table string
	if err := f.pool.QueryRow(ctx, `SELECT string_agg(t::text, ' ') FROM api_keys t`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		secretPart := s[len("hsi_test_key_")+apikey.PrefixLen:]
		if strings.Contains(dump, secretPart) || strings.Contains(table, secretPart) {
			t.Fatal("a key's secret part appears in a listing or in the table")
		}
	}
}

func TestCollectorTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	now := f.clock.Now()

	if _, _, err := f.svc.CreateCollectorToken(ctx, f.broker, "site-a", "edge-1", 0); !errors.Is(err, apikeys.ErrScopeExceeds) {
		t.Fatalf("broker creating a collector token: %v", err)
	}
	for _, site := range []string{"", "  ", strings.Repeat("s", 129)} {
		if _, _, err := f.svc.CreateCollectorToken(ctx, f.admin, site, "edge", 0); !errors.Is(err, apikeys.ErrInvalidArgument) {
			t.Fatalf("site %q: %v", site, err)
		}
	}

	plain, tok, err := f.svc.CreateCollectorToken(ctx, f.admin, "site-a", "edge-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "hsi_test_col_") || !strings.HasPrefix(plain, tok.DisplayPrefix) ||
		tok.SiteID != "site-a" || tok.CreatedBy != f.admin.UserID || !tok.ExpiresAt.IsZero() || !tok.CreatedAt.Equal(now) {
		t.Fatalf("token %+v", tok)
	}
	r := f.authOK(t, plain)
	if r.Kind != apikeys.KindCollector || r.TokenID != tok.ID || r.SiteID != "site-a" ||
		!slices.Equal(r.Scopes, []string{authn.PermCollectorWrite}) || r.KeyID != "" {
		t.Fatalf("resolved %+v", r)
	}
	if err := r.CheckSite("site-a"); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckSite("site-b"); !errors.Is(err, apikeys.ErrSiteMismatch) {
		t.Fatalf("other site: %v", err)
	}

	// Expiring token.
	f.clock.Advance(time.Second)
	pExp, _, err := f.svc.CreateCollectorToken(ctx, f.admin, "site-b", "edge-2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.authOK(t, pExp)

	// An operator with collector:write (every permission) creates and lists too.
	f.clock.Advance(time.Second)
	operator := apikeys.Actor{UserID: "operator/alice", Permissions: authn.AllPermissions()}
	pOp, opTok, err := f.svc.CreateCollectorToken(ctx, operator, "site-a", "edge-3", 0)
	if err != nil || opTok.CreatedBy != "operator/alice" {
		t.Fatalf("operator token %+v, %v", opTok, err)
	}

	list := func(a apikeys.Actor, flt apikeys.TokenFilter) []string {
		t.Helper()
		toks, _, err := f.svc.ListCollectorTokens(ctx, a, flt)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, t := range toks {
			out = append(out, t.Name)
		}
		return out
	}
	if got := list(f.admin, apikeys.TokenFilter{}); !slices.Equal(got, []string{"edge-3", "edge-2", "edge-1"}) {
		t.Fatalf("admin list %v", got)
	}
	if got := list(f.admin, apikeys.TokenFilter{SiteID: "site-a"}); !slices.Equal(got, []string{"edge-3", "edge-1"}) {
		t.Fatalf("site-a list %v", got)
	}
	if got := list(f.broker, apikeys.TokenFilter{}); len(got) != 0 {
		t.Fatalf("broker sees %v", got)
	}

	f.clock.Advance(time.Hour - time.Second)
	f.authErr(t, pExp, apikeys.ErrExpired)
	if got := list(f.admin, apikeys.TokenFilter{}); !slices.Equal(got, []string{"edge-3", "edge-1"}) {
		t.Fatalf("active list after expiry %v", got)
	}
	if got := list(f.admin, apikeys.TokenFilter{IncludeInactive: true}); len(got) != 3 {
		t.Fatalf("inactive list %v", got)
	}

	// Revocation: creator or admin only.
	if _, err := f.svc.RevokeCollectorToken(ctx, tok.ID, f.broker); !errors.Is(err, apikeys.ErrNotFound) {
		t.Fatalf("broker revoking: %v", err)
	}
	if _, err := f.svc.RevokeCollectorToken(ctx, opTok.ID, apikeys.Actor{UserID: "operator/alice"}); err != nil {
		t.Fatalf("creator revoking: %v", err)
	}
	f.authErr(t, pOp, apikeys.ErrRevoked)
	if _, err := f.svc.RevokeCollectorToken(ctx, tok.ID, f.admin); err != nil {
		t.Fatal(err)
	}
	f.authErr(t, plain, apikeys.ErrRevoked)
}

func TestLastUsedThrottled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	plain, k := f.create(t, f.broker, "busy", []string{"miners:read"}, 0)
	colPlain, tok, err := f.svc.CreateCollectorToken(ctx, f.admin, "site-a", "edge", 0)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() (key, token time.Time) {
		t.Helper()
		k, err := f.svc.Get(ctx, k.ID, f.broker)
		if err != nil {
			t.Fatal(err)
		}
		toks, _, err := f.svc.ListCollectorTokens(ctx, f.admin, apikeys.TokenFilter{})
		if err != nil || len(toks) != 1 || toks[0].ID != tok.ID {
			t.Fatalf("tokens %v, %v", toks, err)
		}
		return k.LastUsedAt, toks[0].LastUsedAt
	}
	start := f.clock.Now()

	for range 5 {
		f.authOK(t, plain)
		f.authOK(t, colPlain)
	}
	if n := f.store.touches.Load(); n != 2 {
		t.Fatalf("%d last_used_at writes for 10 requests in one instant, want 2", n)
	}
	if kl, tl := lastUsed(); !kl.Equal(start) || !tl.Equal(start) {
		t.Fatalf("last used %v / %v, want %v", kl, tl, start)
	}

	f.clock.Advance(apikeys.TouchInterval - time.Second)
	f.authOK(t, plain)
	f.authOK(t, colPlain)
	if n := f.store.touches.Load(); n != 2 {
		t.Fatalf("%d writes within the interval, want still 2", n)
	}

	f.clock.Advance(time.Second)
	f.authOK(t, plain)
	f.authOK(t, colPlain)
	if n := f.store.touches.Load(); n != 4 {
		t.Fatalf("%d writes after the interval, want 4", n)
	}
	if kl, tl := lastUsed(); !kl.Equal(f.clock.Now()) || !tl.Equal(f.clock.Now()) {
		t.Fatalf("last used %v / %v, want %v", kl, tl, f.clock.Now())
	}

	// Two replicas deciding to touch at once write only once: the store's condition re-checks.
	store := apikeyspg.New(f.pool)
	at := f.clock.Now().Add(apikeys.TouchInterval)
	for range 2 {
		if err := store.TouchKey(ctx, k.ID, at, apikeys.TouchInterval); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.TouchKey(ctx, k.ID, at.Add(time.Second), apikeys.TouchInterval); err != nil {
		t.Fatal(err)
	}
	if kl, _ := lastUsed(); !kl.Equal(at) {
		t.Fatalf("last used %v, want %v (the later touch within the interval must not write)", kl, at)
	}
}
