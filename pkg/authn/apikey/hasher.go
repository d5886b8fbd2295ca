package apikey

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// HKDFInfo is the HKDF "info" that separates the API-key MAC key from every other key derived
// from SESSION_SECRET. Changing it invalidates every stored key hash.
const HKDFInfo = "hashinsight api-key v1"

// MinSecretLen is the shortest SESSION_SECRET accepted (the configuration's own minimum).
const MinSecretLen = 32

// Hasher computes the keyed hash stored for a credential. It is safe for concurrent use.
type Hasher struct {
	key []byte
}

// NewHasher derives the MAC key from secret (SESSION_SECRET): HKDF-SHA256 with no salt and info
// HKDFInfo, 32 bytes.
func NewHasher(secret string) (*Hasher, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("apikey: session secret shorter than %d bytes", MinSecretLen)
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, HKDFInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("apikey: derive MAC key: %w", err)
	}
	return &Hasher{key: key}, nil
}

// Hash returns HMAC-SHA256(key, plaintext): what is stored and looked up (unique index).
func (h *Hasher) Hash(plaintext string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(plaintext))
	return m.Sum(nil)
}

// HashHex is Hash in lower-case hex.
func (h *Hasher) HashHex(plaintext string) string { return hex.EncodeToString(h.Hash(plaintext)) }

// Verify reports, in constant time, whether plaintext hashes to stored.
func (h *Hasher) Verify(plaintext string, stored []byte) bool {
	return Equal(h.Hash(plaintext), stored)
}

// Equal compares two hashes in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// ErrHashHex reports a stored hex hash that does not decode.
var ErrHashHex = errors.New("apikey: stored hash is not hex")

// VerifyHex is Verify against a hex-encoded stored hash.
func (h *Hasher) VerifyHex(plaintext, storedHex string) (bool, error) {
	stored, err := hex.DecodeString(storedHex)
	if err != nil {
		return false, ErrHashHex
	}
	return h.Verify(plaintext, stored), nil
}
