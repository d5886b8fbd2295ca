// Package password hashes and verifies user passwords with argon2id (RFC 9106) at the OWASP
// parameters, in the PHC string format, and enforces the password policy.
//
// Hashing is deliberately expensive (19 MiB of memory, two passes), so a Hasher runs at most a
// fixed number of hashes at once (DefaultConcurrency: one per two CPUs, at most 2). Hash waits for
// a slot (user management is rare and authenticated); Verify and VerifyDummy, which serve logins,
// barely wait: as many callers as there are slots may wait up to MaxWait for one (two people
// logging in at the same moment both get in), and any further one fails at once with ErrBusy, so
// a login flood is refused in microseconds instead of queueing behind the hashes and starving the
// rest of the process.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
)

// Policy limits, in characters (Unicode code points).
const (
	MinLength = 12
	MaxLength = 128
)

// Params are argon2id cost parameters.
type Params struct {
	// MemoryKiB is the memory cost in KiB.
	MemoryKiB uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
	// SaltLen and KeyLen are in bytes.
	SaltLen uint32
	KeyLen  uint32
}

// OWASP are the OWASP Password Storage Cheat Sheet parameters: m=19 MiB, t=2, p=1, with a
// 16-byte salt and a 32-byte key.
var OWASP = Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// MaxConcurrency is the most hashes a Hasher ever runs at once.
const MaxConcurrency = 2

// DefaultConcurrency is how many hashes a Hasher runs at once by default: one per two usable CPUs
// (GOMAXPROCS), at least 1 and at most MaxConcurrency. On a 2-CPU machine one hash keeps at most
// one CPU busy and leaves the other to every other request.
func DefaultConcurrency() int {
	return min(max(runtime.GOMAXPROCS(0)/2, 1), MaxConcurrency)
}

// Errors.
var (
	// ErrTooShort and ErrTooLong report a password outside the policy.
	ErrTooShort = fmt.Errorf("password must be at least %d characters", MinLength)
	ErrTooLong  = fmt.Errorf("password must be at most %d characters", MaxLength)
	// ErrInvalidUTF8 reports a password that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("password must be valid UTF-8")
	// ErrMalformedHash reports a stored hash that is not an argon2id PHC string.
	ErrMalformedHash = errors.New("password: malformed argon2id hash")
	// ErrBusy reports that every hashing slot was taken: Verify and VerifyDummy refuse instead of
	// waiting.
	ErrBusy = errors.New("password: every hashing slot is busy")
)

// CheckPolicy reports whether pw satisfies the password policy.
func CheckPolicy(pw string) error {
	if !utf8.ValidString(pw) {
		return ErrInvalidUTF8
	}
	switch n := utf8.RuneCountInString(pw); {
	case n < MinLength:
		return ErrTooShort
	case n > MaxLength:
		return ErrTooLong
	}
	return nil
}

// MaxWait is the longest Verify waits for a hashing slot (about one hash at the OWASP
// parameters), and only when no more callers than slots are waiting already.
const MaxWait = 100 * time.Millisecond

// Hasher hashes and verifies passwords, running at most its engine's Slots hashes at once.
// It is safe for concurrent use.
type Hasher struct {
	params Params
	engine Engine
	sem    *semaphore.Weighted
	// slots is the semaphore's size, which is also how many Verify callers may wait.
	slots   int32
	waiting atomic.Int32
	// dummy is a hash of a random password, verified against when a login names an unknown
	// account so that the answer takes as long as for a known one.
	dummy string
}

// NewHasher returns a Hasher with params whose keys engine derives, at most engine.Slots() (and
// at most MaxConcurrency) at once.
func NewHasher(params Params, engine Engine) (*Hasher, error) {
	if engine == nil {
		return nil, errors.New("password: no hashing engine")
	}
	concurrency := min(max(engine.Slots(), 1), MaxConcurrency)
	if (keyRequest{Params: params, Salt: make([]byte, params.SaltLen)}).validate() != nil {
		return nil, errors.New("password: invalid argon2id parameters")
	}
	h := &Hasher{params: params, engine: engine, sem: semaphore.NewWeighted(int64(concurrency)), slots: int32(concurrency)}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("password: dummy hash: %w", err)
	}
	dummy, err := h.hash(context.Background(), base64.RawStdEncoding.EncodeToString(seed[:]))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Hash returns the PHC string of pw:
// $argon2id$v=19$m=19456,t=2,p=1$<base64 salt>$<base64 key> (unpadded standard base64).
// It waits for a hashing slot or for ctx to end.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.sem.Acquire(ctx, 1); err != nil {
		return "", fmt.Errorf("password: wait for a hashing slot: %w", err)
	}
	defer h.sem.Release(1)
	return h.hash(ctx, pw)
}

func (h *Hasher) hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key, err := h.engine.DeriveKey(ctx, []byte(pw), salt, h.params)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether pw matches the PHC string encoded. The parameters are read from encoded,
// so hashes made with older parameters keep verifying. It does not wait: when every hashing slot
// is taken it waits at most MaxWait, and only if no more callers than slots wait already;
// otherwise, or when the wait ends without a slot, it fails with ErrBusy.
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) (bool, error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if !h.acquireSoon(ctx) {
		return false, ErrBusy
	}
	defer h.sem.Release(1)
	got, err := h.engine.DeriveKey(ctx, []byte(pw), salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// acquireSoon takes a slot now, or waits up to MaxWait for one when fewer callers than slots are
// waiting; it reports whether it got one.
func (h *Hasher) acquireSoon(ctx context.Context) bool {
	if h.sem.TryAcquire(1) {
		return true
	}
	if h.waiting.Add(1) > h.slots {
		h.waiting.Add(-1)
		return false
	}
	defer h.waiting.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, MaxWait)
	defer cancel()
	return h.sem.Acquire(ctx, 1) == nil
}

// Saturated reports whether a Verify now would be refused: every hashing slot is taken and as
// many callers wait. A cheap pre-check that lets a login be refused before any lookup; Verify
// still decides (a slot may be freed or taken meanwhile).
func (h *Hasher) Saturated() bool {
	if h.waiting.Load() < h.slots {
		return false
	}
	if !h.sem.TryAcquire(1) {
		return true
	}
	h.sem.Release(1)
	return false
}

// Reserve takes a hashing slot without waiting and returns its release, or false when every slot
// is busy. It lets a caller hold the hasher's slots (tests of the refusal path do).
func (h *Hasher) Reserve() (release func(), ok bool) {
	if !h.sem.TryAcquire(1) {
		return nil, false
	}
	return func() { h.sem.Release(1) }, true
}

// VerifyDummy spends the time of one Verify and reports false: used when a login names an
// account that does not exist, so response times do not reveal which accounts exist. Like Verify
// it takes a hashing slot without waiting (ErrBusy), so a known and an unknown account are
// refused alike when the hasher is saturated.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	_, err := h.Verify(ctx, pw, h.dummy)
	return err
}

// NeedsRehash reports whether encoded was made with parameters other than the Hasher's.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, key, err := decode(encoded)
	if err != nil {
		return true
	}
	return p.MemoryKiB != h.params.MemoryKiB || p.Time != h.params.Time || p.Threads != h.params.Threads ||
		uint32(len(key)) != h.params.KeyLen
}

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	// The bounds every engine enforces (at most 256 MiB, t ≤ 64, …), so a corrupted row cannot
	// make Verify allocate without limit.
	if (keyRequest{Params: p, Salt: salt}).validate() != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	return p, salt, key, nil
}
