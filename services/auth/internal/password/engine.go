package password

import (
	"context"

	"golang.org/x/crypto/argon2"
)

// Engine derives argon2id keys for a Hasher, which bounds how many it asks for at once to
// Slots. Two engines exist: Inline computes in this process; WorkerPool computes in worker
// processes at the lowest CPU priority, so that hashing (≈25 ms of a core each, and 19 MiB) only
// ever takes CPU time nothing else wants and a login flood cannot slow other requests.
type Engine interface {
	// Slots is how many keys the engine derives at once.
	Slots() int
	// DeriveKey returns the argon2id key of password under salt and p (p.KeyLen bytes). ctx
	// bounds the wait for a free slot only: a derivation, once started, runs to its end.
	DeriveKey(ctx context.Context, password, salt []byte, p Params) ([]byte, error)
	// Close releases the engine once in-flight derivations have ended; later calls fail.
	Close() error
}

// Inline derives keys in the calling goroutine.
type Inline struct{ slots int }

// NewInline returns an in-process engine for slots concurrent derivations (DefaultConcurrency
// when ≤ 0, at most MaxConcurrency).
func NewInline(slots int) *Inline {
	if slots <= 0 {
		slots = DefaultConcurrency()
	}
	return &Inline{slots: min(slots, MaxConcurrency)}
}

// Slots implements Engine.
func (e *Inline) Slots() int { return e.slots }

// DeriveKey implements Engine.
func (e *Inline) DeriveKey(_ context.Context, password, salt []byte, p Params) ([]byte, error) {
	return deriveKey(keyRequest{Params: p, Salt: salt, Password: password})
}

// Close implements Engine.
func (e *Inline) Close() error { return nil }

// deriveKey is the one place argon2id runs, for either engine.
func deriveKey(r keyRequest) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	p := r.Params
	return argon2.IDKey(r.Password, r.Salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen), nil
}
