package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashinsight/platform/pkg/authn/apikey"
)

// testToken returns a JWT-shaped token for subject (unsigned: the edge only reads it).
func testToken(t *testing.T, subject string) string {
	t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return seg(map[string]string{"alg": "EdDSA", "kid": "k"}) + "." + seg(map[string]any{"sub": subject}) + "." + seg("signature")
}

func testKey(t *testing.T) string {
	t.Helper()
	k, _, err := apikey.Generate("dev", apikey.KindKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (m *mesh) get(t *testing.T, srv *httptest.Server, path, auth string) (*http.Response, errBody) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e errBody
	_ = json.Unmarshal(b, &e)
	return resp, e
}

func TestMalformedCredentialsRefusedAtTheEdge(t *testing.T) {
	m := newMesh(t, meshOptions{})
	key := testKey(t)
	badChecksum := key[:len(key)-1] + map[bool]string{true: "B", false: "A"}[key[len(key)-1] == 'A']
	for _, auth := range []string{
		"Bearer tok-123",
		"Bearer " + badChecksum,
		"Bearer " + key[:len(key)-4],
		"Bearer hsi_dev_key_0000",
		"Bearer not.a.jwt!",
		"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", // alg=none: empty signature
		"Basic dXNlcjpwYXNz",
		"Bearer",
	} {
		resp, e := m.get(t, m.server, "/api/v1/auth/me", auth)
		if resp.StatusCode != http.StatusUnauthorized || e.Code != "AUTH_001" || e.GRPCCode != "UNAUTHENTICATED" || e.RequestID == "" {
			t.Errorf("%q = %d %+v, want 401 AUTH_001", auth, resp.StatusCode, e)
		}
	}
	if n := m.auth.getMeCalls(); n != 0 {
		t.Errorf("auth was called %d times for malformed credentials", n)
	}
	// Well-formed ones are the services' to judge.
	for _, auth := range []string{"Bearer " + key, "Bearer " + testToken(t, "u-1")} {
		if resp, e := m.get(t, m.server, "/api/v1/auth/me", auth); resp.StatusCode != http.StatusOK {
			t.Errorf("%q = %d %+v, want forwarded", auth, resp.StatusCode, e)
		}
	}
	if n := m.auth.getMeCalls(); n != 2 {
		t.Errorf("auth calls = %d, want 2", n)
	}
}

func TestRateLimitThroughGateway(t *testing.T) {
	m := newMesh(t, meshOptions{env: map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "2"}})
	keyA, keyB := "Bearer "+testKey(t), "Bearer "+testKey(t)
	for i := range 2 {
		resp, e := m.get(t, m.server, "/api/v1/auth/me", keyA)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d = %d %+v", i+1, resp.StatusCode, e)
		}
		if resp.Header.Get("X-RateLimit-Limit") != "2" || resp.Header.Get("X-RateLimit-Remaining") != []string{"1", "0"}[i] {
			t.Errorf("request %d headers: limit %q remaining %q", i+1, resp.Header.Get("X-RateLimit-Limit"), resp.Header.Get("X-RateLimit-Remaining"))
		}
	}
	resp, e := m.get(t, m.server, "/api/v1/auth/me", keyA)
	if resp.StatusCode != http.StatusTooManyRequests || e.Code != "API_001" || e.GRPCCode != "RESOURCE_EXHAUSTED" {
		t.Fatalf("over the limit = %d %+v, want 429 API_001", resp.StatusCode, e)
	}
	// 2 per minute: one every 30 s, less the time the test took (whole seconds, rounded up).
	if got := resp.Header.Get("Retry-After"); got != "30" && got != "29" {
		t.Errorf("Retry-After = %q, want 30", got)
	}
	if n := m.auth.getMeCalls(); n != 2 {
		t.Errorf("auth calls = %d, want 2 (the 429 is answered at the edge)", n)
	}
	// Other keys, users and anonymous callers are unaffected; health is never limited.
	for _, auth := range []string{keyB, "Bearer " + testToken(t, "user-1"), ""} {
		if resp, e := m.get(t, m.server, "/api/v1/auth/me", auth); resp.StatusCode != http.StatusOK {
			t.Errorf("%q = %d %+v, want unaffected", auth, resp.StatusCode, e)
		}
	}
	for range 5 {
		if resp, _ := m.get(t, m.server, "/health", keyA); resp.StatusCode != http.StatusOK {
			t.Fatalf("/health = %d", resp.StatusCode)
		}
	}
	// The rejection is counted.
	srv := httptest.NewServer(m.gw.metricsHandler)
	defer srv.Close()
	mresp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	b, _ := io.ReadAll(mresp.Body)
	if !strings.Contains(string(b), `hashinsight_rate_limited_total{scope="api_key",service="gateway"} 1`) {
		t.Errorf("/metrics lacks the rejection:\n%s", grepLines(string(b), "rate_limit"))
	}
}

func TestRateLimitDisabled(t *testing.T) {
	m := newMesh(t, meshOptions{env: map[string]string{"RATE_LIMIT_ENABLED": "false", "RATE_LIMIT_REQUESTS_PER_MINUTE": "1"}})
	for range 5 {
		if resp, e := m.get(t, m.server, "/api/v1/auth/me", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("= %d %+v, want no limit", resp.StatusCode, e)
		}
	}
	// Malformed credentials are still refused.
	if resp, _ := m.get(t, m.server, "/api/v1/auth/me", "Bearer nope"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("malformed = %d, want 401", resp.StatusCode)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRateLimitSharedAcrossReplicas: two gateways on one Redis share each key's budget; when
// Redis goes away each falls back to its own in-memory budget (logged once), never to no limit.
func TestRateLimitSharedAcrossReplicas(t *testing.T) {
	url, stop := startRedis(t)
	m := newMesh(t, meshOptions{env: map[string]string{"REDIS_URL": url, "RATE_LIMIT_REQUESTS_PER_MINUTE": "4"}})
	var logs syncBuffer
	_, second := m.replica(t, slog.New(slog.NewTextHandler(&logs, nil)))
	replicas := []*httptest.Server{m.server, second}

	key := "Bearer " + testKey(t)
	for i := range 4 {
		if resp, e := m.get(t, replicas[i%2], "/api/v1/auth/me", key); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d on replica %d = %d %+v", i+1, i%2, resp.StatusCode, e)
		}
	}
	for i, srv := range replicas {
		resp, _ := m.get(t, srv, "/api/v1/auth/me", key)
		if ra := resp.Header.Get("Retry-After"); resp.StatusCode != http.StatusTooManyRequests || (ra != "15" && ra != "14") {
			t.Errorf("replica %d after the shared budget = %d (Retry-After %q), want 429 / 15", i, resp.StatusCode, ra)
		}
	}

	stop()
	other := "Bearer " + testKey(t)
	codes := []int{}
	for range 6 {
		resp, _ := m.get(t, second, "/api/v1/auth/me", other)
		codes = append(codes, resp.StatusCode)
	}
	if want := []int{200, 200, 200, 200, 429, 429}; !equalInts(codes, want) {
		t.Errorf("without Redis = %v, want the in-memory budget %v", codes, want)
	}
	if n := strings.Count(logs.String(), "redis failing"); n != 1 {
		t.Errorf("%d fallback log lines, want exactly 1:\n%s", n, logs.String())
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOpenAPIDeclaresBearer(t *testing.T) {
	m := newMesh(t, meshOptions{})
	resp, body := m.do(t, http.MethodGet, "/openapi.json", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("= %d", resp.StatusCode)
	}
	doc := decode[struct {
		SecurityDefinitions map[string]map[string]string         `json:"securityDefinitions"`
		Security            []map[string][]string                `json:"security"`
		Paths               map[string]map[string]map[string]any `json:"paths"`
	}](t, body)
	if b := doc.SecurityDefinitions["bearer"]; b["type"] != "apiKey" || b["in"] != "header" || b["name"] != "Authorization" {
		t.Errorf("securityDefinitions.bearer = %v", b)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Errorf("security = %v", doc.Security)
	}
	// Login and refresh are public (access option public: true): no credential required.
	for _, p := range []string{"/api/v1/auth/login", "/api/v1/auth/refresh"} {
		if sec, ok := doc.Paths[p]["post"]["security"].([]any); !ok || len(sec) != 0 {
			t.Errorf("%s security = %v, want []", p, doc.Paths[p]["post"]["security"])
		}
	}
	if _, ok := doc.Paths["/api/v1/auth/me"]["get"]["security"]; ok {
		t.Errorf("/api/v1/auth/me overrides the bearer requirement")
	}
}
