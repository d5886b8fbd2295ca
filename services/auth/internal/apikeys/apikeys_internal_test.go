package apikeys

import (
	"errors"
	"testing"
	"time"
)

func TestKeyState(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		key  Key
		want State
	}{
		{"active", Key{ExpiresAt: now.Add(time.Hour)}, StateActive},
		{"never expires", Key{}, StateActive},
		{"expires exactly now", Key{ExpiresAt: now}, StateExpired},
		{"expired", Key{ExpiresAt: now.Add(-time.Second)}, StateExpired},
		{"rotated, in overlap", Key{ExpiresAt: now.Add(time.Hour), RotatedToID: "x"}, StateRotated},
		{"rotated, overlap over", Key{ExpiresAt: now.Add(-time.Hour), RotatedToID: "x"}, StateExpired},
		{"revoked beats expired", Key{ExpiresAt: now.Add(-time.Hour), RevokedAt: now.Add(-2 * time.Hour)}, StateRevoked},
	}
	for _, tt := range tests {
		if got := tt.key.State(now); got != tt.want {
			t.Errorf("%s: State = %s, want %s", tt.name, got, tt.want)
		}
		tok := CollectorToken{ExpiresAt: tt.key.ExpiresAt, RevokedAt: tt.key.RevokedAt}
		want := tt.want
		if want == StateRotated {
			want = StateActive
		}
		if got := tok.State(now); got != want {
			t.Errorf("%s: token State = %s, want %s", tt.name, got, want)
		}
	}
}

func TestCheckSite(t *testing.T) {
	col := Resolved{Kind: KindCollector, SiteID: "site-a"}
	if err := col.CheckSite("site-a"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		r    Resolved
		site string
	}{
		{col, "site-b"}, {col, ""}, {Resolved{Kind: KindAPIKey}, ""}, {Resolved{Kind: KindCollector}, ""},
	} {
		if err := tc.r.CheckSite(tc.site); !errors.Is(err, ErrSiteMismatch) {
			t.Errorf("CheckSite(%+v, %q) = %v", tc.r, tc.site, err)
		}
	}
}

func TestPageToken(t *testing.T) {
	c := Cursor{CreatedAt: time.Date(2025, 5, 6, 7, 8, 9, 123456000, time.UTC), ID: "0b7e2f7c-2d2b-4f43-9e43-7f4d0e3d1c9a"}
	got, err := decodePageToken(encodePageToken(c))
	if err != nil || !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "!", "YWsxOjE", encodePageToken(Cursor{ID: "nope"})} {
		if _, err := decodePageToken(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("decodePageToken(%q) = %v", bad, err)
		}
	}
}

func TestValidUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"0b7e2f7c-2d2b-4f43-9e43-7f4d0e3d1c9a": true,
		"0B7E2F7C-2D2B-4F43-9E43-7F4D0E3D1C9A": true,
		"0b7e2f7c2d2b4f439e437f4d0e3d1c9a":     false,
		"0b7e2f7c-2d2b-4f43-9e43-7f4d0e3d1c9g": false,
		"":                                     false,
		"0b7e2f7c-2d2b-4f43-9e43_7f4d0e3d1c9a": false,
	} {
		if got := ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v", s, got)
		}
	}
}

func TestCheckScopes(t *testing.T) {
	got, err := checkScopes([]string{"miners:read", "billing:read", "miners:read"})
	if err != nil || len(got) != 2 || got[0] != "billing:read" || got[1] != "miners:read" {
		t.Fatalf("checkScopes = %v, %v", got, err)
	}
	for _, bad := range [][]string{nil, {}, {"miners:fly"}, {""}} {
		if _, err := checkScopes(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("checkScopes(%q) = %v", bad, err)
		}
	}
}
