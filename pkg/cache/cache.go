// Package cache is the two-level read-through cache of HashInsight services: an in-process LRU (L1)
// in front of Redis (L2), with concurrent loads of one key coalesced into a single call to the
// source (singleflight).
//
// Redis is an optimisation, never a dependency: a Redis error is counted, logged once per outage and
// never returned. While Redis is unavailable the cache skips L2 (reads come from L1, else the loader)
// and re-probes it with PING at most once per ProbeInterval; when the probe succeeds, deletes that
// could not reach Redis during the outage are replayed, and only then is L2 used again.
//
// Consistency: Delete and Set take effect at once in this process's L1 and, when reachable, in Redis
// (otherwise they are replayed before L2 is used again). Other replicas' L1 copies are not notified;
// they may serve the old value until their L1 TTL passes, so L1TTL bounds the cross-replica stale
// read window and should be short for data that changes.
package cache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Defaults for zero Options fields.
const (
	DefaultName         = "default"
	DefaultL1MaxEntries = 10_000
	DefaultL1TTL        = 30 * time.Second
	DefaultL2TTL        = 5 * time.Minute
	DefaultOpTimeout    = 50 * time.Millisecond
	// DefaultPingTimeout bounds a PING; it may have to dial a new connection, which a busy machine
	// does not always manage within DefaultOpTimeout.
	DefaultPingTimeout       = 500 * time.Millisecond
	DefaultProbeInterval     = time.Second
	DefaultMaxPendingDeletes = 10_000
	// bulkTimeout bounds multi-key Redis work (pending-delete replay, Clear).
	bulkTimeout = 5 * time.Second
)

// Options configures a Cache. Only Name is usually set; Redis nil means L1 only.
type Options struct {
	// Name labels metrics and stats and namespaces Redis keys ("miners", "market").
	Name string
	// Redis is the L2. nil: L1 only. Build it with NewRedis so that per-operation context deadlines
	// are honoured (ContextTimeoutEnabled); the Cache does not close it.
	Redis redis.UniversalClient
	// L1MaxEntries caps the in-process LRU; the least recently used entry is evicted beyond it.
	L1MaxEntries int
	// L1TTL is how long an entry lives in L1. It bounds how stale another replica's copy can be.
	L1TTL time.Duration
	// L2TTL is the Redis expiry of an entry.
	L2TTL time.Duration
	// Prefix is prepended to every Redis key; default "hashinsight:<Name>:".
	Prefix string
	// Logger receives Redis availability transitions (never keys or values). Default: discard.
	Logger *slog.Logger
	// OpTimeout bounds each single-key Redis operation, so a slow Redis costs a read at most this.
	OpTimeout time.Duration
	// PingTimeout bounds the availability probes (PING); default DefaultPingTimeout.
	PingTimeout time.Duration
	// ProbeInterval is the minimum time between PINGs while Redis is marked unavailable.
	ProbeInterval time.Duration
	// MaxPendingDeletes caps the keys remembered for replay while Redis is down; past it, the whole
	// Prefix namespace is flushed from Redis on recovery instead.
	MaxPendingDeletes int
}

// Cache is a two-level read-through cache. It is safe for concurrent use and needs no Close.
type Cache struct {
	name          string
	prefix        string
	rdb           redis.UniversalClient
	l1            *lru
	l2TTL         time.Duration
	opTimeout     time.Duration
	pingTimeout   time.Duration
	probeInterval time.Duration
	maxPending    int
	logger        *slog.Logger
	now           func() time.Time

	group    singleflight.Group
	inflight sync.Map // keys with a flight running, for ClearCoalescing
	// epoch changes on every Delete, Set and Clear; a load that overlapped one does not cache its
	// (possibly stale) result.
	epoch atomic.Uint64

	// L2 availability. available is read lock-free on the hot path; it and the fields under mu
	// change together under mu.
	available atomic.Bool
	mu        sync.Mutex
	lastProbe time.Time
	probing   bool
	pending   map[string]struct{}
	overflow  bool // pending overflowed: flush the namespace on recovery

	requests, l1Hits, l2Hits, misses   atomic.Uint64
	loads, loadErrors, l2Errors        atomic.Uint64
	flightRequests, coalesced, waitSum atomic.Uint64 // waitSum in nanoseconds

	coalMu       sync.Mutex
	coalBaseline coalescingCounters
}

// New returns a Cache configured by opts (zero fields take the defaults above).
func New(opts Options) *Cache {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.L1MaxEntries <= 0 {
		opts.L1MaxEntries = DefaultL1MaxEntries
	}
	if opts.L1TTL <= 0 {
		opts.L1TTL = DefaultL1TTL
	}
	if opts.L2TTL <= 0 {
		opts.L2TTL = DefaultL2TTL
	}
	if opts.Prefix == "" {
		opts.Prefix = "hashinsight:" + opts.Name + ":"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = max(DefaultPingTimeout, opts.OpTimeout)
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.MaxPendingDeletes <= 0 {
		opts.MaxPendingDeletes = DefaultMaxPendingDeletes
	}
	c := &Cache{
		name:          opts.Name,
		prefix:        opts.Prefix,
		rdb:           opts.Redis,
		l1:            newLRU(opts.L1MaxEntries, opts.L1TTL),
		l2TTL:         opts.L2TTL,
		opTimeout:     opts.OpTimeout,
		pingTimeout:   opts.PingTimeout,
		probeInterval: opts.ProbeInterval,
		maxPending:    opts.MaxPendingDeletes,
		logger:        opts.Logger.With(slog.String("cache", opts.Name)),
		now:           time.Now,
		pending:       make(map[string]struct{}),
	}
	// Optimistic: the first failing operation marks Redis down.
	c.available.Store(c.rdb != nil)
	return c
}

// Name is the cache's name.
func (c *Cache) Name() string { return c.name }

// GetOrLoad returns the value of key from L1, else L2, else by calling load, and caches what load
// returns in both levels. Concurrent calls for one key share one L2 lookup and one load. load's
// error is returned as is and nothing is cached; Redis errors are never returned.
//
// load runs with a context that keeps the first caller's values and deadline but not its
// cancellation, so one caller giving up does not fail the others; each caller still returns as
// soon as its own ctx is done. The Cache keeps the slice load returns (do not reuse it); the
// returned slice is the caller's own copy.
func (c *Cache) GetOrLoad(ctx context.Context, key string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	v, err := c.getOrLoad(ctx, key, load)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

type source int

const (
	fromL1 source = iota
	fromL2
	fromLoader
)

type flightResult struct {
	val []byte
	src source
}

// getOrLoad is GetOrLoad returning the cached slice itself, for read-only internal callers.
func (c *Cache) getOrLoad(ctx context.Context, key string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	c.requests.Add(1)
	if v, ok := c.l1.get(key, c.now()); ok {
		c.l1Hits.Add(1)
		return v, nil
	}

	c.flightRequests.Add(1)
	start := time.Now()
	leader := false // written by this caller's fn only; read after the channel receive
	ch := c.group.DoChan(key, func() (any, error) {
		leader = true
		return c.flight(ctx, key, load)
	})
	select {
	case r := <-ch:
		if !leader {
			c.coalesced.Add(1)
			c.waitSum.Add(uint64(time.Since(start)))
		}
		if r.Err != nil {
			c.misses.Add(1)
			return nil, r.Err
		}
		res := r.Val.(flightResult)
		switch res.src {
		case fromL1:
			c.l1Hits.Add(1)
		case fromL2:
			c.l2Hits.Add(1)
		default:
			c.misses.Add(1)
		}
		return res.val, nil
	case <-ctx.Done():
		c.misses.Add(1)
		return nil, fmt.Errorf("cache %s: %w", c.name, context.Cause(ctx))
	}
}

// flight is the single execution behind concurrent GetOrLoad calls of one key.
func (c *Cache) flight(callerCtx context.Context, key string, load func(context.Context) ([]byte, error)) (res flightResult, err error) {
	defer func() {
		// A panicking loader must not crash the process from singleflight's goroutine.
		if p := recover(); p != nil {
			c.loadErrors.Add(1) // counted in loads before load was called
			err = fmt.Errorf("cache %s: loader panicked: %v", c.name, p)
		}
	}()
	ctx := context.WithoutCancel(callerCtx)
	if dl, ok := callerCtx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	epoch := c.epoch.Load()
	token := new(byte) // identifies this flight: a later flight of the same key may replace it
	c.inflight.Store(key, token)
	defer c.inflight.CompareAndDelete(key, token)

	// A flight that finished between our L1 miss and DoChan may have filled L1 already.
	if v, ok := c.l1.get(key, c.now()); ok {
		return flightResult{v, fromL1}, nil
	}
	if c.l2Usable(ctx) {
		if v, ok := c.l2Get(ctx, key); ok {
			if c.epoch.Load() == epoch {
				c.l1.add(key, v, c.now())
			}
			return flightResult{v, fromL2}, nil
		}
	}

	c.loads.Add(1)
	v, err := load(ctx)
	if err != nil {
		c.loadErrors.Add(1)
		return flightResult{}, err
	}
	if c.epoch.Load() == epoch {
		c.l1.add(key, v, c.now())
		if c.l2Usable(ctx) {
			c.l2Set(ctx, key, v)
		}
		// A Delete/Set that raced with the writes above wins: undo them.
		if c.epoch.Load() != epoch {
			c.l1.remove(key)
			c.l2Del(ctx, []string{key})
		}
	}
	return flightResult{v, fromLoader}, nil
}

// Set stores value under key in L1 and (when reachable) L2, e.g. to warm the cache. Loads that are
// in flight for key at the time do not overwrite it. When Redis is down the key is deleted from it
// on recovery, so an older L2 value is not read back. Redis errors are not returned.
func (c *Cache) Set(ctx context.Context, key string, value []byte) error {
	c.epoch.Add(1)
	c.group.Forget(key)
	v := bytes.Clone(value)
	c.l1.add(key, v, c.now())
	if c.rdb == nil {
		return nil
	}
	// Redis may hold an older value: if it cannot be overwritten now, delete it on recovery.
	if !c.l2Usable(ctx) || !c.l2Set(ctx, key, v) {
		c.remember([]string{key})
	}
	return nil
}

// Delete removes keys from L1 and L2. When Redis cannot be reached the keys are remembered and
// deleted from Redis before it is used again, so this process never reads them back from L2.
// Redis errors are not returned.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	c.epoch.Add(1)
	for _, k := range keys {
		c.l1.remove(k)
		c.group.Forget(k)
	}
	if c.rdb == nil {
		return nil
	}
	if !c.l2Usable(ctx) {
		c.remember(keys)
		return nil
	}
	c.l2Del(ctx, keys)
	return nil
}

// Clear empties L1 and deletes every key under the cache's Redis prefix (at once, or on recovery
// when Redis is down). Redis errors are not returned.
func (c *Cache) Clear(ctx context.Context) error {
	c.epoch.Add(1)
	c.l1.purge()
	if c.rdb == nil {
		return nil
	}
	if !c.l2Usable(ctx) {
		c.rememberFlush()
		return nil
	}
	bctx, cancel := context.WithTimeout(ctx, bulkTimeout)
	defer cancel()
	if err := c.flushNamespace(bctx); err != nil {
		c.l2Failed(ctx, err)
		c.rememberFlush()
	}
	return nil
}

// forgetAll makes every running flight invisible to new callers.
func (c *Cache) forgetAll() {
	c.inflight.Range(func(k, _ any) bool {
		c.group.Forget(k.(string))
		return true
	})
}

// Ping checks Redis now (ignoring ProbeInterval). It returns nil for an L1-only cache or when Redis
// answers (and then resumes using L2 after replaying pending deletes), else the error.
func (c *Cache) Ping(ctx context.Context) error {
	if c.rdb == nil {
		return nil
	}
	if err := c.probe(ctx, true); err != nil {
		return fmt.Errorf("cache %s: redis: %w", c.name, err)
	}
	return nil
}
