// Package lru is the small bounded, expiring LRU map behind pkg/authn's caches (resolved
// credentials, verified access tokens). Every entry carries its own expiry, unlike pkg/cache whose
// TTL is per cache: a credential's cache lifetime depends on the credential.
package lru

import (
	"container/list"
	"sync"
	"time"
)

// Cache maps K to V with per-entry expiry and a size bound; the least recently used entry is
// evicted past the bound. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front: most recently used
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key     K
	value   V
	expires time.Time
}

// New returns a cache holding at most maxEntries (at least 1).
func New[K comparable, V any](maxEntries int) *Cache[K, V] {
	if maxEntries < 1 {
		maxEntries = 1
	}
	return &Cache[K, V]{max: maxEntries, ll: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value of key if present and not expired at now. An expired entry is removed.
func (c *Cache[K, V]) Get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		var zero V
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.value, true
}

// Add stores value under key until expires, replacing any previous entry. An entry that is
// already expired at now is not stored (and removes the previous one).
func (c *Cache[K, V]) Add(key K, value V, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		if !now.Before(expires) {
			c.ll.Remove(el)
			delete(c.items, key)
			return
		}
		e := el.Value.(*entry[K, V])
		e.value, e.expires = value, expires
		c.ll.MoveToFront(el)
		return
	}
	if !now.Before(expires) {
		return
	}
	c.items[key] = c.ll.PushFront(&entry[K, V]{key: key, value: value, expires: expires})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*entry[K, V]).key)
	}
}

// Remove drops key.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// Purge drops every entry.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.items)
}

// Len is the number of entries, expired ones included until they are looked up or evicted.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
