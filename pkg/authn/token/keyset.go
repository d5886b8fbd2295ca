package token

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/hashinsight/platform/pkg/authn"
)

// KeySource is authn.KeySource: the public keys that verify access tokens, by key id. The remote
// implementation is AuthKeySource; the auth service passes its own keys in-process.
type KeySource = authn.KeySource

// StaticKeys is a fixed KeySource (tests, tools).
type StaticKeys map[string]ed25519.PublicKey

// Keys returns a copy of the map.
func (s StaticKeys) Keys(context.Context) (map[string]ed25519.PublicKey, error) {
	return maps.Clone(map[string]ed25519.PublicKey(s)), nil
}

// KeySourceFunc adapts a function to KeySource.
type KeySourceFunc func(ctx context.Context) (map[string]ed25519.PublicKey, error)

// Keys calls f.
func (f KeySourceFunc) Keys(ctx context.Context) (map[string]ed25519.PublicKey, error) { return f(ctx) }

// Key lookup errors. ErrUnknownKey is returned wrapped with authn.ErrInvalidCredential,
// ErrKeysUnavailable wrapped with authn.ErrUnavailable.
var (
	// ErrUnknownKey: the key id is not published, even after a refresh.
	ErrUnknownKey = errors.New("token: unknown signing key")
	// ErrKeysUnavailable: the key set could not be fetched and the key id is not cached.
	ErrKeysUnavailable = errors.New("token: signing keys unavailable")
)

// Defaults of KeySetOptions.
const (
	DefaultMinRefreshInterval = time.Second
	DefaultMaxAge             = 5 * time.Minute
	DefaultFetchTimeout       = 5 * time.Second
)

// KeySetOptions configure a KeySet; zero values take the defaults.
type KeySetOptions struct {
	// MinRefreshInterval is the minimum time between two fetches (default 1 s): a flood of tokens
	// with made-up key ids costs the source at most one call per interval.
	MinRefreshInterval time.Duration
	// MaxAge is how long a fetched set is used before it is re-fetched in the background (default
	// 5 min), so keys the source stopped publishing stop verifying.
	MaxAge time.Duration
	// FetchTimeout bounds one fetch (default 5 s).
	FetchTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives failed fetches (default: discard).
	Logger *slog.Logger
}

// KeySet caches the keys of a KeySource. A lookup of an unknown key id refreshes the set (one
// fetch for all concurrent callers, at most one per MinRefreshInterval: a caller that arrives
// sooner waits for the next slot); a failed fetch keeps the cached keys. Nothing is fetched until
// the first lookup, so a service starts while auth is still down. Safe for concurrent use.
type KeySet struct {
	src  KeySource
	opts KeySetOptions
	// sleep waits d or until ctx ends (tests replace it).
	sleep func(ctx context.Context, d time.Duration) error

	snap atomic.Pointer[keySnapshot]
	gen  atomic.Uint64 // completed fetches
	sf   singleflight.Group

	mu          sync.Mutex
	lastAttempt time.Time
}

type keySnapshot struct {
	keys    map[string]ed25519.PublicKey
	started time.Time // when the fetch that produced it began
	fetched time.Time
}

// NewKeySet returns a KeySet over src.
func NewKeySet(src KeySource, opts KeySetOptions) *KeySet {
	if opts.MinRefreshInterval <= 0 {
		opts.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &KeySet{src: src, opts: opts, sleep: sleepCtx}
}

// Key returns the public key with id kid, refreshing the set if kid is unknown. Errors wrap
// authn.ErrInvalidCredential (ErrUnknownKey) or authn.ErrUnavailable (ErrKeysUnavailable), or are
// the context's error.
func (ks *KeySet) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	now := ks.opts.Now()
	gen := int64(ks.gen.Load())
	if snap := ks.snap.Load(); snap != nil {
		if k, ok := snap.keys[kid]; ok {
			if now.Sub(snap.fetched) >= ks.opts.MaxAge {
				ks.refreshInBackground(ctx, now)
			}
			return k, nil
		}
	}
	if kid == "" {
		return nil, fmt.Errorf("%w: %w: empty key id", authn.ErrInvalidCredential, ErrUnknownKey)
	}
	fetchStart, err := ks.refresh(ctx, gen)
	if err == nil && fetchStart.Before(now) {
		// We joined a fetch that began before this lookup, so it may predate the key's
		// publication: fetch once more (still rate-limited).
		if k, ok := ks.cached(kid); ok {
			return k, nil
		}
		_, err = ks.refresh(ctx, int64(ks.gen.Load()))
	}
	if k, ok := ks.cached(kid); ok {
		return k, nil
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%w: %w: %w", authn.ErrUnavailable, ErrKeysUnavailable, err)
	}
	return nil, fmt.Errorf("%w: %w", authn.ErrInvalidCredential, ErrUnknownKey)
}

// Known reports whether kid is in the cached set, without fetching.
func (ks *KeySet) Known(kid string) bool {
	_, ok := ks.cached(kid)
	return ok
}

// Keys returns a copy of the cached set, fetching it first if nothing is cached. With it a
// KeySet is itself a KeySource.
func (ks *KeySet) Keys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	if snap := ks.snap.Load(); snap != nil {
		return maps.Clone(snap.keys), nil
	}
	if _, err := ks.refresh(ctx, anyGeneration); err != nil {
		return nil, fmt.Errorf("%w: %w: %w", authn.ErrUnavailable, ErrKeysUnavailable, err)
	}
	return maps.Clone(ks.snap.Load().keys), nil
}

// Refresh fetches the set now (subject to MinRefreshInterval), e.g. after the auth service
// rotated its keys in-process.
func (ks *KeySet) Refresh(ctx context.Context) error {
	_, err := ks.refresh(ctx, anyGeneration)
	return err
}

func (ks *KeySet) cached(kid string) (ed25519.PublicKey, bool) {
	snap := ks.snap.Load()
	if snap == nil {
		return nil, false
	}
	k, ok := snap.keys[kid]
	return k, ok
}

// anyGeneration makes refresh fetch whatever fetches completed before.
const anyGeneration = -1

// refresh joins or starts a fetch and returns when it began. gen is the number of completed fetches
// the caller saw when its lookup began: when a fetch has completed since, that fetch already answers
// the caller (it raced with it and missed the flight), so no new fetch is started.
func (ks *KeySet) refresh(ctx context.Context, gen int64) (time.Time, error) {
	ch := ks.sf.DoChan("keys", func() (any, error) {
		if snap := ks.snap.Load(); snap != nil && gen != anyGeneration && int64(ks.gen.Load()) != gen {
			return snap.started, nil
		}
		return ks.fetch(ctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return time.Time{}, r.Err
		}
		return r.Val.(time.Time), nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// refreshInBackground starts a fetch of a stale set unless one ran within MinRefreshInterval;
// lookups keep using the cached keys meanwhile.
func (ks *KeySet) refreshInBackground(ctx context.Context, now time.Time) {
	ks.mu.Lock()
	due := now.Sub(ks.lastAttempt) >= ks.opts.MinRefreshInterval
	ks.mu.Unlock()
	if due {
		ks.sf.DoChan("keys", func() (any, error) { return ks.fetch(context.WithoutCancel(ctx)) })
	}
}

// fetch runs inside the singleflight: it waits for the rate limit, then asks the source. The
// fetch is detached from the first caller's cancellation so its waiters are not failed by it.
func (ks *KeySet) fetch(ctx context.Context) (any, error) {
	ctx = context.WithoutCancel(ctx)
	ks.mu.Lock()
	wait := ks.lastAttempt.Add(ks.opts.MinRefreshInterval).Sub(ks.opts.Now())
	ks.mu.Unlock()
	if wait > 0 {
		if err := ks.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
	start := ks.opts.Now()
	ks.mu.Lock()
	ks.lastAttempt = start
	ks.mu.Unlock()

	fctx, cancel := context.WithTimeout(ctx, ks.opts.FetchTimeout)
	defer cancel()
	keys, err := ks.src.Keys(fctx)
	if err != nil {
		ks.opts.Logger.WarnContext(ctx, "signing keys: fetch failed; keeping the cached keys", "error", err)
		return nil, fmt.Errorf("fetch signing keys: %w", err)
	}
	clean := make(map[string]ed25519.PublicKey, len(keys))
	for id, k := range keys {
		if id != "" && len(k) == ed25519.PublicKeySize {
			clean[id] = k
		}
	}
	ks.snap.Store(&keySnapshot{keys: clean, started: start, fetched: ks.opts.Now()})
	ks.gen.Add(1)
	return start, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
