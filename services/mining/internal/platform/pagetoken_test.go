package platform

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPageTokenRoundTrip(t *testing.T) {
	for _, keys := range [][]string{
		{"1732490000123456", "0b7c7f5e-8f0e-4f5e-9c1a-1f2e3d4c5b6a"},
		{"bitmain", "antminer s19 pro", "id"},
		{"with \"quotes\" | pipes", "ünïcode", ""},
	} {
		tok := EncodePageToken("q", keys...)
		if strings.ContainsAny(tok, "+/=") {
			t.Fatalf("token %q is not URL-safe", tok)
		}
		got, err := DecodePageToken(tok, "q", len(keys))
		if err != nil || !slices.Equal(got, keys) {
			t.Fatalf("decode(%q) = %v, %v; want %v", tok, got, err, keys)
		}
	}
}

func TestPageTokenRefused(t *testing.T) {
	tok := EncodePageToken("miners|site=a", "1", "2")
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := slices.Clone(raw)
	flipped[3] ^= 0x01
	forged := []byte(`{"q":"x","k":["1","2"]}12345678`)
	tests := []struct {
		name, token, query string
		n                  int
	}{
		{"other query", tok, "miners|site=b", 2},
		{"wrong key count", tok, "miners|site=a", 3},
		{"not base64", "%%%", "miners|site=a", 2},
		{"empty", "", "miners|site=a", 2},
		{"flipped bit", base64.RawURLEncoding.EncodeToString(flipped), "miners|site=a", 2},
		{"truncated", base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]), "miners|site=a", 2},
		{"forged without checksum", base64.RawURLEncoding.EncodeToString(forged), "miners|site=a", 2},
		{"too long", strings.Repeat("A", maxPageTokenLen+1), "miners|site=a", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePageToken(tc.token, tc.query, tc.n)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "page_token" {
				t.Fatalf("err = %v, want a page_token field error", err)
			}
		})
	}
}
