package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

func newHasher(t *testing.T) *Hasher {
	t.Helper()
	h, err := NewHasher(OWASP, NewInline(0))
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

// TestConcurrencyLimit fills the hashing slots and checks that a further Hash waits for one (and
// gives up with its context), while Verify and VerifyDummy wait at most MaxWait, and only while
// no more callers than slots wait already: beyond that they refuse at once with ErrBusy, so a
// login flood never runs more than the slots' hashes nor piles up behind them.
func TestConcurrencyLimit(t *testing.T) {
	for _, slots := range []int{1, 2} {
		h, err := NewHasher(OWASP, NewInline(slots))
		if err != nil {
			t.Fatal(err)
		}
		enc, err := h.Hash(t.Context(), "twelve chars!")
		if err != nil {
			t.Fatal(err)
		}
		if !h.sem.TryAcquire(int64(slots)) {
			t.Fatalf("%d slots: could not take every slot", slots)
		}
		if h.sem.TryAcquire(1) {
			t.Fatalf("%d slots: a further slot was free", slots)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		if _, err := h.Hash(ctx, "twelve chars!"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Hash with every slot taken = %v, want a deadline error", err)
		}
		cancel()

		// Slots taken, nobody waiting: Verify waits MaxWait at most, then refuses.
		start := time.Now()
		if ok, err := h.Verify(t.Context(), "twelve chars!", enc); ok || !errors.Is(err, ErrBusy) {
			t.Fatalf("Verify with every slot taken = %v, %v; want false, ErrBusy", ok, err)
		}
		if d := time.Since(start); d < MaxWait/2 || d > 10*MaxWait {
			t.Errorf("Verify waited %v for a slot, want about %v", d, MaxWait)
		}
		if h.Saturated() {
			t.Error("Saturated with free waiting places")
		}

		// As many waiting as slots: refused at once (a Verify that waited would block the test,
		// whose context has no deadline, for MaxWait; well under it is "at once").
		h.waiting.Store(int32(slots))
		if !h.Saturated() {
			t.Error("not Saturated with every slot taken and every waiting place used")
		}
		start = time.Now()
		if ok, err := h.Verify(t.Context(), "twelve chars!", enc); ok || !errors.Is(err, ErrBusy) {
			t.Fatalf("Verify with every slot and waiting place taken = %v, %v; want false, ErrBusy", ok, err)
		}
		if err := h.VerifyDummy(t.Context(), "twelve chars!"); !errors.Is(err, ErrBusy) {
			t.Fatalf("VerifyDummy with every slot and waiting place taken = %v, want ErrBusy", err)
		}
		if d := time.Since(start); d >= MaxWait {
			t.Errorf("refusals took %v, want at once", d)
		}
		h.waiting.Store(0)

		// A waiting Verify gets the slot freed while it waits.
		done := make(chan error, 1)
		go func() {
			ok, err := h.Verify(t.Context(), "twelve chars!", enc)
			if err == nil && !ok {
				err = errors.New("password did not match")
			}
			done <- err
		}()
		for h.waiting.Load() == 0 {
			runtime.Gosched()
		}
		h.sem.Release(1)
		if err := <-done; err != nil {
			t.Fatalf("Verify that waited for a freed slot: %v", err)
		}
		if ok, err := h.Verify(t.Context(), "twelve chars!", enc); !ok || err != nil {
			t.Fatalf("Verify with a free slot = %v, %v", ok, err)
		}
		if err := h.VerifyDummy(t.Context(), "twelve chars!"); err != nil {
			t.Fatalf("VerifyDummy with a free slot: %v", err)
		}
		h.sem.Release(int64(slots - 1))
	}
}

func TestDefaultConcurrency(t *testing.T) {
	for _, tc := range []struct{ procs, want int }{{1, 1}, {2, 1}, {3, 1}, {4, 2}, {16, 2}} {
		prev := runtime.GOMAXPROCS(tc.procs)
		got := DefaultConcurrency()
		runtime.GOMAXPROCS(prev)
		if got != tc.want {
			t.Errorf("GOMAXPROCS=%d: DefaultConcurrency() = %d, want %d", tc.procs, got, tc.want)
		}
	}
	h, err := NewHasher(Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, NewInline(10))
	if err != nil {
		t.Fatal(err)
	}
	if !h.sem.TryAcquire(MaxConcurrency) || h.sem.TryAcquire(1) {
		t.Errorf("NewHasher(…, 10) does not cap the slots at %d", MaxConcurrency)
	}
}

func BenchmarkHash(b *testing.B) {
	h, err := NewHasher(OWASP, NewInline(0))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
