package sessions

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/password"
	"github.com/hashinsight/platform/services/auth/internal/reqinfo"
	"github.com/hashinsight/platform/services/auth/internal/throttle"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

type fakeUsers struct {
	mu    sync.Mutex
	byID  map[string]users.User
	calls int
}

func (f *fakeUsers) Get(_ context.Context, id string) (users.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.byID[id]; ok {
		return u, nil
	}
	return users.User{}, users.ErrNotFound
}

func (f *fakeUsers) GetByEmail(_ context.Context, email string) (users.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	for _, u := range f.byID {
		if u.Email == email {
			return u, nil
		}
	}
	return users.User{}, users.ErrNotFound
}

func (f *fakeUsers) RecordLogin(context.Context, string, time.Time) error { return nil }

type fakeStore struct {
	mu     sync.Mutex
	tokens []RefreshToken
}

func (s *fakeStore) InsertRefreshToken(_ context.Context, t RefreshToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.tokens {
		if o.FamilyID == t.FamilyID && !o.RevokedAt.IsZero() {
			return ErrFamilyRevoked
		}
	}
	s.tokens = append(s.tokens, t)
	return nil
}

func (s *fakeStore) RefreshTokenByHash(_ context.Context, hash []byte) (RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if bytes.Equal(t.Hash, hash) {
			return t, nil
		}
	}
	return RefreshToken{}, ErrTokenNotFound
}

func (s *fakeStore) MarkRefreshTokenUsed(_ context.Context, id string, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.tokens {
		if s.tokens[i].ID == id && s.tokens[i].UsedAt.IsZero() && s.tokens[i].RevokedAt.IsZero() {
			s.tokens[i].UsedAt = at
			return true, nil
		}
	}
	return false, nil
}

func (s *fakeStore) revoke(match func(RefreshToken) bool, at time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for i := range s.tokens {
		if match(s.tokens[i]) && s.tokens[i].RevokedAt.IsZero() {
			s.tokens[i].RevokedAt = at
			n++
		}
	}
	return n
}

func (s *fakeStore) RevokeFamily(_ context.Context, family string, at time.Time) (int64, error) {
	return s.revoke(func(t RefreshToken) bool { return t.FamilyID == family }, at), nil
}

func (s *fakeStore) RevokeUserTokens(_ context.Context, user string, at time.Time) (int64, error) {
	return s.revoke(func(t RefreshToken) bool { return t.UserID == user }, at), nil
}

func (s *fakeStore) DeleteRefreshTokensExpiredBefore(_ context.Context, t time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	kept := s.tokens[:0]
	for _, tok := range s.tokens {
		if tok.ExpiresAt.Before(t) {
			n++
			continue
		}
		kept = append(kept, tok)
	}
	s.tokens = kept
	return n, nil
}

type fakeIssuer struct{}

func (fakeIssuer) IssueAccessToken(_ context.Context, p *authn.Principal) (string, time.Time, error) {
	return "jwt-for-" + p.Subject + "-" + p.SessionID, time.Now().Add(15 * time.Minute), nil
}

type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) count(action string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Action == action {
			n++
		}
	}
	return n
}

const pw = "correct horse battery"

type fixture struct {
	svc   *Service
	users *fakeUsers
	store *fakeStore
	rec   *recorder
	user  users.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	h, err := password.NewHasher(password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, password.NewInline(2))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	u := users.User{ID: uuid.NewString(), Email: "b@example.com", Role: authn.RoleBroker, PasswordHash: hash}
	f := &fixture{users: &fakeUsers{byID: map[string]users.User{u.ID: u}}, store: &fakeStore{}, rec: &recorder{}, user: u}
	f.svc = NewService(f.users, f.store, h, fakeIssuer{}, f.rec, Config{
		AccountThrottle: throttle.NewMemory(throttle.DefaultPolicy),
		IPThrottle:      throttle.NewMemory(throttle.Policy{Threshold: 20, Window: time.Minute, BaseLock: time.Second, MaxLock: time.Minute}),
	})
	return f
}

func TestLoginCarriesTheSession(t *testing.T) {
	f := newFixture(t)
	pair, u, err := f.svc.Login(reqinfo.WithClientIP(t.Context(), "192.0.2.1"), "B@Example.com", pw)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != f.user.ID || len(f.store.tokens) != 1 || pair.AccessToken != "jwt-for-"+u.ID+"-"+f.store.tokens[0].FamilyID {
		t.Fatalf("login: %+v; stored %+v", pair, f.store.tokens)
	}
	if f.rec.events[0].Action != audit.ActionLogin || f.rec.events[0].IPAddress != "192.0.2.1" {
		t.Errorf("audited %+v", f.rec.events[0])
	}
	if _, ok := hashRefreshToken(pair.RefreshToken); !ok || bytes.Contains(f.store.tokens[0].Hash, []byte(pair.RefreshToken)) {
		t.Error("refresh token is not stored hashed")
	}
}

// TestConcurrentRefreshIsReuse: two refreshes racing with one token — one wins, the other is
// treated as a copy and revokes the family, so neither new token survives.
func TestConcurrentRefreshIsReuse(t *testing.T) {
	f := newFixture(t)
	pair, _, err := f.svc.Login(t.Context(), f.user.Email, pw)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Refresh(t.Context(), pair.RefreshToken)
		}()
	}
	wg.Wait()
	ok, reuse := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrTokenReuse):
			reuse++
		case errors.Is(err, ErrInvalidRefreshToken): // arrived after the family was revoked
		default:
			t.Errorf("refresh: %v", err)
		}
	}
	// At most one copy may win: it wins outright when it finished before a loser revoked the
	// family (its new token is then revoked with the family), or is refused when it finished after.
	if ok > 1 || reuse == 0 {
		t.Fatalf("%d refreshes won, %d saw reuse; want at most 1 and at least 1", ok, reuse)
	}
	for _, tok := range f.store.tokens {
		if tok.RevokedAt.IsZero() {
			t.Errorf("token %s of the family survived the reuse", tok.ID)
		}
	}
	if f.rec.count(audit.ActionTokenReuse) != reuse {
		t.Errorf("%d token_reuse events, want %d", f.rec.count(audit.ActionTokenReuse), reuse)
	}
}

func TestRefreshRejections(t *testing.T) {
	f := newFixture(t)
	pair, _, err := f.svc.Login(t.Context(), f.user.Email, pw)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.now = func() time.Time { return time.Now().Add(DefaultRefreshTTL + time.Second) }
	if _, err := f.svc.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, ErrRefreshExpired) {
		t.Fatalf("expired refresh: %v", err)
	}
	f.svc.now = time.Now
	for _, raw := range []string{"", "short", pair.RefreshToken[:42] + "!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := f.svc.Refresh(t.Context(), raw); !errors.Is(err, ErrInvalidRefreshToken) {
			t.Errorf("Refresh(%q) = %v, want ErrInvalidRefreshToken", raw, err)
		}
	}
}

func TestThrottledLogin(t *testing.T) {
	f := newFixture(t)
	ctx := reqinfo.WithClientIP(t.Context(), "192.0.2.9")
	for range 5 {
		if _, _, err := f.svc.Login(ctx, f.user.Email, "wrong password!"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("bad password: %v", err)
		}
	}
	_, _, err := f.svc.Login(ctx, f.user.Email, pw)
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter <= 0 || te.RetryAfter > time.Second {
		t.Fatalf("6th login = %v, want ThrottledError within 1s", err)
	}
	if f.rec.count(audit.ActionLoginFailed) != 6 {
		t.Errorf("%d login_failed events, want 6", f.rec.count(audit.ActionLoginFailed))
	}
}

// TestLoginWithNoFreeHashSlot: while every hashing slot stays taken a login — of a known account,
// an unknown one, even with the right password — is refused (after at most password.MaxWait)
// with a short retry, without a password check, without counting as a throttle failure, and
// audited as login_failed "busy". (The refusal before any lookup when callers already wait for
// the slots is tested in package password: Saturated.)
func TestLoginWithNoFreeHashSlot(t *testing.T) {
	f := newFixture(t)
	var releases []func()
	for {
		release, ok := f.svc.hasher.Reserve()
		if !ok {
			break
		}
		releases = append(releases, release)
	}
	ctx := reqinfo.WithClientIP(t.Context(), "192.0.2.10")
	for _, tc := range []struct{ name, email, pw string }{
		{"known account, right password", f.user.Email, pw},
		{"known account, wrong password", f.user.Email, "wrong password!"},
		{"unknown account", "nobody@example.com", "wrong password!"},
	} {
		_, _, err := f.svc.Login(ctx, tc.email, tc.pw)
		var te *ThrottledError
		if !errors.As(err, &te) || !te.Busy || te.RetryAfter != busyRetryAfter {
			t.Fatalf("%s: Login = %v, want a busy ThrottledError", tc.name, err)
		}
	}
	if n := f.rec.count(audit.ActionLoginFailed); n != 3 {
		t.Fatalf("%d login_failed events, want 3", n)
	}
	if r := f.rec.events[0].Details["reason"]; r != "busy" {
		t.Errorf("audited reason %v, want busy", r)
	}
	for _, release := range releases {
		release()
	}
	// Busy refusals were not failures: the account is not locked and the login succeeds.
	if _, _, err := f.svc.Login(ctx, f.user.Email, pw); err != nil {
		t.Fatalf("login after the slots were freed: %v", err)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	pair, _, err := f.svc.Login(t.Context(), f.user.Email, pw)
	if err != nil {
		t.Fatal(err)
	}
	p := &authn.Principal{Kind: authn.KindUser, Subject: f.user.ID, SessionID: f.store.tokens[0].FamilyID}
	if err := f.svc.Logout(t.Context(), p, LogoutInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(t.Context(), pair.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("refresh after logout: %v", err)
	}
	svc := &authn.Principal{Kind: authn.KindService, Subject: "svc/billing"}
	var fe *users.FieldError
	if err := f.svc.Logout(t.Context(), svc, LogoutInput{}); !errors.As(err, &fe) {
		t.Fatalf("logout without a session: %v", err)
	}
}
