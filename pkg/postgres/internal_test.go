package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestQueryType(t *testing.T) {
	tests := []struct {
		sql, want string
	}{
		{"SELECT 1", "select"},
		{"  select * from t", "select"},
		{"\n\tINSERT INTO t VALUES (1)", "insert"},
		{"update t set a = 1", "update"},
		{"DELETE FROM t", "delete"},
		{"COPY t FROM STDIN", "copy"},
		{"(SELECT 1) UNION (SELECT 2)", "select"},
		{"-- a comment\nSELECT 1", "select"},
		{"/* outer /* nested */ still comment */ insert into t values (1)", "insert"},
		{"WITH x AS (SELECT 1) SELECT * FROM x", "with"},
		{"begin", "begin"},
		{"frobnicate the table", "other"},
		{"SELECT1", "other"},
		{"", "other"},
		{"-- only a comment", "other"},
		{"/* unterminated", "other"},
		{";", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			if got := queryType(tt.sql); got != tt.want {
				t.Errorf("queryType(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestQuoteLiteral(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "plain", want: "'plain'"},
		{in: "it's", want: "'it''s'"},
		{in: `back\slash`, want: `E'back\\slash'`},
		{in: `'; DROP ROLE x; --\`, want: `E'''; DROP ROLE x; --\\'`},
		{in: "nul\x00byte", wantErr: true},
		{in: "bad\xffutf8", wantErr: true},
	}
	for _, tt := range tests {
		got, err := quoteLiteral(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("quoteLiteral(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPasswordLiteral(t *testing.T) {
	if got, _ := passwordLiteral(""); got != "NULL" {
		t.Errorf("empty password: got %q, want NULL", got)
	}
	// Non-ASCII passwords go to the server as literals (it applies SASLprep itself).
	if got, _ := passwordLiteral("pässwort"); got != "'pässwort'" {
		t.Errorf("non-ASCII password: got %q", got)
	}
	got, err := passwordLiteral("s3cr'et")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "s3cr") {
		t.Fatalf("ASCII password sent in clear: %q", got)
	}
	re := regexp.MustCompile(`^'SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)'$`)
	m := re.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("verifier %q does not have PostgreSQL's SCRAM-SHA-256 form", got)
	}
	// Recompute StoredKey and ServerKey from the salt, as the server does on login.
	salt, _ := base64.StdEncoding.DecodeString(m[1])
	salted, err := pbkdf2.Key(sha256.New, "s3cr'et", salt, 4096, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac("Client Key"))
	if m[2] != base64.StdEncoding.EncodeToString(stored[:]) || m[3] != base64.StdEncoding.EncodeToString(mac("Server Key")) {
		t.Errorf("verifier keys do not match the password")
	}
}

func TestServiceValidate(t *testing.T) {
	tests := []struct {
		svc     Service
		wantErr bool
	}{
		{Service{Schema: "mining", Role: "hashinsight_mining", Password: "x"}, false},
		{Service{Schema: "_x9", Role: "r"}, false},
		{Service{Schema: "Mining", Role: "r"}, true},
		{Service{Schema: "mining;drop", Role: "r"}, true},
		{Service{Schema: "9lives", Role: "r"}, true},
		{Service{Schema: "", Role: "r"}, true},
		{Service{Schema: strings.Repeat("a", 64), Role: "r"}, true},
		{Service{Schema: strings.Repeat("a", 63), Role: "r"}, false},
		{Service{Schema: "public", Role: "r"}, true},
		{Service{Schema: "pg_temp", Role: "r"}, true},
		{Service{Schema: "mining", Role: `x" SUPERUSER`}, true},
		{Service{Schema: "mining", Role: "pg_read_all_data"}, true},
		{Service{Schema: "mining", Role: "r", Password: "a\x00b"}, true},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if err := tt.svc.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate(%+v) = %v, want error %v", tt.svc, err, tt.wantErr)
			}
		})
	}
}

func TestParseKeywordValue(t *testing.T) {
	got, err := parseKeywordValue(`host=db port = 5432  password='a b\'c\\d' user=x\ y dbname=`)
	if err != nil {
		t.Fatal(err)
	}
	want := []kvPair{{"host", "db"}, {"port", "5432"}, {"password", `a b'c\d`}, {"user", "x y"}, {"dbname", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("pair %d: got %q, want %q", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"host", "host='unterminated", "=x"} {
		if _, err := parseKeywordValue(bad); err == nil {
			t.Errorf("parseKeywordValue(%q): want error", bad)
		}
	}
}
