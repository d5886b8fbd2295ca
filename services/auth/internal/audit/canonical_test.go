package audit

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleEvent() Event {
	return Event{
		ID:        "a1b2c3d4e5f60718",
		Timestamp: time.Date(2025, 10, 3, 12, 0, 0, 123456789, time.UTC),
		Level:     LevelInfo,
		Category:  CategoryAuthentication,
		Action:    ActionLogin,
		UserID:    "123",
		UserEmail: "user@example.com",
		UserRole:  "admin",
		IPAddress: "192.168.1.100",
		Status:    StatusSuccess,
		Details:   map[string]any{"login_method": "password", "two_factor": true},
		Seq:       1,
		PrevHash:  GenesisHash,
	}
}

func TestGenesisHash(t *testing.T) {
	if len(GenesisHash) != 64 || strings.Trim(GenesisHash, "0") != "" {
		t.Fatalf("GenesisHash = %q, want 64 zeros", GenesisHash)
	}
}

func TestCanonicalJSONGolden(t *testing.T) {
	e, err := normalize(sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	got, err := canonicalJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"login","category":"authentication","details":{"login_method":"password","two_factor":true},` +
		`"event_id":"a1b2c3d4e5f60718","ip_address":"192.168.1.100","level":"INFO","prev_hash":"` + GenesisHash + `",` +
		`"seq":1,"status":"success","timestamp":"2025-10-03T12:00:00.123456Z","user_email":"user@example.com",` +
		`"user_id":"123","user_role":"admin"}`
	if string(got) != want {
		t.Fatalf("canonical encoding\n got %s\nwant %s", got, want)
	}
}

func TestCanonicalValues(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"negative zero literal", math.Copysign(0, -1), "0"},
		{"integer", 100.0, "100"},
		{"fraction", 0.1, "0.1"},
		{"large", 1e21, "1e+21"},
		{"small", 1e-7, "1e-7"},
		{"int64", int64(9007199254740993), "9007199254740993"},
		{"escapes", "a\"b\\c\n\t\x01</>&\u2028é", `"a\"b\\c\n\t\u0001</>&` + "\u2028é\""},
		{"nested", map[string]any{"b": []any{nil, false, "x"}, "a": map[string]any{}}, `{"a":{},"b":[null,false,"x"]}`},
		// UTF-16 order: U+1F600 (surrogates D83D DE00) sorts before U+FFFD, unlike code point order.
		{"utf16 key order", map[string]any{"\uFFFD": 1.0, "\U0001F600": 2.0, "z": 3.0}, "{\"z\":3,\"\U0001F600\":2,\"\uFFFD\":1}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeCanonical(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Fatalf("got %s, want %s", buf.String(), tt.want)
			}
		})
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), struct{}{}} {
		if err := writeCanonical(new(bytes.Buffer), bad); err == nil {
			t.Errorf("writeCanonical(%v) succeeded, want error", bad)
		}
	}
}

func TestComputeHashCoversEveryField(t *testing.T) {
	base, err := normalize(sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	baseHash, err := ComputeHash(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(baseHash) != 64 {
		t.Fatalf("hash %q is not 64 hex characters", baseHash)
	}
	changes := map[string]func(*Event){
		"id":         func(e *Event) { e.ID = "a1b2c3d4e5f60719" },
		"timestamp":  func(e *Event) { e.Timestamp = e.Timestamp.Add(time.Microsecond) },
		"level":      func(e *Event) { e.Level = LevelSecurity },
		"category":   func(e *Event) { e.Category = CategoryAuthorization },
		"action":     func(e *Event) { e.Action = ActionLogout },
		"user_id":    func(e *Event) { e.UserID = "124" },
		"user_email": func(e *Event) { e.UserEmail = "user@example.org" },
		"user_role":  func(e *Event) { e.UserRole = "owner" },
		"ip_address": func(e *Event) { e.IPAddress = "192.168.1.101" },
		"status":     func(e *Event) { e.Status = StatusFailure },
		"details":    func(e *Event) { e.Details = map[string]any{"login_method": "passwore", "two_factor": true} },
		"seq":        func(e *Event) { e.Seq = 2 },
		"prev_hash":  func(e *Event) { e.PrevHash = strings.Repeat("1", 64) },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			e := base
			e.Details = map[string]any{"login_method": "password", "two_factor": true}
			change(&e)
			h, err := ComputeHash(e)
			if err != nil {
				t.Fatal(err)
			}
			if h == baseHash {
				t.Fatalf("changing %s did not change the hash", name)
			}
		})
	}
	// Hash is not part of its own input.
	e := base
	e.Hash = "whatever"
	if h, _ := ComputeHash(e); h != baseHash {
		t.Fatal("the Hash field changed the hash")
	}
}

func TestNormalize(t *testing.T) {
	type payload struct {
		Count int    `json:"count"`
		Name  string `json:"name"`
	}
	tests := []struct {
		name    string
		in      Event
		wantErr bool
		check   func(t *testing.T, e Event)
	}{
		{name: "defaults", in: Event{Category: "c", Action: "a"}, check: func(t *testing.T, e Event) {
			if e.Level != LevelInfo || e.Status != StatusSuccess || e.Details == nil {
				t.Fatalf("defaults not applied: %+v", e)
			}
		}},
		{name: "details round-trip through JSON", in: Event{Category: "c", Action: "a",
			Details: map[string]any{"n": 3, "p": payload{Count: 2, Name: "x"}, "t": []string{"a"}}},
			check: func(t *testing.T, e Event) {
				if e.Details["n"] != 3.0 {
					t.Fatalf("n = %#v, want float64 3", e.Details["n"])
				}
				p, ok := e.Details["p"].(map[string]any)
				if !ok || p["count"] != 2.0 || p["name"] != "x" {
					t.Fatalf("p = %#v", e.Details["p"])
				}
				if _, ok := e.Details["t"].([]any); !ok {
					t.Fatalf("t = %#v", e.Details["t"])
				}
			}},
		{name: "NUL and invalid UTF-8 replaced", in: Event{Category: "c", Action: "a", UserEmail: "a\x00b\xff",
			Details: map[string]any{"k\x00": "v\x00"}},
			check: func(t *testing.T, e Event) {
				if e.UserEmail != "a\uFFFDb\uFFFD" {
					t.Fatalf("UserEmail = %q", e.UserEmail)
				}
				if e.Details["k\uFFFD"] != "v\uFFFD" {
					t.Fatalf("details = %#v", e.Details)
				}
			}},
		{name: "timestamp truncated to microseconds in UTC", in: Event{Category: "c", Action: "a",
			Timestamp: time.Date(2025, 1, 1, 1, 0, 0, 1999, time.FixedZone("x", 3600))},
			check: func(t *testing.T, e Event) {
				if want := time.Date(2025, 1, 1, 0, 0, 0, 1000, time.UTC); !e.Timestamp.Equal(want) || e.Timestamp.Location() != time.UTC {
					t.Fatalf("Timestamp = %v, want %v", e.Timestamp, want)
				}
			}},
		{name: "missing category", in: Event{Action: "a"}, wantErr: true},
		{name: "missing action", in: Event{Category: "c"}, wantErr: true},
		{name: "bad level", in: Event{Category: "c", Action: "a", Level: "DEBUG"}, wantErr: true},
		{name: "bad status", in: Event{Category: "c", Action: "a", Status: "ok"}, wantErr: true},
		{name: "bad id", in: Event{Category: "c", Action: "a", ID: "XYZ"}, wantErr: true},
		{name: "long action", in: Event{Category: "c", Action: strings.Repeat("a", 65)}, wantErr: true},
		{name: "NaN detail", in: Event{Category: "c", Action: "a", Details: map[string]any{"x": math.NaN()}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalize(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidEvent) {
					t.Fatalf("err = %v, want ErrInvalidEvent", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

func TestLevelAtLeast(t *testing.T) {
	got := LevelWarning.AtLeast()
	if len(got) != 3 || got[0] != LevelWarning || got[2] != LevelError {
		t.Fatalf("AtLeast = %v", got)
	}
	if Level("nope").AtLeast() != nil {
		t.Fatal("invalid level has levels")
	}
}

func TestPageToken(t *testing.T) {
	tok := encodePageToken(42)
	if got, err := decodePageToken(tok); err != nil || got != 42 {
		t.Fatalf("decode(encode(42)) = %d, %v", got, err)
	}
	for _, bad := range []string{"x", "!!", encodePageToken(0), "YXVkaXQxOi01"} {
		if _, err := decodePageToken(bad); !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("decodePageToken(%q) err = %v, want ErrInvalidFilter", bad, err)
		}
	}
}
