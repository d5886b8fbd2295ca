package edge

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestRequestID(t *testing.T) {
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name     string
		incoming string
		wantEcho bool
	}{
		{"absent", "", false},
		{"well formed", "3f2a-client.id_1:x", true},
		{"too long", strings.Repeat("a", 129), false},
		{"header injection", "abc\r\nSet-Cookie: x", false},
		{"spaces", "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			h := WithRequestContext(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = RequestID(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.incoming != "" {
				r.Header.Set(HeaderRequestID, tt.incoming)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get(HeaderRequestID)
			if got != seen {
				t.Errorf("response id %q != context id %q", got, seen)
			}
			if tt.wantEcho {
				if got != tt.incoming {
					t.Errorf("id = %q, want echo of %q", got, tt.incoming)
				}
			} else if !uuidRE.MatchString(got) {
				t.Errorf("id = %q, want a generated UUID", got)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct", "203.0.113.7:5555", nil, "203.0.113.7"},
		{"untrusted peer spoofing xff", "203.0.113.7:5555", []string{"1.2.3.4"}, "203.0.113.7"},
		{"trusted proxy", "10.1.1.1:5555", []string{"198.51.100.9"}, "198.51.100.9"},
		{"trusted chain picks right-most untrusted", "10.1.1.1:5555", []string{"1.2.3.4, 198.51.100.9, 10.2.2.2"}, "198.51.100.9"},
		{"trusted proxy without xff", "10.1.1.1:5555", nil, "10.1.1.1"},
		{"garbage in chain", "10.1.1.1:5555", []string{"nonsense"}, "10.1.1.1"},
		{"ipv6", "[2001:db8::1]:443", nil, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, trusted); got != tt.want {
				t.Errorf("clientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAccessLogNeverLogsCredentials(t *testing.T) {
	var buf bytes.Buffer
	h := Chain(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}), WithRequestContext(nil), WithAccessLog(testLogger(&buf)))
	r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login?token=querysecret", nil)
	r.Header.Set("Authorization", "Bearer topsecret")
	r.Header.Set("X-Collector-Key", "collectorsecret")
	h.ServeHTTP(httptest.NewRecorder(), r)

	line := buf.String()
	for _, secret := range []string{"topsecret", "collectorsecret", "querysecret"} {
		if strings.Contains(line, secret) {
			t.Errorf("access log leaks %q: %s", secret, line)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	for _, k := range []string{"method", "path", "status", "duration", "request_id", "client_ip"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("access log has no %q: %s", k, line)
		}
	}
	if rec["status"] != float64(http.StatusTeapot) || rec["path"] != "/api/v1/auth/login" {
		t.Errorf("status/path = %v %v", rec["status"], rec["path"])
	}
}

func TestRecovery(t *testing.T) {
	var buf bytes.Buffer
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret panic detail")
	}), WithRequestContext(nil), WithRecovery(testLogger(&buf)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", w.Code)
	}
	if strings.Contains(w.Body.String(), "secret panic detail") {
		t.Errorf("500 body leaks the panic: %s", w.Body)
	}
	var body apiError
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Code != codeInternal || body.GRPCCode != "INTERNAL" || body.RequestID == "" {
		t.Errorf("body = %+v", body)
	}
	if !strings.Contains(buf.String(), "secret panic detail") {
		t.Errorf("panic not logged")
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 16
	mux := NewMux()
	// A handler that reads the whole body and, like grpc-gateway's decoders,
	// turns a read error into an InvalidArgument status.
	if err := mux.HandlePath(http.MethodPost, "/echo", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			WriteError(w, r, errInvalidBody())
			return
		}
		_, _ = w.Write(b)
	}); err != nil {
		t.Fatal(err)
	}
	h := Chain(mux, WithRequestContext(nil), WithBodyLimit(limit))

	tests := []struct {
		name    string
		body    string
		chunked bool
		want    int
	}{
		{"under", "small", false, http.StatusOK},
		{"exact", strings.Repeat("x", limit), false, http.StatusOK},
		{"declared over", strings.Repeat("x", limit+1), false, http.StatusRequestEntityTooLarge},
		{"chunked over", strings.Repeat("x", 10*limit), true, http.StatusRequestEntityTooLarge},
		{"chunked under", "tiny", true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/echo", strings.NewReader(tt.body))
			if tt.chunked {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.want, w.Body)
			}
			if tt.want == http.StatusRequestEntityTooLarge {
				var body apiError
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				if body.Code != codeValidation || body.RequestID == "" || !strings.Contains(body.Message, "16 bytes") {
					t.Errorf("body = %+v", body)
				}
			}
		})
	}
}
