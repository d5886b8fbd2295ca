// Package throttle counts failed login attempts per key (an account, a client IP) and locks a key
// out with exponential backoff once it has failed too often: after Threshold failures within
// Window the key is locked for BaseLock, then twice as long after each further failure, up to
// MaxLock. A quiet Window forgets the failures.
//
// Memory keeps the counters in the process; Redis keeps them in Redis (INCR/PEXPIRE counters and
// PX lock keys) so every replica of the auth service sees the same counts, and falls back to its
// own Memory while Redis does not answer.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// Policy is the backoff policy of one kind of key.
type Policy struct {
	// Threshold is the number of failures within Window at which the first lock starts.
	Threshold int
	// Window is how long failures are remembered after the last one.
	Window time.Duration
	// BaseLock is the first lock; each further failure doubles it.
	BaseLock time.Duration
	// MaxLock caps the lock.
	MaxLock time.Duration
}

// DefaultPolicy: after 5 failures in 15 minutes, lock for 1 s, 2 s, 4 s … at most 15 minutes.
var DefaultPolicy = Policy{Threshold: 5, Window: 15 * time.Minute, BaseLock: time.Second, MaxLock: 15 * time.Minute}

// LockFor returns the lock that starts after the n-th failure (0 below the threshold).
func (p Policy) LockFor(n int64) time.Duration {
	if p.Threshold <= 0 || n < int64(p.Threshold) {
		return 0
	}
	d := p.BaseLock
	for i := int64(p.Threshold); i < n; i++ {
		d *= 2
		if d >= p.MaxLock {
			return p.MaxLock
		}
	}
	return min(d, p.MaxLock)
}

// digest turns a key (an email, an IP) into a fixed-size, non-identifying name.
func digest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// Memory is an in-process Throttle. It is safe for concurrent use.
type Memory struct {
	policy Policy
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	failures    int64
	lastFailure time.Time
	lockedUntil time.Time
}

// maxEntries bounds the map; beyond it, expired entries are swept and, if still full, the oldest
// half is dropped (an attacker spraying IPs must not grow the process without limit).
const maxEntries = 100_000

// NewMemory returns an in-memory throttle with policy.
func NewMemory(policy Policy) *Memory {
	return &Memory{policy: policy, now: time.Now, entries: map[string]*entry{}}
}

// Check returns how long key stays locked (0 when it is not).
func (m *Memory) Check(_ context.Context, key string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[digest(key)]
	if !ok {
		return 0, nil
	}
	return max(e.lockedUntil.Sub(m.now()), 0), nil
}

// Fail records a failure of key and returns the lock it starts (0 for none).
func (m *Memory) Fail(_ context.Context, key string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	k := digest(key)
	e, ok := m.entries[k]
	if !ok || now.Sub(e.lastFailure) >= m.policy.Window {
		if len(m.entries) >= maxEntries {
			m.sweep(now)
		}
		e = &entry{}
		m.entries[k] = e
	}
	e.failures++
	e.lastFailure = now
	lock := m.policy.LockFor(e.failures)
	if lock > 0 {
		e.lockedUntil = now.Add(lock)
	}
	return lock, nil
}

// Reset forgets key's failures and lock.
func (m *Memory) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, digest(key))
	return nil
}

// sweep drops expired entries, and the older half when that is not enough. Called with mu held.
func (m *Memory) sweep(now time.Time) {
	for k, e := range m.entries {
		if now.Sub(e.lastFailure) >= m.policy.Window && !now.Before(e.lockedUntil) {
			delete(m.entries, k)
		}
	}
	if len(m.entries) < maxEntries {
		return
	}
	cutoff := now.Add(-m.policy.Window / 2)
	for k, e := range m.entries {
		if e.lastFailure.Before(cutoff) && !now.Before(e.lockedUntil) {
			delete(m.entries, k)
		}
	}
	if len(m.entries) >= maxEntries {
		clear(m.entries)
	}
}
