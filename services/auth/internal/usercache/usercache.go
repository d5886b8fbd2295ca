// Package usercache serves users by id from the platform's two-level cache (pkg/cache: this
// process's memory, then Redis), in front of the users store. Every GET /api/v1/auth/me and
// every refresh reads the caller's user by id; the cache spares each a database round trip.
//
// Writes go through the same Store, which forgets the user once the write returns, here and in
// Redis; another replica's in-memory copy lives at most the cache's L1 TTL (a couple of
// seconds). Password hashes are never cached: only logins read them, by email, uncached.
package usercache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashinsight/platform/pkg/cache"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

// TTLs for the cache New expects (service.Runtime.NewCache(Name, L1TTL, L2TTL)).
const (
	Name = "auth-users"
	// L1TTL bounds how long another replica may answer with a user as it was before a change.
	L1TTL = 2 * time.Second
	// L2TTL bounds, in Redis, a value stored by a read that raced a write on another replica.
	L2TTL = 30 * time.Second
)

// Store is a users.Store whose Get is cached. The other reads pass through.
type Store struct {
	users.Store
	cache *cache.Cache
}

// New returns store with Get served from c.
func New(store users.Store, c *cache.Cache) *Store { return &Store{Store: store, cache: c} }

// Get returns the user with id, without its password hash, or users.ErrNotFound (not cached).
func (s *Store) Get(ctx context.Context, id string) (users.User, error) {
	b, err := s.cache.GetOrLoad(ctx, id, func(ctx context.Context) ([]byte, error) {
		u, err := s.Store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		u.PasswordHash = ""
		return json.Marshal(u)
	})
	if err != nil {
		return users.User{}, err
	}
	var u users.User
	if err := json.Unmarshal(b, &u); err != nil {
		return users.User{}, fmt.Errorf("usercache: decode user %s: %w", id, err)
	}
	return u, nil
}

// Update implements users.Store and forgets the user.
func (s *Store) Update(ctx context.Context, id string, fn func(u *users.User, activeOwners int) (bool, error)) (users.User, error) {
	defer s.forget(ctx, id)
	return s.Store.Update(ctx, id, fn)
}

// RecordLogin implements users.Store and forgets the user.
func (s *Store) RecordLogin(ctx context.Context, id string, at time.Time) error {
	defer s.forget(ctx, id)
	return s.Store.RecordLogin(ctx, id, at)
}

// forget drops id from the cache, also when the write failed (it may have committed before the
// error reached us).
func (s *Store) forget(ctx context.Context, id string) {
	_ = s.cache.Delete(context.WithoutCancel(ctx), id) // Redis errors are handled by the cache
}
