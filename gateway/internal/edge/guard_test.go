package edge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashinsight/platform/gateway/internal/ratelimit"
	"github.com/hashinsight/platform/pkg/authn/apikey"
)

// jwtWith returns a JWT-shaped token with the given claims (unsigned: the edge never verifies).
func jwtWith(t *testing.T, claims map[string]any) string {
	t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return seg(map[string]string{"alg": "EdDSA", "kid": "k1"}) + "." + seg(claims) + "." +
		base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
}

func newKey(t *testing.T, kind string) (string, apikey.Key) {
	t.Helper()
	plain, k, err := apikey.Generate("dev", kind)
	if err != nil {
		t.Fatal(err)
	}
	return plain, k
}

// corrupt changes the last checksum character of a key.
func corrupt(key string) string {
	last := key[len(key)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return key[:len(key)-1] + string(repl)
}

func TestClassify(t *testing.T) {
	key, k := newKey(t, apikey.KindKey)
	col, ck := newKey(t, apikey.KindCollector)
	tok := jwtWith(t, map[string]any{"sub": "5f0c7a9e-6f0a-4c52-9a35-2b8d3c4e5f60", "exp": 1})
	tests := []struct {
		name       string
		header     []string
		collector  string
		wantKind   credKind
		wantBucket string
	}{
		{"no header", nil, "", credNone, ""},
		{"api key", []string{"Bearer " + key}, "", credAPIKey, "key:dev:key:" + k.Prefix()},
		{"collector token", []string{"Bearer " + col}, "", credAPIKey, "key:dev:col:" + ck.Prefix()},
		{"lower-case scheme", []string{"bearer " + key}, "", credAPIKey, "key:dev:key:" + k.Prefix()},
		{"jwt with sub", []string{"Bearer " + tok}, "", credToken, "user:5f0c7a9e-6f0a-4c52-9a35-2b8d3c4e5f60"},
		{"jwt without sub", []string{"Bearer " + jwtWith(t, map[string]any{"exp": 1})}, "", credToken, ""},
		{"jwt with numeric sub", []string{"Bearer " + jwtWith(t, map[string]any{"sub": 42})}, "", credToken, ""},
		{"jwt with odd sub is hashed", []string{"Bearer " + jwtWith(t, map[string]any{"sub": "a b\nc"})}, "", credToken, "user:#"},
		{"collector key header only", nil, col, credNone, "key:dev:col:" + ck.Prefix()},
		{"legacy collector key header", nil, "site-token", credNone, ""},

		{"checksum-failing api key", []string{"Bearer " + corrupt(key)}, "", credMalformed, ""},
		{"truncated api key", []string{"Bearer " + key[:len(key)-3]}, "", credMalformed, ""},
		{"hsi_ garbage", []string{"Bearer hsi_dev_key_nope"}, "", credMalformed, ""},
		{"opaque token", []string{"Bearer tok-123"}, "", credMalformed, ""},
		{"two dots, not base64url", []string{"Bearer a+b.c/d.e=f"}, "", credMalformed, ""},
		{"empty signature (alg=none)", []string{"Bearer " + strings.TrimSuffix(tok, tok[strings.LastIndex(tok, ".")+1:])}, "", credMalformed, ""},
		{"payload not json", []string{"Bearer eyJhbGciOiJFZERTQSJ9.bm90LWpzb24.c2ln"}, "", credMalformed, ""},
		{"payload json null", []string{"Bearer eyJhbGciOiJFZERTQSJ9.bnVsbA.c2ln"}, "", credMalformed, ""},
		{"four parts", []string{"Bearer " + tok + ".x"}, "", credMalformed, ""},
		{"basic auth", []string{"Basic dXNlcjpwYXNz"}, "", credMalformed, ""},
		{"bearer without value", []string{"Bearer "}, "", credMalformed, ""},
		{"empty header", []string{""}, "", credMalformed, ""},
		{"two headers", []string{"Bearer " + key, "Bearer " + key}, "", credMalformed, ""},
		{"oversized token", []string{"Bearer " + tok + strings.Repeat("A", maxTokenLen)}, "", credMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/miners", nil)
			for _, v := range tt.header {
				r.Header.Add("Authorization", v)
			}
			if tt.collector != "" {
				r.Header.Set("X-Collector-Key", tt.collector)
			}
			c := classify(r)
			if c.kind != tt.wantKind {
				t.Errorf("kind = %v, want %v", c.kind, tt.wantKind)
			}
			if tt.wantBucket == "user:#" {
				if !strings.HasPrefix(c.bucket, "user:#") || len(c.bucket) != len("user:#")+32 {
					t.Errorf("bucket = %q, want a hashed user bucket", c.bucket)
				}
			} else if c.bucket != tt.wantBucket {
				t.Errorf("bucket = %q, want %q", c.bucket, tt.wantBucket)
			}
			if strings.Contains(c.bucket, key) || strings.Contains(c.bucket, col) {
				t.Errorf("bucket %q contains the secret", c.bucket)
			}
		})
	}
}

func TestIPBucket(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":          "ip:203.0.113.7",
		"::ffff:203.0.113.7":   "ip:203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "ip:2001:db8:1:2::/64",
		"2001:db8:1:2::9":      "ip:2001:db8:1:2::/64",
	} {
		if got := ipBucket(in); got != want {
			t.Errorf("ipBucket(%s) = %s, want %s", in, got, want)
		}
	}
}

// guarded is WithGuard in front of a backend that counts calls and answers status.
type guarded struct {
	h       http.Handler
	mu      sync.Mutex
	calls   int
	status  int // what the backend answers (default 200)
	limiter *ratelimit.Memory
	clock   *fakeClock
	scopes  []string
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newGuarded(t *testing.T, perMinute int) *guarded {
	t.Helper()
	g := &guarded{clock: &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}}
	if perMinute > 0 {
		l, err := ratelimit.NewMemory(ratelimit.MemoryOptions{PerMinute: perMinute, Now: g.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		g.limiter = l
	}
	backend := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g.mu.Lock()
		g.calls++
		st := g.status
		g.mu.Unlock()
		if st == 0 {
			st = http.StatusOK
		}
		w.WriteHeader(st)
	})
	opts := GuardOptions{
		Exempt:   []string{"/health", "/health/detailed", "/metrics"},
		OnReject: func(s string) { g.mu.Lock(); g.scopes = append(g.scopes, s); g.mu.Unlock() },
	}
	if g.limiter != nil {
		opts.Limiter = g.limiter
		failures, err := ratelimit.NewMemory(ratelimit.MemoryOptions{PerMinute: perMinute, Now: g.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		opts.Failures = failures
	}
	g.h = Chain(backend, WithRequestContext(nil), WithGuard(opts))
	return g
}

func (g *guarded) setStatus(s int) {
	g.mu.Lock()
	g.status = s
	g.mu.Unlock()
}

func (g *guarded) backendCalls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

func (g *guarded) do(path, ip, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = ip + ":40000"
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	g.h.ServeHTTP(w, r)
	return w
}

func TestGuardRefusesMalformedCredentialsWithoutBackendCall(t *testing.T) {
	key, _ := newKey(t, apikey.KindKey)
	for _, limited := range []bool{false, true} {
		perMinute := 0
		if limited {
			perMinute = 1000
		}
		g := newGuarded(t, perMinute)
		for _, auth := range []string{"Bearer tok-123", "Bearer " + corrupt(key), "Basic dXNlcjpwYXNz", "Bearer hsi_dev_key_x", "Bearer a.b"} {
			w := g.do("/api/v1/miners", "198.51.100.1", auth)
			var e apiError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("%q: body %s: %v", auth, w.Body, err)
			}
			if w.Code != http.StatusUnauthorized || e.Code != "AUTH_001" || e.GRPCCode != "UNAUTHENTICATED" || e.RequestID == "" {
				t.Errorf("limited=%v %q = %d %s, want 401 AUTH_001", limited, auth, w.Code, w.Body)
			}
		}
		if n := g.backendCalls(); n != 0 {
			t.Errorf("limited=%v: backend called %d times for malformed credentials", limited, n)
		}
		// Health probes never look at credentials.
		if w := g.do("/health", "198.51.100.1", "Bearer tok-123"); w.Code != http.StatusOK {
			t.Errorf("/health with a malformed credential = %d", w.Code)
		}
		// Well-formed credentials reach the backend, which decides.
		for _, auth := range []string{"", "Bearer " + key, "Bearer " + jwtWith(t, map[string]any{"sub": "u-1"})} {
			if w := g.do("/api/v1/miners", "198.51.100.1", auth); w.Code != http.StatusOK {
				t.Errorf("%q = %d %s, want forwarded", auth, w.Code, w.Body)
			}
		}
	}
}

func TestGuardRateLimits(t *testing.T) {
	keyA, _ := newKey(t, apikey.KindKey)
	keyB, _ := newKey(t, apikey.KindKey)
	userA := "Bearer " + jwtWith(t, map[string]any{"sub": "user-a"})
	userA2 := "Bearer " + jwtWith(t, map[string]any{"sub": "user-a", "jti": "another token"})
	userB := "Bearer " + jwtWith(t, map[string]any{"sub": "user-b"})
	const limit = 3
	tests := []struct {
		name string
		// first, spent `limit` times from ip1, then refused
		first    string
		rejected string // scope
		// others are unaffected afterwards: {ip, auth}
		others [][2]string
		// same are refused too (the same bucket under another guise)
		same [][2]string
	}{
		{
			name: "per api key", first: "Bearer " + keyA, rejected: ScopeAPIKey,
			others: [][2]string{{"198.51.100.1", "Bearer " + keyB}, {"198.51.100.1", userA}, {"198.51.100.1", ""}},
			same:   [][2]string{{"203.0.113.99", "Bearer " + keyA}},
		},
		{
			name: "per user", first: userA, rejected: ScopeUser,
			others: [][2]string{{"198.51.100.1", userB}, {"198.51.100.1", "Bearer " + keyA}, {"198.51.100.1", ""}},
			same:   [][2]string{{"203.0.113.99", userA2}},
		},
		{
			name: "per ip", first: "", rejected: ScopeIP,
			others: [][2]string{{"198.51.100.2", ""}, {"198.51.100.1", "Bearer " + keyA}, {"198.51.100.1", userA}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuarded(t, limit)
			for i := range limit {
				w := g.do("/api/v1/miners", "198.51.100.1", tt.first)
				if w.Code != http.StatusOK {
					t.Fatalf("request %d = %d %s, want 200 below the limit", i+1, w.Code, w.Body)
				}
				if got := w.Header().Get(HeaderRateLimitLimit); got != "3" {
					t.Errorf("X-RateLimit-Limit = %q", got)
				}
				if got, want := w.Header().Get(HeaderRateLimitRemaining), []string{"2", "1", "0"}[i]; got != want {
					t.Errorf("request %d: X-RateLimit-Remaining = %q, want %s", i+1, got, want)
				}
			}
			w := g.do("/api/v1/miners", "198.51.100.1", tt.first)
			var e apiError
			_ = json.Unmarshal(w.Body.Bytes(), &e)
			if w.Code != http.StatusTooManyRequests || e.Code != "API_001" || e.GRPCCode != "RESOURCE_EXHAUSTED" || e.RequestID == "" {
				t.Fatalf("over the limit = %d %s, want 429 API_001", w.Code, w.Body)
			}
			// 3 per minute: one request every 20 s.
			if got := w.Header().Get(HeaderRetryAfter); got != "20" {
				t.Errorf("Retry-After = %q, want 20", got)
			}
			if got := w.Header().Get(HeaderRateLimitRemaining); got != "0" {
				t.Errorf("X-RateLimit-Remaining = %q, want 0", got)
			}
			if n := g.backendCalls(); n != limit {
				t.Errorf("backend calls = %d, want %d (the 429 is answered at the edge)", n, limit)
			}
			if len(g.scopes) != 1 || g.scopes[0] != tt.rejected {
				t.Errorf("rejections = %v, want [%s]", g.scopes, tt.rejected)
			}
			for _, o := range tt.others {
				if w := g.do("/api/v1/miners", o[0], o[1]); w.Code != http.StatusOK {
					t.Errorf("unaffected %v = %d %s", o, w.Code, w.Body)
				}
			}
			for _, s := range tt.same {
				if w := g.do("/api/v1/miners", s[0], s[1]); w.Code != http.StatusTooManyRequests {
					t.Errorf("same bucket %v = %d, want 429", s, w.Code)
				}
			}
			// Health probes are never limited.
			for _, p := range []string{"/health", "/health/detailed", "/metrics"} {
				if w := g.do(p, "198.51.100.1", tt.first); w.Code != http.StatusOK {
					t.Errorf("%s = %d, want never limited", p, w.Code)
				}
			}
			// The budget refills: one request per 20 s.
			g.clock.Advance(20 * time.Second)
			if w := g.do("/api/v1/miners", "198.51.100.1", tt.first); w.Code != http.StatusOK {
				t.Errorf("after 20 s = %d, want 200", w.Code)
			}
		})
	}
}

// TestGuardChargesRefusedCredentialsToTheIP: inventing credentials (each with a bucket of its
// own) is bounded by the IP's budget: services' 401s and malformed credentials spend it, and an
// IP in the red gets 429 whatever credential it shows.
func TestGuardChargesRefusedCredentialsToTheIP(t *testing.T) {
	g := newGuarded(t, 3)
	g.setStatus(http.StatusUnauthorized) // the services reject every credential
	for i := range 3 {
		key, _ := newKey(t, apikey.KindKey) // a fresh, well-formed, unknown key each time
		if w := g.do("/api/v1/miners", "198.51.100.1", "Bearer "+key); w.Code != http.StatusUnauthorized {
			t.Fatalf("forged key %d = %d, want the service's 401", i+1, w.Code)
		}
	}
	key, _ := newKey(t, apikey.KindKey)
	w := g.do("/api/v1/miners", "198.51.100.1", "Bearer "+key)
	if w.Code != http.StatusTooManyRequests || w.Header().Get(HeaderRetryAfter) == "" {
		t.Fatalf("4th forged key = %d, want 429 with Retry-After: the IP has spent its budget on 401s", w.Code)
	}
	if n := g.backendCalls(); n != 3 {
		t.Errorf("backend calls = %d, want 3", n)
	}
	// Another IP is unaffected.
	g.setStatus(http.StatusOK)
	if w := g.do("/api/v1/miners", "198.51.100.2", "Bearer "+key); w.Code != http.StatusOK {
		t.Errorf("other IP = %d", w.Code)
	}

	// Malformed credentials spend the IP's budget too; past it the answer is 429, not 401.
	g2 := newGuarded(t, 2)
	codes := []int{}
	for range 3 {
		codes = append(codes, g2.do("/api/v1/miners", "198.51.100.3", "Bearer garbage").Code)
	}
	if codes[0] != 401 || codes[1] != 401 || codes[2] != 429 {
		t.Errorf("malformed flood = %v, want [401 401 429]", codes)
	}
}

// FuzzClassify: any Authorization value is classified without panicking; an hsi_ value is
// accepted exactly when apikey.Parse accepts it; an accepted credential's bucket never contains
// the credential itself.
func FuzzClassify(f *testing.F) {
	key, _, _ := apikey.Generate("dev", apikey.KindKey)
	for _, s := range []string{
		"Bearer " + key, "Bearer " + corrupt(key), "Bearer a.b.c", "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
		"Basic x", "Bearer ", "", "bearer hsi_dev_key_", "Bearer ...", "Bearer e30.e30.e30",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{header}
		c := classify(r)
		scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
		cred = strings.TrimSpace(cred)
		if strings.EqualFold(scheme, "Bearer") && apikey.Looks(cred) {
			_, err := apikey.Parse(cred)
			if (err == nil) != (c.kind == credAPIKey) {
				t.Fatalf("%q: kind %v, apikey.Parse error %v", header, c.kind, err)
			}
		}
		if c.kind == credMalformed && c.bucket != "" {
			t.Fatalf("%q: malformed credential with bucket %q", header, c.bucket)
		}
		if c.kind == credAPIKey && strings.Contains(c.bucket, cred) {
			t.Fatalf("%q: bucket %q contains the secret", header, c.bucket)
		}
	})
}

// TestLoginCap: with max logins in flight, a further login is answered 429 API_001 with
// Retry-After at once, without reaching the backend; other routes and methods are not capped,
// and a finished login frees its slot.
func TestLoginCap(t *testing.T) {
	const maxInFlight = 2
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	var mu sync.Mutex
	reached := 0
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		if r.URL.Path == LoginPath && r.Header.Get("X-Hold") != "" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	var rejected []string
	h := WithLoginCap(LoginCap{MaxInFlight: maxInFlight, PerSecond: 1000}, func(scope string) { rejected = append(rejected, scope) })(backend)
	do := func(method, path string, hold bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(`{}`))
		if hold {
			r.Header.Set("X-Hold", "1")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var wg sync.WaitGroup
	for range maxInFlight {
		wg.Go(func() { do(http.MethodPost, LoginPath, true) })
		<-entered
	}
	w := do(http.MethodPost, LoginPath, false)
	if w.Code != http.StatusTooManyRequests || w.Header().Get(HeaderRetryAfter) != "1" || !strings.Contains(w.Body.String(), `"API_001"`) {
		t.Fatalf("login over the cap = %d %q (Retry-After %q), want 429 API_001 with Retry-After 1",
			w.Code, w.Body.String(), w.Header().Get(HeaderRetryAfter))
	}
	if len(rejected) != 1 || rejected[0] != ScopeLogin {
		t.Errorf("rejections %v, want [login]", rejected)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/auth/me"},
		{http.MethodPost, "/api/v1/auth/refresh"},
		{http.MethodGet, LoginPath},
	} {
		if w := do(tc.method, tc.path, false); w.Code != http.StatusOK {
			t.Errorf("%s %s while logins are capped = %d, want 200", tc.method, tc.path, w.Code)
		}
	}
	close(release)
	wg.Wait()
	if w := do(http.MethodPost, LoginPath, false); w.Code != http.StatusOK {
		t.Errorf("login after the slots were freed = %d, want 200", w.Code)
	}
	if reached != maxInFlight+4 {
		t.Errorf("backend reached %d times, want %d (the shed login must not reach it)", reached, maxInFlight+4)
	}
}

// TestLoginRate: past the burst the next login is shed with 429 API_001 at once; the burst is
// never below PerSecond.
func TestLoginRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cap  LoginCap
		pass int
	}{
		{"burst", LoginCap{MaxInFlight: 100, PerSecond: 1, Burst: 3}, 3},
		{"burst below the rate", LoginCap{MaxInFlight: 100, PerSecond: 2, Burst: 1}, 2},
		{"default burst", LoginCap{MaxInFlight: 100, PerSecond: 1}, DefaultLoginBurst},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached := 0
			now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a clock that does not move
			tc.cap.Now = func() time.Time { return now }
			h := WithLoginCap(tc.cap, nil)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				reached++
				w.WriteHeader(http.StatusOK)
			}))
			// Every request arrives at the same instant: nothing refills.
			for i := range tc.pass + 3 {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, LoginPath, strings.NewReader(`{}`)))
				want := http.StatusOK
				if i >= tc.pass {
					want = http.StatusTooManyRequests
				}
				if w.Code != want {
					t.Fatalf("login %d = %d, want %d", i+1, w.Code, want)
				}
			}
			if reached != tc.pass {
				t.Errorf("backend reached %d times, want %d", reached, tc.pass)
			}
			// A second later, PerSecond more may start.
			now = now.Add(time.Second)
			for i := range tc.cap.PerSecond + 1 {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, LoginPath, strings.NewReader(`{}`)))
				if want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[i < tc.cap.PerSecond]; w.Code != want {
					t.Fatalf("a second later, login %d = %d, want %d", i+1, w.Code, want)
				}
			}
		})
	}
}
