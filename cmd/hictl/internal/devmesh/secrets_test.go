package devmesh

import (
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var base64url = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestLoadOrCreateSecrets(t *testing.T) {
	services := []string{"auth", "mining"}
	valid := strings.Repeat("a", 43)
	tests := []struct {
		name          string
		existing      *string // nil: no file
		perm          os.FileMode
		rnd           func() io.Reader
		wantGenerated []string
		wantErr       string
		check         func(t *testing.T, s Secrets)
	}{
		{
			name:          "fresh machine generates everything",
			wantGenerated: []string{"SESSION_SECRET", "ENCRYPTION_PASSWORD", "AUTH_DB_PASSWORD", "MINING_DB_PASSWORD"},
			check: func(t *testing.T, s Secrets) {
				for name, v := range map[string]string{"SESSION_SECRET": s.SessionSecret, "ENCRYPTION_PASSWORD": s.EncryptionPassword} {
					if len(v) != 43 || !base64url.MatchString(v) {
						t.Errorf("%s = %d chars, want 43 base64url chars", name, len(v))
					}
				}
				for _, svc := range services {
					if v := s.DBPasswords[svc]; len(v) != 32 || !base64url.MatchString(v) {
						t.Errorf("%s password has %d chars, want 32 base64url chars", svc, len(v))
					}
				}
				if s.SessionSecret == s.EncryptionPassword || s.DBPasswords["auth"] == s.DBPasswords["mining"] {
					t.Error("generated values repeat")
				}
			},
		},
		{
			name:          "complete file is reused as is",
			existing:      ptr("# comment\n\nSESSION_SECRET=" + valid + "\nENCRYPTION_PASSWORD=" + strings.Repeat("b", 43) + "\nAUTH_DB_PASSWORD=" + strings.Repeat("c", 32) + "\nMINING_DB_PASSWORD=" + strings.Repeat("d", 32) + "\n"),
			perm:          0o600,
			wantGenerated: nil,
			check: func(t *testing.T, s Secrets) {
				if s.SessionSecret != valid || s.EncryptionPassword != strings.Repeat("b", 43) || s.DBPasswords["mining"] != strings.Repeat("d", 32) {
					t.Errorf("values not reused: %+v", s)
				}
			},
		},
		{
			name:          "missing and too-short values are filled in, valid ones kept",
			existing:      ptr("SESSION_SECRET=" + valid + "\nENCRYPTION_PASSWORD=short\n"),
			perm:          0o600,
			wantGenerated: []string{"ENCRYPTION_PASSWORD", "AUTH_DB_PASSWORD", "MINING_DB_PASSWORD"},
			check: func(t *testing.T, s Secrets) {
				if s.SessionSecret != valid {
					t.Error("valid SESSION_SECRET was replaced")
				}
				if len(s.EncryptionPassword) != 43 {
					t.Errorf("short ENCRYPTION_PASSWORD not regenerated: %d chars", len(s.EncryptionPassword))
				}
			},
		},
		{
			name:          "loose permissions are tightened",
			existing:      ptr("SESSION_SECRET=" + valid + "\nENCRYPTION_PASSWORD=" + valid + "\nAUTH_DB_PASSWORD=" + valid + "\nMINING_DB_PASSWORD=" + valid + "\n"),
			perm:          0o644,
			wantGenerated: nil,
		},
		{
			name:     "malformed file is an error",
			existing: ptr("SESSION_SECRET\n"),
			perm:     0o600,
			wantErr:  "line 1",
		},
		{
			name:    "no entropy is an error",
			rnd:     func() io.Reader { return failingReader{} },
			wantErr: "no entropy",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secrets.env")
			if tt.existing != nil {
				if err := os.WriteFile(path, []byte(*tt.existing), tt.perm); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.perm); err != nil {
					t.Fatal(err)
				}
			}
			rnd := rand.Reader
			if tt.rnd != nil {
				rnd = tt.rnd()
			}
			s, generated, err := LoadOrCreateSecrets(path, services, rnd)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(generated, tt.wantGenerated) {
				t.Errorf("generated = %v, want %v", generated, tt.wantGenerated)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", st.Mode().Perm())
			}
			if tt.check != nil {
				tt.check(t, s)
			}

			// A second run reuses everything and rewrites nothing.
			before, _ := os.ReadFile(path)
			again, generated2, err := LoadOrCreateSecrets(path, services, failingReader{})
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if len(generated2) != 0 {
				t.Errorf("second run generated %v", generated2)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Error("second run rewrote the file")
			}
			if again.SessionSecret != s.SessionSecret || again.EncryptionPassword != s.EncryptionPassword ||
				!mapsEqual(again.DBPasswords, s.DBPasswords) {
				t.Error("second run returned different secrets")
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }
