package password

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func newHasher(t *testing.T) *Hasher {
	t.Helper()
	h, err := NewHasher(OWASP, DefaultConcurrency)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashAndVerify(t *testing.T) {
	h := newHasher(t)
	ctx := t.Context()
	const pw = "correct horse battery staple"
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !phc.MatchString(enc) {
		t.Fatalf("hash %q is not the OWASP argon2id PHC string", enc)
	}
	if enc2, _ := h.Hash(ctx, pw); enc2 == enc {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"right password", pw, true},
		{"wrong password", pw + "!", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(ctx, tc.pw, enc)
			if err != nil || ok != tc.want {
				t.Fatalf("Verify = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
	if h.NeedsRehash(enc) {
		t.Error("NeedsRehash of a current hash")
	}
	if err := h.VerifyDummy(ctx, pw); err != nil {
		t.Errorf("VerifyDummy: %v", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := newHasher(t)
	for _, enc := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=19456,t=2,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$c2hvcnQ",
	} {
		if _, err := h.Verify(t.Context(), "whatever password", enc); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) error = %v, want ErrMalformedHash", enc, err)
		}
		if !h.NeedsRehash(enc) {
			t.Errorf("NeedsRehash(%q) = false", enc)
		}
	}
}

func TestCheckPolicy(t *testing.T) {
	tests := []struct {
		pw   string
		want error
	}{
		{"", ErrTooShort},
		{"elevenchars", ErrTooShort},
		{"twelve chars", nil},
		{strings.Repeat("ü", 12), nil}, // characters, not bytes
		{strings.Repeat("x", 128), nil},
		{strings.Repeat("x", 129), ErrTooLong},
		{"invalid \xff utf-8 ..", ErrInvalidUTF8},
	}
	for _, tc := range tests {
		if err := CheckPolicy(tc.pw); !errors.Is(err, tc.want) {
			t.Errorf("CheckPolicy(%d chars) = %v, want %v", len(tc.pw), err, tc.want)
		}
	}
}

// TestConcurrencyLimit fills the hashing slots and checks that a further hash waits for one (and
// gives up with its context), so a login flood cannot run more than DefaultConcurrency hashes.
func TestConcurrencyLimit(t *testing.T) {
	h := newHasher(t)
	if !h.sem.TryAcquire(DefaultConcurrency) {
		t.Fatal("could not take every slot")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "twelve chars!"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash with every slot taken = %v, want a deadline error", err)
	}
	h.sem.Release(1)
	if _, err := h.Hash(t.Context(), "twelve chars!"); err != nil {
		t.Fatalf("Hash with a free slot: %v", err)
	}
	h.sem.Release(DefaultConcurrency - 1)
}

func BenchmarkHash(b *testing.B) {
	h, err := NewHasher(OWASP, DefaultConcurrency)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
