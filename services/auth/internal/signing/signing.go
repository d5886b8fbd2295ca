// Package signing manages the Ed25519 keys that sign access tokens: it creates the first key,
// rotates the signing key on a schedule, keeps each previous key published until every token it
// signed has expired (so a rotation logs nobody out), and hands the current private key to the
// token issuer and the published public keys to GetSigningKeys.
//
// Private keys are stored encrypted with AES-256-GCM under a key derived from ENCRYPTION_PASSWORD
// (HKDF-SHA256, info "hashinsight signing-key v1"); the key id is the additional authenticated
// data, so a ciphertext cannot be moved to another key's row. Replicas agree on one signing key
// because every creation or rotation happens under a database lock ([Store.UpdateActive]); each
// replica re-reads the keys periodically and so picks up a rotation made by another.
package signing

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Algorithm is the JWT "alg" of every key.
const Algorithm = "EdDSA"

// hkdfInfo separates this use of ENCRYPTION_PASSWORD from every other.
const hkdfInfo = "hashinsight signing-key v1"

// Errors.
var (
	// ErrNoSigningKey means no key could be loaded or created.
	ErrNoSigningKey = errors.New("signing: no active signing key")
	// ErrDecrypt means a stored private key does not decrypt under ENCRYPTION_PASSWORD.
	ErrDecrypt = errors.New("signing: the stored signing key cannot be decrypted with ENCRYPTION_PASSWORD")
)

// Record is a stored key.
type Record struct {
	// ID is the JWT "kid".
	ID        string
	Algorithm string
	// PublicKey is the raw 32-byte Ed25519 public key.
	PublicKey []byte
	// PrivateKeyEnc is nonce ‖ AES-256-GCM(seed), with ID as additional data.
	PrivateKeyEnc []byte
	CreatedAt     time.Time
	// NotAfter is zero while the key is the active signing key; once rotated out it is the time
	// after which no token it signed can still be valid.
	NotAfter time.Time
	// RetiredAt is set once NotAfter has passed and the key is no longer published.
	RetiredAt time.Time
}

// Active reports whether r is the current signing key.
func (r Record) Active() bool { return r.NotAfter.IsZero() && r.RetiredAt.IsZero() }

// Store persists the keys (implemented by internal/postgres).
type Store interface {
	// UpdateActive runs, under a lock shared by every replica, fn with the active key (nil when
	// there is none). When fn returns a non-nil next, next is inserted as the active key and the
	// previous active key, if any, gets NotAfter = prevNotAfter. Keys whose NotAfter is before
	// now are marked retired in the same transaction.
	UpdateActive(ctx context.Context, now time.Time, fn func(active *Record) (next *Record, prevNotAfter time.Time, err error)) error
	// Published returns the active key and every key whose NotAfter is after now, newest first.
	Published(ctx context.Context, now time.Time) ([]Record, error)
}

// PublicKey is a published verification key.
type PublicKey struct {
	ID        string
	Algorithm string
	Key       ed25519.PublicKey
	// Signing is true for the key that signs new tokens.
	Signing   bool
	CreatedAt time.Time
	// NotAfter is zero for the signing key.
	NotAfter time.Time
}

// Options configure a Manager.
type Options struct {
	// Rotation is how long a key signs before a new one replaces it (default 24 h).
	Rotation time.Duration
	// TokenLifetime is the longest lifetime of a token signed by a key, including the
	// verifiers' clock leeway; a rotated-out key stays published this long (plus two reload
	// intervals, so a replica that has not yet seen the rotation cannot outlive it).
	TokenLifetime time.Duration
	// Reload is how often the keys are re-read and the rotation checked; default
	// min(Rotation/4, 30 s).
	Reload time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Manager holds the current signing key and the published keys. It is safe for concurrent use.
type Manager struct {
	store  Store
	aead   cipher.AEAD
	opts   Options
	logger *slog.Logger

	mu        sync.RWMutex
	signer    *Signer
	published []PublicKey
}

// Signer is the private key that signs new tokens.
type Signer struct {
	ID  string
	Key ed25519.PrivateKey
}

// NewManager returns a Manager over store, encrypting private keys under a key derived from
// encryptionPassword. Call Start before use.
func NewManager(store Store, encryptionPassword string, opts Options) (*Manager, error) {
	if encryptionPassword == "" {
		return nil, errors.New("signing: ENCRYPTION_PASSWORD is required")
	}
	if opts.Rotation <= 0 {
		opts.Rotation = 24 * time.Hour
	}
	if opts.TokenLifetime <= 0 {
		return nil, errors.New("signing: TokenLifetime is required")
	}
	if opts.Reload <= 0 {
		opts.Reload = min(opts.Rotation/4, 30*time.Second)
		opts.Reload = max(opts.Reload, 50*time.Millisecond)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	kek, err := hkdf.Key(sha256.New, []byte(encryptionPassword), nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("signing: derive key: %w", err)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return &Manager{store: store, aead: aead, opts: opts, logger: opts.Logger}, nil
}

// Overlap is how long a rotated-out key stays published.
func (m *Manager) Overlap() time.Duration { return m.opts.TokenLifetime + 2*m.opts.Reload }

// CacheTTL is how long verifiers may cache the published set: they must see a new signing key
// before any token signed by it reaches them, or re-fetch on its unknown kid (which they do).
func (m *Manager) CacheTTL() time.Duration { return min(m.opts.Rotation, 5*time.Minute) }

// Start creates the first key when there is none (or rotates an overdue one) and loads the keys.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.ensure(ctx, false); err != nil {
		return err
	}
	return m.Reload(ctx)
}

// Run rotates on schedule and re-reads the keys every Reload interval until ctx ends. Failures
// are logged; the last loaded keys stay in use.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.ensure(ctx, false); err != nil && ctx.Err() == nil {
			m.logger.Error("signing key rotation failed; keeping the current key", "error", err)
		}
		if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
			m.logger.Error("signing key reload failed; keeping the loaded keys", "error", err)
		}
	}
}

// Rotate replaces the signing key now, regardless of its age, and reloads.
func (m *Manager) Rotate(ctx context.Context) error {
	if err := m.ensure(ctx, true); err != nil {
		return err
	}
	return m.Reload(ctx)
}

// ensure creates a key when there is no active one, when the active one is older than Rotation,
// or when force is set.
func (m *Manager) ensure(ctx context.Context, force bool) error {
	var created string
	err := m.store.UpdateActive(ctx, m.opts.Now(), func(active *Record) (*Record, time.Time, error) {
		now := m.opts.Now()
		if active != nil && !force && now.Sub(active.CreatedAt) < m.opts.Rotation {
			return nil, time.Time{}, nil
		}
		next, err := m.newRecord(now)
		if err != nil {
			return nil, time.Time{}, err
		}
		created = next.ID
		return next, now.Add(m.Overlap()), nil
	})
	if err != nil {
		return fmt.Errorf("signing: ensure active key: %w", err)
	}
	if created != "" {
		m.logger.Info("signing key created", "kid", created)
	}
	return nil
}

// Reload re-reads the published keys and decrypts the active one.
func (m *Manager) Reload(ctx context.Context) error {
	records, err := m.store.Published(ctx, m.opts.Now())
	if err != nil {
		return fmt.Errorf("signing: load keys: %w", err)
	}
	var signer *Signer
	pub := make([]PublicKey, 0, len(records))
	for _, r := range records {
		if len(r.PublicKey) != ed25519.PublicKeySize {
			m.logger.Error("signing key with a malformed public key skipped", "kid", r.ID)
			continue
		}
		pk := PublicKey{ID: r.ID, Algorithm: r.Algorithm, Key: ed25519.PublicKey(r.PublicKey), CreatedAt: r.CreatedAt, NotAfter: r.NotAfter}
		if r.Active() && signer == nil {
			priv, err := m.open(r)
			if err != nil {
				return err
			}
			signer = &Signer{ID: r.ID, Key: priv}
			pk.Signing = true
		}
		pub = append(pub, pk)
	}
	if signer == nil {
		return ErrNoSigningKey
	}
	m.mu.Lock()
	m.signer, m.published = signer, pub
	m.mu.Unlock()
	return nil
}

// Signer returns the key that signs new tokens, or ErrNoSigningKey before Start.
func (m *Manager) Signer() (*Signer, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.signer == nil {
		return nil, ErrNoSigningKey
	}
	return m.signer, nil
}

// PublicKeys returns the published verification keys, signing key first.
func (m *Manager) PublicKeys() []PublicKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := slices.Clone(m.published)
	slices.SortStableFunc(out, func(a, b PublicKey) int {
		switch {
		case a.Signing && !b.Signing:
			return -1
		case b.Signing && !a.Signing:
			return 1
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return out
}

// FreshPublicKeys re-reads the keys from the store and returns them, so a key created by another
// replica since the last periodic reload is included; if the store cannot be read it returns the
// keys loaded last. Verifiers call it on an unknown key id (rate-limited by token.KeySet) and
// through GetSigningKeys.
func (m *Manager) FreshPublicKeys(ctx context.Context) []PublicKey {
	if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
		m.logger.Warn("signing keys: reload failed; serving the keys loaded last", "error", err)
	}
	return m.PublicKeys()
}

// PublicKey returns the published key with id kid.
func (m *Manager) PublicKey(kid string) (PublicKey, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, k := range m.published {
		if k.ID == kid {
			return k, true
		}
	}
	return PublicKey{}, false
}

func (m *Manager) newRecord(now time.Time) (*Record, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	id := KeyID(pub)
	nonce := make([]byte, m.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	enc := m.aead.Seal(nonce, nonce, priv.Seed(), []byte(id))
	return &Record{ID: id, Algorithm: Algorithm, PublicKey: pub, PrivateKeyEnc: enc, CreatedAt: now}, nil
}

func (m *Manager) open(r Record) (ed25519.PrivateKey, error) {
	ns := m.aead.NonceSize()
	if len(r.PrivateKeyEnc) < ns {
		return nil, fmt.Errorf("%w (key %s)", ErrDecrypt, r.ID)
	}
	seed, err := m.aead.Open(nil, r.PrivateKeyEnc[:ns], r.PrivateKeyEnc[ns:], []byte(r.ID))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w (key %s)", ErrDecrypt, r.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(r.PublicKey)) {
		return nil, fmt.Errorf("%w (key %s: public key mismatch)", ErrDecrypt, r.ID)
	}
	return priv, nil
}

// KeyID is the key id of an Ed25519 public key: 16 base64url characters of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
