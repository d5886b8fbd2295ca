package usercache_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/pkg/testkit/redistest"
	"github.com/hashinsight/platform/services/auth/internal/postgres"
	"github.com/hashinsight/platform/services/auth/internal/usercache"
	"github.com/hashinsight/platform/services/auth/internal/users"
	"github.com/hashinsight/platform/services/auth/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestStore runs two replicas' caching stores on one database and one Redis: reads are served
// from the cache without the password hash, a replica's own writes are visible to it at once,
// a replica that has not cached the user yet reads another's write, and a missing user is not
// remembered.
func TestStore(t *testing.T) {
	ctx := t.Context()
	pool := pgtest.New(t, pgtest.Options{Schema: "auth", Migrations: migrations.FS, Role: true})
	rdb, err := cache.NewRedis(redistest.Start(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	db := postgres.NewUsers(pool)
	replica := func() *usercache.Store {
		return usercache.New(db, cache.New(cache.Options{Name: usercache.Name, Redis: rdb, L1TTL: time.Hour, L2TTL: time.Hour}))
	}
	a, b := replica(), replica()

	u, err := a.Create(ctx, users.NewUser{Email: "broker@example.com", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$x$y",
		Role: "broker", CustomerIDs: []string{uuid.NewString()}})
	if err != nil {
		t.Fatal(err)
	}

	got, err := a.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash != "" || got.Email != u.Email || got.Role != "broker" || len(got.CustomerIDs) != 1 || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("Get = %+v, want the user without its password hash", got)
	}

	// Cached: a change made behind the store's back is not seen...
	if _, err := pool.Exec(ctx, `UPDATE users SET display_name = 'behind the back' WHERE id = $1::uuid`, u.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get(ctx, u.ID); got.DisplayName == "behind the back" {
		t.Fatal("Get read the database although the user was cached")
	}
	// ...and by the other replica neither, which reads the first one's copy from Redis.
	if got, _ := b.Get(ctx, u.ID); got.DisplayName == "behind the back" {
		t.Fatal("the second replica read the database although Redis held the user")
	}

	// Writes through either store are seen at once by the writer, and by a replica that reads
	// from Redis.
	for _, tc := range []struct {
		name  string
		write func() error
		check func(users.User) bool
	}{
		{"role change through a", func() error {
			_, err := a.Update(ctx, u.ID, func(u *users.User, _ int) (bool, error) { u.Role = "admin"; u.CustomerIDs = nil; return true, nil })
			return err
		}, func(u users.User) bool { return u.Role == "admin" && u.DisplayName == "behind the back" }},
		{"login recorded through a", func() error {
			return a.RecordLogin(ctx, u.ID, time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC))
		}, func(u users.User) bool { return u.LastLoginAt.Equal(time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC)) }},
		{"failed update through a still forgets", func() error {
			_, err := a.Update(ctx, u.ID, func(*users.User, int) (bool, error) { return false, errors.New("refused") })
			if err == nil {
				return errors.New("update did not fail")
			}
			_, err = pool.Exec(ctx, `UPDATE users SET display_name = 'after a failed update' WHERE id = $1::uuid`, u.ID)
			return err
		}, func(u users.User) bool { return u.DisplayName == "after a failed update" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.write(); err != nil {
				t.Fatal(err)
			}
			got, err := a.Get(ctx, u.ID)
			if err != nil || !tc.check(got) {
				t.Fatalf("writer's Get = %+v, %v", got, err)
			}
			if got.PasswordHash != "" {
				t.Fatal("password hash cached")
			}
			if got, err := replica().Get(ctx, u.ID); err != nil || !tc.check(got) {
				t.Fatalf("fresh replica's Get = %+v, %v", got, err)
			}
		})
	}

	// A missing user is ErrNotFound and not remembered.
	id := uuid.NewString()
	if _, err := a.Get(ctx, id); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("Get of a missing user = %v, want ErrNotFound", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, display_name, password_hash, role)
		VALUES ($1::uuid, 'late@example.com', '', 'x', 'admin')`, id); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, id); err != nil || got.Email != "late@example.com" {
		t.Fatalf("Get after the user was created = %+v, %v", got, err)
	}
}
