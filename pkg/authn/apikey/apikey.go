// Package apikey is the format, generation and keyed hashing of HashInsight API keys and
// collector tokens:
//
//	hsi_<env>_<kind>_<random><checksum>
//
// env is [a-z]{2,8} (HASHINSIGHT_ENV), kind is "key" (API key) or "col" (collector token), random
// is 32 base62 characters from crypto/rand (~190 bits) and checksum is the CRC-32 (IEEE) of
// everything before it, as 6 base62 characters. The checksum lets [Parse] reject a mistyped,
// truncated or made-up value without any I/O, so garbage never reaches a database lookup; it is
// not a secret and proves nothing about authenticity.
//
// At rest only [Hasher.Hash] is stored: HMAC-SHA256 of the full key under a key derived from
// SESSION_SECRET with HKDF, so a stolen table cannot be checked offline without the secret.
package apikey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
)

// Kinds of credential.
const (
	// KindKey is an API key.
	KindKey = "key"
	// KindCollector is a site-scoped collector token.
	KindCollector = "col"
)

// Format constants.
const (
	// Scheme starts every credential of this format.
	Scheme = "hsi_"
	// RandomLen is the number of base62 random characters.
	RandomLen = 32
	// ChecksumLen is the number of base62 checksum characters.
	ChecksumLen = 6
	// PrefixLen is how many leading random characters are the public display prefix.
	PrefixLen = 12
	// MaxLen bounds a well-formed credential: "hsi_" + 8-char env + "_" + kind + "_" + 38.
	MaxLen = len(Scheme) + 8 + 1 + 3 + 1 + RandomLen + ChecksumLen

	minEnvLen, maxEnvLen = 2, 8
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Parse errors. Every error Parse returns wraps ErrInvalid and one of ErrMalformed or
// ErrChecksum; none of them contains the input.
var (
	// ErrInvalid is wrapped by every Parse error.
	ErrInvalid = errors.New("apikey: invalid credential")
	// ErrMalformed: the value does not have the hsi_<env>_<kind>_<random><checksum> shape.
	ErrMalformed = errors.New("apikey: malformed credential")
	// ErrChecksum: the shape is right but the checksum does not match.
	ErrChecksum = errors.New("apikey: checksum mismatch")
)

// Key is a parsed credential. Its String, GoString and LogValue show only the public parts, so
// formatting or logging a Key never leaks the secret.
type Key struct {
	// Env is the environment the key was issued for ("dev", "prod").
	Env string
	// Kind is KindKey or KindCollector.
	Kind string
	// random is the secret part; checksum its CRC.
	random   string
	checksum string
}

// Prefix is the public display prefix: the first PrefixLen random characters.
func (k Key) Prefix() string {
	if len(k.random) < PrefixLen {
		return ""
	}
	return k.random[:PrefixLen]
}

// Plaintext is the full credential, secret: show it once, hash it, never log it.
func (k Key) Plaintext() string {
	return Scheme + k.Env + "_" + k.Kind + "_" + k.random + k.checksum
}

// String returns the credential with its secret elided: "hsi_dev_key_AbCdEfGhIjKl…".
func (k Key) String() string {
	return Scheme + k.Env + "_" + k.Kind + "_" + k.Prefix() + "…"
}

// GoString is String, so %#v does not print the secret either.
func (k Key) GoString() string { return k.String() }

// LogValue makes slog print the redacted form.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Generate returns a new random credential of kind (KindKey or KindCollector) for env.
func Generate(env, kind string) (string, Key, error) {
	if !validEnv(env) {
		return "", Key{}, fmt.Errorf("apikey: env %q must match [a-z]{%d,%d}", env, minEnvLen, maxEnvLen)
	}
	if kind != KindKey && kind != KindCollector {
		return "", Key{}, fmt.Errorf("apikey: kind %q is not %q or %q", kind, KindKey, KindCollector)
	}
	random, err := randomBase62(RandomLen)
	if err != nil {
		return "", Key{}, err
	}
	k := Key{Env: env, Kind: kind, random: random}
	k.checksum = checksum(Scheme + env + "_" + kind + "_" + random)
	return k.Plaintext(), k, nil
}

// Looks reports whether s claims to be a credential of this format (starts with "hsi_"). Such a
// value must be Parsed, never treated as another kind of token.
func Looks(s string) bool { return strings.HasPrefix(s, Scheme) }

// Parse validates s and returns its parts. It does no I/O and runs in time linear in
// min(len(s), MaxLen).
func Parse(s string) (Key, error) {
	if len(s) > MaxLen || len(s) < len(Scheme)+minEnvLen+1+3+1+RandomLen+ChecksumLen {
		return Key{}, malformed("length")
	}
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Key{}, malformed("scheme")
	}
	env, rest, ok := strings.Cut(rest, "_")
	if !ok || !validEnv(env) {
		return Key{}, malformed("env")
	}
	kind, rest, ok := strings.Cut(rest, "_")
	if !ok || (kind != KindKey && kind != KindCollector) {
		return Key{}, malformed("kind")
	}
	if len(rest) != RandomLen+ChecksumLen {
		return Key{}, malformed("length")
	}
	for i := 0; i < len(rest); i++ {
		if !isBase62(rest[i]) {
			return Key{}, malformed("alphabet")
		}
	}
	body, sum := s[:len(s)-ChecksumLen], rest[RandomLen:]
	if checksum(body) != sum {
		return Key{}, fmt.Errorf("%w: %w", ErrInvalid, ErrChecksum)
	}
	return Key{Env: env, Kind: kind, random: rest[:RandomLen], checksum: sum}, nil
}

func malformed(what string) error {
	return fmt.Errorf("%w: %w (%s)", ErrInvalid, ErrMalformed, what)
}

func validEnv(env string) bool {
	if len(env) < minEnvLen || len(env) > maxEnvLen {
		return false
	}
	for i := 0; i < len(env); i++ {
		if env[i] < 'a' || env[i] > 'z' {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

// checksum is the CRC-32 (IEEE) of s as ChecksumLen base62 digits, most significant first
// (62^6 > 2^32, so every CRC fits).
func checksum(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	var b [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		b[i] = base62[v%62]
		v /= 62
	}
	return string(b[:])
}

// randomBase62 returns n uniformly distributed base62 characters from crypto/rand (rejection
// sampling: bytes ≥ 248 are redrawn so no character is more likely than another).
func randomBase62(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("apikey: random: %w", err)
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}
