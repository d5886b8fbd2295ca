package apikey

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func mustGenerate(t testing.TB, env, kind string) (string, Key) {
	t.Helper()
	s, k, err := Generate(env, kind)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

func TestGenerateRoundTrip(t *testing.T) {
	for _, tc := range []struct{ env, kind string }{
		{"dev", KindKey}, {"prod", KindCollector}, {"ab", KindKey}, {"abcdefgh", KindCollector},
	} {
		s, k := mustGenerate(t, tc.env, tc.kind)
		wantPrefix := fmt.Sprintf("hsi_%s_%s_", tc.env, tc.kind)
		if !strings.HasPrefix(s, wantPrefix) || len(s) != len(wantPrefix)+RandomLen+ChecksumLen {
			t.Errorf("generated %q does not have the format", s)
		}
		got, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(Generate()): %v", err)
		}
		if got != k || got.Plaintext() != s || got.Env != tc.env || got.Kind != tc.kind {
			t.Errorf("Parse = %+v, want %+v", got, k)
		}
		if p := got.Prefix(); len(p) != PrefixLen || !strings.HasPrefix(s, wantPrefix+p) {
			t.Errorf("prefix %q", p)
		}
	}
	a, _ := mustGenerate(t, "dev", KindKey)
	b, _ := mustGenerate(t, "dev", KindKey)
	if a == b {
		t.Error("two generated keys are equal")
	}
}

func TestGenerateRejects(t *testing.T) {
	for _, tc := range []struct{ env, kind string }{
		{"d", KindKey}, {"abcdefghi", KindKey}, {"Dev", KindKey}, {"de_v", KindKey}, {"dev", "hsc"}, {"dev", ""},
	} {
		if _, _, err := Generate(tc.env, tc.kind); err == nil {
			t.Errorf("Generate(%q, %q) succeeded", tc.env, tc.kind)
		}
	}
}

func TestParse(t *testing.T) {
	valid, _ := mustGenerate(t, "dev", KindKey)
	body := valid[:len(valid)-ChecksumLen]
	sum := valid[len(valid)-ChecksumLen:]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := []struct {
		name string
		in   string
		want error // nil: valid
	}{
		{"valid", valid, nil},
		{"empty", "", ErrMalformed},
		{"jwt-looking", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2ln", ErrMalformed},
		{"other scheme", "hsc" + valid[3:], ErrMalformed},
		{"upper-case env", "hsi_DEV" + valid[7:], ErrMalformed},
		{"one-letter env", "hsi_d_key_" + valid[len("hsi_dev_key_"):], ErrMalformed},
		{"unknown kind", "hsi_dev_abc_" + valid[len("hsi_dev_key_"):], ErrMalformed},
		{"truncated", valid[:len(valid)-1], ErrMalformed},
		{"extended", valid + "a", ErrMalformed},
		{"non-base62", body[:20] + "-" + body[21:] + sum, ErrMalformed},
		{"too long", valid + strings.Repeat("a", 1000), ErrMalformed},
		{"whitespace", " " + valid[1:], ErrMalformed},
		{"flipped random char", flip(valid, 20), ErrChecksum},
		{"flipped checksum char", flip(valid, len(valid)-1), ErrChecksum},
		{"other env, same rest", "hsi_prd" + valid[7:], ErrChecksum},
		{"kind swapped", strings.Replace(valid, "_key_", "_col_", 1), ErrChecksum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error %v, want %v", err, tc.want)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[8:]) {
				t.Errorf("error %q contains the input", err)
			}
		})
	}
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	s, k := mustGenerate(t, "dev", KindKey)
	secret := s[len("hsi_dev_key_")+PrefixLen:]
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", k)
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), buf.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("formatted key leaks the secret: %s", out)
		}
		if !strings.Contains(out, k.Prefix()) {
			t.Errorf("formatted key lacks the public prefix: %s", out)
		}
	}
}

func TestHasher(t *testing.T) {
	if _, err := NewHasher("short"); err == nil {
		t.Fatal("NewHasher accepted a short secret")
	}
	h1, err := NewHasher(strings.Repeat("a", 32))
	if err != nil {
		t.Fatal(err)
	}
	h1b, _ := NewHasher(strings.Repeat("a", 32))
	h2, _ := NewHasher(strings.Repeat("b", 32))
	s, _ := mustGenerate(t, "dev", KindKey)
	other, _ := mustGenerate(t, "dev", KindKey)

	if !bytes.Equal(h1.Hash(s), h1b.Hash(s)) {
		t.Error("same secret, different hashes")
	}
	if bytes.Equal(h1.Hash(s), h2.Hash(s)) {
		t.Error("different secrets, same hash")
	}
	if len(h1.Hash(s)) != 32 || len(h1.HashHex(s)) != 64 {
		t.Error("hash sizes")
	}
	if !h1.Verify(s, h1.Hash(s)) || h1.Verify(other, h1.Hash(s)) || h1.Verify(s, nil) {
		t.Error("Verify")
	}
	if ok, err := h1.VerifyHex(s, h1.HashHex(s)); !ok || err != nil {
		t.Errorf("VerifyHex = %v, %v", ok, err)
	}
	if _, err := h1.VerifyHex(s, "zz"); !errors.Is(err, ErrHashHex) {
		t.Errorf("VerifyHex bad hex: %v", err)
	}
	if bytes.Contains([]byte(h1.HashHex(s)), []byte(s)) {
		t.Error("hash contains the key")
	}
}

func FuzzParse(f *testing.F) {
	for _, env := range []string{"dev", "prod"} {
		for _, kind := range []string{KindKey, KindCollector} {
			s, _, _ := Generate(env, kind)
			f.Add(s)
			f.Add(s[:len(s)-1] + "0")
		}
	}
	f.Add("")
	f.Add("hsi_")
	f.Add("hsi_dev_key_")
	f.Add("hsi_dev_key_" + strings.Repeat("z", 38))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || (!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum)) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if k.Plaintext() != s {
			t.Fatalf("accepted %q but it re-formats as %q", s, k.Plaintext())
		}
		if checksum(s[:len(s)-ChecksumLen]) != s[len(s)-ChecksumLen:] {
			t.Fatalf("accepted %q with a wrong checksum", s)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	s, _ := mustGenerate(b, "dev", KindKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBadChecksum(b *testing.B) {
	s, _ := mustGenerate(b, "dev", KindKey)
	s = s[:len(s)-1] + "!"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Generate("dev", KindKey); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	h, _ := NewHasher(strings.Repeat("s", 40))
	s, _ := mustGenerate(b, "dev", KindKey)
	b.ReportAllocs()
	for b.Loop() {
		h.Hash(s)
	}
}
