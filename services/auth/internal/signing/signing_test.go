package signing

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store.
type memStore struct {
	mu   sync.Mutex
	keys []Record
}

func (s *memStore) UpdateActive(_ context.Context, now time.Time, fn func(*Record) (*Record, time.Time, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var active *Record
	for i := range s.keys {
		k := &s.keys[i]
		if k.RetiredAt.IsZero() && !k.NotAfter.IsZero() && !now.Before(k.NotAfter) {
			k.RetiredAt = now
		}
		if k.Active() {
			c := *k
			active = &c
		}
	}
	next, prevNotAfter, err := fn(active)
	if err != nil || next == nil {
		return err
	}
	for i := range s.keys {
		if active != nil && s.keys[i].ID == active.ID {
			s.keys[i].NotAfter = prevNotAfter
		}
	}
	s.keys = append(s.keys, *next)
	return nil
}

func (s *memStore) Published(_ context.Context, now time.Time) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, k := range s.keys {
		if k.RetiredAt.IsZero() && (k.NotAfter.IsZero() || k.NotAfter.After(now)) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

const password = "an encryption password of 32+ characters"

func newManager(t *testing.T, store Store, c *clock) *Manager {
	t.Helper()
	m, err := NewManager(store, password, Options{
		Rotation: 24 * time.Hour, TokenLifetime: 15*time.Minute + 30*time.Second, Reload: 30 * time.Second, Now: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStartCreatesOneKeyAndSigns(t *testing.T) {
	store := &memStore{}
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newManager(t, store, c)
	if _, err := m.Signer(); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Signer before Start = %v, want ErrNoSigningKey", err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s, err := m.Signer()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("claims")
	pub := m.PublicKeys()
	if len(pub) != 1 || !pub[0].Signing || pub[0].ID != s.ID || !ed25519.Verify(pub[0].Key, msg, ed25519.Sign(s.Key, msg)) {
		t.Fatalf("published %v do not verify the signer %s", pub, s.ID)
	}
	// A second replica starting on the same store reuses the key.
	other := newManager(t, store, c)
	if err := other.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s2, _ := other.Signer(); s2.ID != s.ID || len(store.keys) != 1 {
		t.Fatalf("second replica signs with %s (%d keys stored), want the first key", s2.ID, len(store.keys))
	}
	// The stored private key is encrypted, not the seed.
	if slices.Equal(store.keys[0].PrivateKeyEnc, []byte(s.Key.Seed())) {
		t.Fatal("private key stored in clear")
	}
}

func TestRotationKeepsThePreviousKeyPublished(t *testing.T) {
	store := &memStore{}
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newManager(t, store, c)
	ctx := t.Context()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := m.Signer()

	c.Add(23 * time.Hour)
	if err := m.ensure(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(store.keys) != 1 {
		t.Fatalf("rotated before SIGNING_KEY_ROTATION: %d keys", len(store.keys))
	}

	c.Add(time.Hour)
	rotatedAt := c.Now()
	if err := m.ensure(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	second, _ := m.Signer()
	if second.ID == first.ID {
		t.Fatal("no rotation after SIGNING_KEY_ROTATION")
	}
	pub := m.PublicKeys()
	if len(pub) != 2 || pub[0].ID != second.ID || !pub[0].Signing || pub[1].ID != first.ID || pub[1].Signing {
		t.Fatalf("published after rotation: %+v", pub)
	}
	if want := rotatedAt.Add(m.Overlap()); !pub[1].NotAfter.Equal(want) {
		t.Errorf("old key not_after %v, want %v", pub[1].NotAfter, want)
	}
	if m.Overlap() < 15*time.Minute+30*time.Second {
		t.Errorf("overlap %v shorter than a token's life", m.Overlap())
	}

	// Until every token of the old key has expired it stays; then it goes.
	c.Add(m.Overlap() - time.Second)
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.PublicKey(first.ID); !ok {
		t.Fatal("old key dropped before its tokens expired")
	}
	c.Add(time.Second)
	if err := m.ensure(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.PublicKey(first.ID); ok {
		t.Fatal("old key still published after its last token expired")
	}
	if store.keys[0].RetiredAt.IsZero() {
		t.Error("old key not marked retired")
	}
}

func TestWrongPasswordCannotSign(t *testing.T) {
	store := &memStore{}
	c := &clock{now: time.Now()}
	if err := newManager(t, store, c).Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	other, err := NewManager(store, "another password of more than 32 chars", Options{TokenLifetime: time.Minute, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(t.Context()); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Start with another ENCRYPTION_PASSWORD = %v, want ErrDecrypt", err)
	}
}

func TestCiphertextIsBoundToItsKeyID(t *testing.T) {
	store := &memStore{}
	c := &clock{now: time.Now()}
	m := newManager(t, store, c)
	if err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Swap the two ciphertexts: neither row decrypts any more.
	store.keys[0].PrivateKeyEnc, store.keys[1].PrivateKeyEnc = store.keys[1].PrivateKeyEnc, store.keys[0].PrivateKeyEnc
	if _, err := m.open(store.keys[1]); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("open of a moved ciphertext = %v, want ErrDecrypt", err)
	}
}

func TestKeyID(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	if id := KeyID(pub); len(id) != 16 || id != KeyID(pub) {
		t.Fatalf("KeyID = %q", id)
	}
}
