package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// errProbing is returned by probe when another goroutine is already probing or the interval has
// not passed; it never reaches callers of the public API.
var errProbing = errors.New("probe skipped")

// l2Usable reports whether L2 may be used now. While Redis is marked unavailable it lets one caller
// probe it per ProbeInterval.
func (c *Cache) l2Usable(ctx context.Context) bool {
	if c.rdb == nil {
		return false
	}
	if c.available.Load() {
		return true
	}
	return c.probe(ctx, false) == nil
}

// probe PINGs Redis and, on success, replays pending deletes and marks L2 available. Without force
// it runs at most once per ProbeInterval and never concurrently with another probe.
func (c *Cache) probe(ctx context.Context, force bool) error {
	c.mu.Lock()
	if c.probing || (!force && c.now().Sub(c.lastProbe) < c.probeInterval) {
		c.mu.Unlock()
		if force {
			// Someone else is probing; answer with a plain PING of our own.
			return c.ping(ctx)
		}
		return errProbing
	}
	c.probing = true
	c.lastProbe = c.now()
	c.mu.Unlock()

	err := c.resume(ctx)

	c.mu.Lock()
	c.probing = false
	c.mu.Unlock()
	return err
}

func (c *Cache) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, c.pingTimeout)
	defer cancel()
	if err := c.rdb.Ping(pctx).Err(); err != nil {
		c.l2Failed(ctx, err)
		return err
	}
	return nil
}

// resume is the body of a probe: PING, then replay pending deletes until none are left, then
// mark L2 available. Deletes remembered concurrently are picked up by the loop, because available
// only becomes true under mu with pending empty.
func (c *Cache) resume(ctx context.Context) error {
	if err := c.ping(ctx); err != nil {
		return err
	}
	for {
		c.mu.Lock()
		if len(c.pending) == 0 && !c.overflow {
			wasDown := !c.available.Load()
			c.available.Store(true)
			c.mu.Unlock()
			if wasDown {
				c.logger.LogAttrs(ctx, slog.LevelInfo, "redis available again, L2 cache resumed")
			}
			return nil
		}
		keys := make([]string, 0, len(c.pending))
		for k := range c.pending {
			keys = append(keys, k)
		}
		flush := c.overflow
		clear(c.pending)
		c.overflow = false
		c.mu.Unlock()

		bctx, cancel := context.WithTimeout(ctx, bulkTimeout)
		var err error
		if flush {
			err = c.flushNamespace(bctx)
		} else {
			err = c.delKeys(bctx, keys)
		}
		cancel()
		if err != nil {
			c.mu.Lock()
			if flush {
				c.overflow = true
			}
			c.addPendingLocked(keys)
			c.mu.Unlock()
			c.l2Failed(ctx, err)
			return err
		}
	}
}

// l2Failed records a Redis error and marks L2 unavailable. Errors caused by the caller's own
// context ending are not Redis's fault and are ignored.
func (c *Cache) l2Failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	c.l2Errors.Add(1)
	c.mu.Lock()
	wasUp := c.available.Load()
	c.available.Store(false)
	if wasUp {
		c.lastProbe = c.now()
	}
	c.mu.Unlock()
	if wasUp {
		c.logger.LogAttrs(ctx, slog.LevelWarn, "redis unavailable, serving from L1 and the source",
			slog.String("error", err.Error()), slog.Duration("probe_interval", c.probeInterval))
	}
}

// remember queues keys for deletion from Redis on recovery and keeps L2 marked unavailable until then.
func (c *Cache) remember(keys []string) {
	c.mu.Lock()
	c.addPendingLocked(keys)
	c.available.Store(false)
	c.mu.Unlock()
}

func (c *Cache) rememberFlush() {
	c.mu.Lock()
	c.overflow = true
	clear(c.pending)
	c.available.Store(false)
	c.mu.Unlock()
}

func (c *Cache) addPendingLocked(keys []string) {
	if c.overflow {
		return
	}
	for _, k := range keys {
		c.pending[k] = struct{}{}
	}
	if len(c.pending) > c.maxPending {
		c.overflow = true
		clear(c.pending)
	}
}

func (c *Cache) l2Get(ctx context.Context, key string) ([]byte, bool) {
	rctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	v, err := c.rdb.Get(rctx, c.prefix+key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false
	case err != nil:
		c.l2Failed(ctx, err)
		return nil, false
	}
	return v, true
}

// l2Set writes key to Redis. It reports failure after marking L2 down; a caller whose write
// replaces a possibly different value (Set) then remembers the key for deletion.
func (c *Cache) l2Set(ctx context.Context, key string, v []byte) bool {
	rctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	if err := c.rdb.Set(rctx, c.prefix+key, v, c.l2TTL).Err(); err != nil {
		c.l2Failed(ctx, err)
		return false
	}
	return true
}

// l2Del deletes keys from Redis now, or remembers them when that fails.
func (c *Cache) l2Del(ctx context.Context, keys []string) {
	if c.rdb == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	if err := c.delKeys(rctx, keys); err != nil {
		// Remember first, then mark down: a concurrent probe cannot miss these keys.
		c.remember(keys)
		c.l2Failed(ctx, err)
	}
}

// delKeys deletes keys one command each in a pipeline, which is also valid on Redis Cluster where
// a multi-key DEL across hash slots is not.
func (c *Cache) delKeys(ctx context.Context, keys []string) error {
	if len(keys) == 1 {
		return c.rdb.Del(ctx, c.prefix+keys[0]).Err()
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, c.prefix+k)
		}
		return nil
	})
	return err
}

// flushNamespace deletes every key under the prefix (on each master of a cluster).
func (c *Cache) flushNamespace(ctx context.Context) error {
	match := escapeGlob(c.prefix) + "*"
	scanDel := func(ctx context.Context, client redis.Cmdable) error {
		iter := client.Scan(ctx, 0, match, 500).Iterator()
		batch := make([]string, 0, 500)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			_, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range batch {
					p.Del(ctx, k)
				}
				return nil
			})
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	if cc, ok := c.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, client *redis.Client) error {
			return scanDel(ctx, client)
		})
	}
	if err := scanDel(ctx, c.rdb); err != nil {
		return fmt.Errorf("flush %s*: %w", c.prefix, err)
	}
	return nil
}

// escapeGlob escapes Redis MATCH pattern metacharacters.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
