package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/services/auth/internal/postgres"
	"github.com/hashinsight/platform/services/auth/internal/sessions"
	"github.com/hashinsight/platform/services/auth/internal/signing"
	"github.com/hashinsight/platform/services/auth/internal/users"
	"github.com/hashinsight/platform/services/auth/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return pgtest.New(t, pgtest.Options{Schema: "auth", Migrations: migrations.FS, Role: true})
}

func newUser(email, role string) users.NewUser {
	return users.NewUser{Email: email, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$x$y", Role: role}
}

func TestUsers(t *testing.T) {
	s := postgres.NewUsers(newDB(t))
	ctx := t.Context()

	owner, err := s.CreateFirstOwner(ctx, newUser("owner@example.com", "owner"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateFirstOwner(ctx, newUser("other@example.com", "owner")); !errors.Is(err, users.ErrBootstrapClosed) {
		t.Fatalf("second first owner: %v, want ErrBootstrapClosed", err)
	}
	if _, err := s.CreateFirstOwner(ctx, newUser("owner@example.com", "owner")); !errors.Is(err, users.ErrEmailTaken) {
		t.Fatalf("first owner with a taken email: %v, want ErrEmailTaken", err)
	}
	client := newUser("client@example.com", "client")
	client.CustomerID = uuid.NewString()
	c, err := s.Create(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if c.CustomerID != client.CustomerID || c.CreatedAt.IsZero() || c.Disabled() {
		t.Fatalf("created %+v", c)
	}
	broker := newUser("broker@example.com", "broker")
	broker.CustomerIDs = []string{uuid.NewString(), uuid.NewString()}
	b, err := s.Create(ctx, broker)
	if err != nil || len(b.CustomerIDs) != 2 {
		t.Fatalf("broker %+v, %v", b, err)
	}

	t.Run("email is unique case-insensitively", func(t *testing.T) {
		// The domain lower-cases; the index catches anything that slips past it.
		_, err := s.Create(ctx, newUser("client@example.com", "admin"))
		if !errors.Is(err, users.ErrEmailTaken) {
			t.Fatalf("duplicate email: %v, want ErrEmailTaken", err)
		}
		got, err := s.GetByEmail(ctx, "CLIENT@example.com")
		if err != nil || got.ID != c.ID {
			t.Fatalf("GetByEmail upper case = %+v, %v", got, err)
		}
	})
	t.Run("missing user", func(t *testing.T) {
		if _, err := s.Get(ctx, uuid.NewString()); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("Get of a missing id: %v", err)
		}
		if _, err := s.Update(ctx, uuid.NewString(), func(*users.User, int) (bool, error) { return true, nil }); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("Update of a missing id: %v", err)
		}
	})
	t.Run("the schema refuses inconsistent roles", func(t *testing.T) {
		bad := newUser("bad@example.com", "admin")
		bad.CustomerID = uuid.NewString()
		if _, err := s.Create(ctx, bad); err == nil {
			t.Fatal("an admin bound to a customer was stored")
		}
	})
	t.Run("list pages in creation order with filters", func(t *testing.T) {
		page, err := s.List(ctx, users.Query{Limit: 2})
		if err != nil || len(page) != 2 || page[0].ID != owner.ID {
			t.Fatalf("first page %v, %v", page, err)
		}
		rest, err := s.List(ctx, users.Query{Limit: 10, AfterCreated: page[1].CreatedAt, AfterID: page[1].ID})
		if err != nil || len(rest) != 1 || rest[0].ID != b.ID {
			t.Fatalf("next page %v, %v", rest, err)
		}
		only, err := s.List(ctx, users.Query{Limit: 10, Role: "client", Text: "CLIENT@"})
		if err != nil || len(only) != 1 || only[0].ID != c.ID {
			t.Fatalf("filtered %v, %v", only, err)
		}
		self, err := s.List(ctx, users.Query{Limit: 10, ID: b.ID})
		if err != nil || len(self) != 1 {
			t.Fatalf("by id %v, %v", self, err)
		}
	})
}

func TestUpdateCountsActiveOwnersUnderALock(t *testing.T) {
	pool := newDB(t)
	s := postgres.NewUsers(pool)
	ctx := t.Context()
	var owners []users.User
	for _, e := range []string{"a@example.com", "b@example.com"} {
		u, err := s.Create(ctx, newUser(e, "owner"))
		if err != nil {
			t.Fatal(err)
		}
		owners = append(owners, u)
	}
	// Two concurrent demotions, each allowed only if another owner remains: one must lose.
	var wg sync.WaitGroup
	var demoted atomic.Int32
	errLast := errors.New("last owner")
	for _, o := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update(ctx, o.ID, func(u *users.User, active int) (bool, error) {
				if active <= 1 {
					return false, errLast
				}
				u.Role = "admin"
				return true, nil
			})
			if err == nil {
				demoted.Add(1)
			} else if !errors.Is(err, errLast) {
				t.Errorf("update: %v", err)
			}
		}()
	}
	wg.Wait()
	if demoted.Load() != 1 {
		t.Fatalf("%d owners demoted concurrently, want exactly 1", demoted.Load())
	}
}

func TestConcurrentBootstrapMakesOneOwner(t *testing.T) {
	s := postgres.NewUsers(newDB(t))
	var wg sync.WaitGroup
	var created atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CreateFirstOwner(t.Context(), newUser(uuid.NewString()[:8]+"@example.com", "owner"))
			switch {
			case err == nil:
				created.Add(1)
			case !errors.Is(err, users.ErrBootstrapClosed):
				t.Errorf("bootstrap %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d first owners, want 1", created.Load())
	}
}

func TestSessions(t *testing.T) {
	pool := newDB(t)
	u, err := postgres.NewUsers(pool).Create(t.Context(), newUser("s@example.com", "broker"))
	if err != nil {
		t.Fatal(err)
	}
	s := postgres.NewSessions(pool)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	family := uuid.NewString()
	tok := sessions.RefreshToken{ID: uuid.NewString(), Hash: make([]byte, 32), FamilyID: family, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	tok.Hash[0] = 1
	if err := s.InsertRefreshToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	tok2 := tok
	tok2.ID, tok2.Hash = uuid.NewString(), make([]byte, 32)
	if err := s.InsertRefreshToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	got, err := s.RefreshTokenByHash(ctx, tok.Hash)
	if err != nil || got.ID != tok.ID || got.FamilyID != family || !got.UsedAt.IsZero() {
		t.Fatalf("by hash %+v, %v", got, err)
	}
	if _, err := s.RefreshTokenByHash(ctx, make([]byte, 31)); !errors.Is(err, sessions.ErrTokenNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	// Spending is once only, even concurrently.
	var wg sync.WaitGroup
	var spent atomic.Int32
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.MarkRefreshTokenUsed(ctx, tok.ID, now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				spent.Add(1)
			}
		}()
	}
	wg.Wait()
	if spent.Load() != 1 {
		t.Fatalf("token spent %d times", spent.Load())
	}
	n, err := s.RevokeFamily(ctx, family, now)
	if err != nil || n != 2 {
		t.Fatalf("revoke family: %d, %v", n, err)
	}
	if ok, _ := s.MarkRefreshTokenUsed(ctx, tok2.ID, now); ok {
		t.Fatal("a revoked token was spent")
	}
	// A refresh that lost the race to a reuse cannot add a live token to the revoked family.
	late := tok
	late.ID, late.Hash = uuid.NewString(), append(make([]byte, 31), 9)
	if err := s.InsertRefreshToken(ctx, late); !errors.Is(err, sessions.ErrFamilyRevoked) {
		t.Fatalf("insert into a revoked family: %v, want ErrFamilyRevoked", err)
	}
	if n, _ := s.RevokeUserTokens(ctx, u.ID, now); n != 0 {
		t.Fatalf("revoked %d already revoked tokens again", n)
	}

	// Disabling a user through the user store revokes its remaining tokens in the same transaction.
	tok3 := tok
	tok3.ID, tok3.Hash, tok3.FamilyID = uuid.NewString(), append(make([]byte, 31), 3), uuid.NewString()
	if err := s.InsertRefreshToken(ctx, tok3); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.NewUsers(pool).Update(ctx, u.ID, func(x *users.User, _ int) (bool, error) {
		x.DisabledAt = now
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RefreshTokenByHash(ctx, tok3.Hash); got.RevokedAt.IsZero() {
		t.Fatal("disabling the user left its refresh token valid")
	}
	if n, err := s.DeleteRefreshTokensExpiredBefore(ctx, now.Add(30*time.Minute)); err != nil || n != 0 {
		t.Fatalf("purge before expiry deleted %d, %v", n, err)
	}
	if n, err := s.DeleteRefreshTokensExpiredBefore(ctx, now.Add(2*time.Hour)); err != nil || n != 3 {
		t.Fatalf("purge after expiry deleted %d, %v; want 3", n, err)
	}
}

func TestSigningKeysOneActive(t *testing.T) {
	pool := newDB(t)
	store := postgres.NewSigningKeys(pool)
	ctx := t.Context()
	// Several replicas start at once: one key.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := signing.NewManager(store, "encryption password of at least 32 chars", signing.Options{TokenLifetime: time.Minute})
			if err != nil {
				t.Error(err)
				return
			}
			if err := m.Start(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	keys, err := store.Published(ctx, time.Now())
	if err != nil || len(keys) != 1 || !keys[0].Active() {
		t.Fatalf("published after concurrent starts: %v, %v", keys, err)
	}
	m, _ := signing.NewManager(store, "encryption password of at least 32 chars", signing.Options{TokenLifetime: time.Minute})
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ = store.Published(ctx, time.Now())
	if len(keys) != 2 || !keys[0].Active() || keys[1].Active() || keys[1].NotAfter.IsZero() {
		t.Fatalf("published after a rotation: %+v", keys)
	}
	if _, err := store.Published(context.WithoutCancel(ctx), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	later, _ := store.Published(ctx, time.Now().Add(time.Hour))
	if len(later) != 1 {
		t.Fatalf("%d keys published an hour later, want only the active one", len(later))
	}
}
