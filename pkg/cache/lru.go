package cache

import (
	"container/list"
	"sync"
	"time"
)

// entryOverhead approximates the bytes one L1 entry costs beyond its key and value (list element,
// map slot, entry struct), for MemoryStats.
const entryOverhead = 128

// lru is the L1: a mutex-guarded LRU list with a per-entry expiry. Expired entries are dropped
// when read or when they reach the cold end; capacity evictions drop the least recently used.
// It starts no goroutine, so a Cache needs no Close.
type lru struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	ll    *list.List // front = most recently used
	items map[string]*list.Element
	bytes int64

	evictions   uint64 // dropped for capacity
	expirations uint64 // dropped because their TTL passed
}

type lruEntry struct {
	key     string
	value   []byte
	expires time.Time
}

func newLRU(maxEntries int, ttl time.Duration) *lru {
	return &lru{max: maxEntries, ttl: ttl, ll: list.New(), items: make(map[string]*list.Element)}
}

func (l *lru) get(key string, now time.Time) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*lruEntry)
	if !now.Before(e.expires) {
		l.removeElement(el)
		l.expirations++
		return nil, false
	}
	l.ll.MoveToFront(el)
	return e.value, true
}

// add stores value under key and returns how many entries it evicted for capacity.
func (l *lru) add(key string, value []byte, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	expires := now.Add(l.ttl)
	if el, ok := l.items[key]; ok {
		e := el.Value.(*lruEntry)
		l.bytes += int64(len(value) - len(e.value))
		e.value, e.expires = value, expires
		l.ll.MoveToFront(el)
		return 0
	}
	l.items[key] = l.ll.PushFront(&lruEntry{key: key, value: value, expires: expires})
	l.bytes += int64(len(key) + len(value) + entryOverhead)

	evicted := 0
	for l.ll.Len() > l.max {
		el := l.ll.Back()
		if !now.Before(el.Value.(*lruEntry).expires) {
			l.expirations++
		} else {
			l.evictions++
			evicted++
		}
		l.removeElement(el)
	}
	// Opportunistically drop an expired entry at the cold end, so idle garbage does not linger.
	if el := l.ll.Back(); el != nil && el != l.ll.Front() && !now.Before(el.Value.(*lruEntry).expires) {
		l.removeElement(el)
		l.expirations++
	}
	return evicted
}

func (l *lru) remove(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.items[key]
	if ok {
		l.removeElement(el)
	}
	return ok
}

func (l *lru) purge() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ll.Init()
	clear(l.items)
	l.bytes = 0
}

func (l *lru) removeElement(el *list.Element) {
	e := l.ll.Remove(el).(*lruEntry)
	delete(l.items, e.key)
	l.bytes -= int64(len(e.key) + len(e.value) + entryOverhead)
}

type lruStats struct {
	entries     int
	bytes       int64
	evictions   uint64
	expirations uint64
}

func (l *lru) stats() lruStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return lruStats{entries: l.ll.Len(), bytes: l.bytes, evictions: l.evictions, expirations: l.expirations}
}
