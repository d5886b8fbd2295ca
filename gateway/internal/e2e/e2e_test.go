package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/hashinsight/platform/gateway/internal/e2e"
	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"

	// The service descriptors (and their access declarations) the table is built from.
	_ "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	_ "github.com/hashinsight/platform/proto/hashinsight/billing/v1"
	_ "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	_ "github.com/hashinsight/platform/proto/hashinsight/sla/v1"
)

// The binaries every test of this package runs, built once by TestMain.
var (
	repoRoot string
	binDir   string
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(floodChildEnv); spec != "" {
		os.Exit(runFloodChild(spec))
	}
	os.Exit(func() int {
		defer pgtest.Stop()
		var err error
		repoRoot, err = e2e.FindRepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		dir, err := os.MkdirTemp("", "hashinsight-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := e2e.Build(ctx, repoRoot, binDir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

func startMesh(t testing.TB, o e2e.Options) *e2e.Mesh {
	t.Helper()
	o.BinDir, o.RepoRoot = binDir, repoRoot
	return e2e.Start(t, o)
}

// route is one REST binding of an RPC.
type route struct {
	full         string // /hashinsight.mining.v1.MiningService/GetMiner
	rule         access.Rule
	method, path string // with every path variable filled in
	body         bool
}

// routes lists every HTTP binding (google.api.http, additional bindings included) of every RPC of
// every service, with the method's access declaration. RPCs without a binding (the internal
// Authenticate, GetSigningKeys, streaming-only RPCs) are returned in unrouted.
func routes(t *testing.T) (out []route, unrouted []string) {
	t.Helper()
	policy, err := access.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, full := range policy.Methods() {
		rule, _ := policy.Rule(full)
		name := strings.Replace(strings.TrimPrefix(full, "/"), "/", ".", 1)
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatalf("descriptor of %s: %v", full, err)
		}
		md := d.(protoreflect.MethodDescriptor)
		opts, _ := md.Options().(*descriptorpb.MethodOptions)
		httpRule, _ := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
		if httpRule == nil || (httpRule.GetPattern() == nil) {
			unrouted = append(unrouted, full)
			continue
		}
		for _, hr := range append([]*annotations.HttpRule{httpRule}, httpRule.GetAdditionalBindings()...) {
			method, tmpl := binding(hr)
			out = append(out, route{full: full, rule: rule, method: method, path: fillPath(t, md.Input(), tmpl), body: hr.GetBody() != ""})
		}
	}
	return out, unrouted
}

func binding(hr *annotations.HttpRule) (method, path string) {
	switch p := hr.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// fillPath replaces each {field} or {field=…} with a value of the field's type: a uuid for
// strings, 1 for numbers.
func fillPath(t *testing.T, in protoreflect.MessageDescriptor, tmpl string) string {
	t.Helper()
	var b strings.Builder
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			t.Fatalf("unbalanced template %q", tmpl)
		}
		b.WriteString(tmpl[:open])
		name, _, _ := strings.Cut(tmpl[open+1:open+end], "=")
		fd := fieldByPath(in, name)
		if fd == nil {
			t.Fatalf("path variable %s not in %s", name, in.FullName())
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			b.WriteString(e2e.RandomUUID())
		default:
			b.WriteString("1")
		}
		tmpl = tmpl[open+end+1:]
	}
}

func fieldByPath(md protoreflect.MessageDescriptor, path string) protoreflect.FieldDescriptor {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		fd := md.Fields().ByName(protoreflect.Name(p))
		if fd == nil {
			return nil
		}
		if i == len(parts)-1 {
			return fd
		}
		md = fd.Message()
		if md == nil {
			return nil
		}
	}
	return nil
}

// TestEveryRouteEnforcesAccess drives every REST route of every service through the real gateway
// into the real services: no credential → 401 AUTH_001; an expired token → 401 AUTH_003; a
// principal holding every permission but the route's → 403 AUTH_002; a client user's token →
// 403 AUTH_002 exactly when the client role lacks the permission; a token holding only the
// route's permission, and an API key (created through the real auth service) scoped to only
// that permission → not an auth error.
func TestEveryRouteEnforcesAccess(t *testing.T) {
	m := startMesh(t, e2e.Options{GatewayEnv: map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "100000"}})
	all := authn.AllPermissions()
	clientPerms := authn.PermissionsForRole(authn.RoleClient)

	rs, unrouted := routes(t)
	if len(rs) < 60 {
		t.Fatalf("only %d routes found; the descriptors are not all registered", len(rs))
	}
	t.Logf("%d REST routes; RPCs without a REST binding (gRPC only): %v", len(rs), unrouted)

	// Real users: an owner, and a client bound to one customer. Minted tokens speak for the
	// owner (handlers such as GetMe look the account up).
	owner := newUser(t, m, authv1.Role_ROLE_OWNER, "")
	client := newUser(t, m, authv1.Role_ROLE_CLIENT, e2e.RandomUUID()).token
	mint := func(o e2e.TokenOptions) string {
		o.Subject = owner.userID
		return m.Token(t, o)
	}

	// API keys scoped to one permission each, made by the owner through the real auth service.
	keys := map[string]string{}
	for _, perm := range all {
		if perm == authn.PermSelf {
			continue
		}
		resp := m.Do(t, nil, http.MethodPost, "/api/v1/api-keys", map[string]any{
			"name": "e2e " + perm, "permissions": []string{perm},
		}, e2e.Bearer(owner.token))
		if resp.Status != http.StatusOK {
			t.Logf("API key scoped to %s not created (%d %s): that row is skipped", perm, resp.Status, resp.Body)
			continue
		}
		keys[perm] = decodeField(t, resp.Body, "secret")
	}

	expired := mint(e2e.TokenOptions{Permissions: all, AllCustomers: true, IssuedAt: time.Now().Add(-20 * time.Minute)})

	type want int
	const (
		wantAuthRequired want = iota // 401 AUTH_001
		wantExpired                  // 401 AUTH_003
		wantForbidden                // 403 AUTH_002
		wantAllowed                  // anything but an auth error
	)
	var allowed statusCounts
	t.Cleanup(func() { t.Logf("statuses past authorization: %s", allowed.String()) })
	check := func(t *testing.T, r route, who string, header map[string]string, w want) {
		t.Helper()
		h := map[string]string{"X-Site-ID": "site-e2e"} // the collector routes need it before auth
		for k, v := range header {
			h[k] = v
		}
		var body any
		if r.body || r.method == http.MethodPost {
			body = []byte(`{}`)
		}
		resp := m.Do(t, nil, r.method, r.path, body, h)
		e := resp.Error()
		switch w {
		case wantAuthRequired:
			if resp.Status != 401 || e.Code != "AUTH_001" {
				t.Errorf("%s: %d %s, want 401 AUTH_001", who, resp.Status, resp.Body)
			}
		case wantExpired:
			if resp.Status != 401 || e.Code != "AUTH_003" {
				t.Errorf("%s: %d %s, want 401 AUTH_003", who, resp.Status, resp.Body)
			}
		case wantForbidden:
			if resp.Status != 403 || e.Code != "AUTH_002" {
				t.Errorf("%s: %d %s, want 403 AUTH_002", who, resp.Status, resp.Body)
			}
		case wantAllowed:
			// Past authentication and authorization: validation, not found, not implemented
			// or success are all fine; an auth error, a rate limit, an outage or an internal
			// error is not.
			if resp.Status == 401 || resp.Status == 403 || resp.Status == 429 || (resp.Status >= 500 && resp.Status != 501) {
				t.Errorf("%s: %d %s, want past authentication and authorization", who, resp.Status, resp.Body)
			}
			allowed.Add(fmt.Sprint(resp.Status))
		}
	}

	for _, r := range rs {
		t.Run(r.method+" "+r.path[:strings.LastIndexAny(r.path, "0123456789abcdef-")+1]+"("+r.full+")", func(t *testing.T) {
			if r.rule.Public {
				// Public RPCs (login, refresh) need no credential; they must still answer.
				check(t, r, "no credential on a public route", nil, wantAllowed)
				return
			}
			perm := r.rule.Permission
			check(t, r, "no credential", nil, wantAuthRequired)
			check(t, r, "expired token", e2e.Bearer(expired), wantExpired)
			if perm != authn.PermSelf { // every principal holds "self"
				others := slices.DeleteFunc(slices.Clone(all), func(p string) bool { return p == perm })
				tok := mint(e2e.TokenOptions{Permissions: others, AllCustomers: true})
				check(t, r, "token with every permission but "+perm, e2e.Bearer(tok), wantForbidden)
				if key, ok := keys[otherThan(perm, all)]; ok {
					check(t, r, "API key scoped to another permission", e2e.Bearer(key), wantForbidden)
				}
			}
			if slices.Contains(clientPerms, perm) || perm == authn.PermSelf {
				check(t, r, "client user's token", e2e.Bearer(client), wantAllowed)
			} else {
				check(t, r, "client user's token", e2e.Bearer(client), wantForbidden)
			}
			only := mint(e2e.TokenOptions{Permissions: []string{perm}, AllCustomers: true})
			check(t, r, "token with only "+perm, e2e.Bearer(only), wantAllowed)
			if key, ok := keys[perm]; ok {
				check(t, r, "API key scoped to "+perm, e2e.Bearer(key), wantAllowed)
			}
		})
	}
}

// statusCounts counts answers by status, safely across subtests.
type statusCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *statusCounts) Add(status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[status]++
}

func (c *statusCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s×%d ", k, c.m[k])
	}
	return b.String()
}

// otherThan returns a permission of all that is not perm (and not "self").
func otherThan(perm string, all []string) string {
	for _, p := range all {
		if p != perm && p != authn.PermSelf {
			return p
		}
	}
	return ""
}

// session is a real user logged in through the gateway.
type session struct {
	userID, email, password, token string
}

// newUser creates a user through the operator path (as hictl does) and logs in through the
// gateway.
func newUser(t testing.TB, m *e2e.Mesh, role authv1.Role, customerID string) session {
	t.Helper()
	s := session{
		email:    strings.ToLower(role.String()[len("ROLE_"):]) + "-" + e2e.RandomUUID()[:8] + "@e2e.test",
		password: "correct horse battery staple",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := authv1.NewAuthServiceClient(m.DialAsOperator(t, "auth")).CreateUser(ctx, &authv1.CreateUserRequest{
		Email: s.email, Password: s.password, DisplayName: "E2E " + role.String(), Role: role, CustomerId: customerID,
	}); err != nil {
		t.Fatalf("create %s user: %v", role, err)
	}
	resp := m.Do(t, nil, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": s.email, "password": s.password}, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("%s login: %d %s", role, resp.Status, resp.Body)
	}
	s.token = decodeField(t, resp.Body, "tokens.access_token")
	s.userID = decodeField(t, resp.Body, "user.id")
	return s
}

// decodeField returns the string at a dotted path of a JSON object.
func decodeField(t testing.TB, body []byte, path string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	for _, p := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no %s in %s", path, p, body)
		}
		v = obj[p]
	}
	s, ok := v.(string)
	if !ok || s == "" {
		t.Fatalf("%s: not a non-empty string in %s", path, body)
	}
	return s
}

// TestRateLimitPerAPIKey: real API keys through two gateway replicas sharing Redis: past the
// configured rate a key gets 429 API_001 with Retry-After from either replica, while another key
// and the user who made both are unaffected.
func TestRateLimitPerAPIKey(t *testing.T) {
	m := startMesh(t, e2e.Options{Redis: true, GatewayEnv: map[string]string{"RATE_LIMIT_REQUESTS_PER_MINUTE": "5"}})
	second, _ := m.AddGateway(t)
	replicas := []string{m.URL, second}
	owner := newUser(t, m, authv1.Role_ROLE_OWNER, "")
	newKey := func() string {
		resp := m.Do(t, nil, http.MethodPost, "/api/v1/api-keys", map[string]any{"name": "rate", "permissions": []string{"miners:read"}}, e2e.Bearer(owner.token))
		if resp.Status != http.StatusOK {
			t.Fatalf("create API key: %d %s", resp.Status, resp.Body)
		}
		return decodeField(t, resp.Body, "secret")
	}
	keyA, keyB := newKey(), newKey()

	for i := range 5 {
		resp := e2e.DoURL(t, nil, http.MethodGet, replicas[i%2]+"/api/v1/auth/me", nil, e2e.Bearer(keyA))
		if resp.Status != http.StatusOK {
			t.Fatalf("request %d (replica %d) = %d %s", i+1, i%2, resp.Status, resp.Body)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining"), fmt.Sprint(4-i); got != want {
			t.Errorf("request %d: X-RateLimit-Remaining = %q, want %s (one budget across replicas)", i+1, got, want)
		}
	}
	for i, base := range replicas {
		resp := e2e.DoURL(t, nil, http.MethodGet, base+"/api/v1/auth/me", nil, e2e.Bearer(keyA))
		if e := resp.Error(); resp.Status != http.StatusTooManyRequests || e.Code != "API_001" || e.RequestID == "" {
			t.Errorf("replica %d over the limit = %d %s, want 429 API_001", i, resp.Status, resp.Body)
		}
		// 5 per minute: one request every 12 s; Retry-After is whole seconds, rounded up.
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 12 {
			t.Errorf("replica %d Retry-After = %q, want 1..12", i, resp.Header.Get("Retry-After"))
		}
		if resp.Header.Get("X-RateLimit-Limit") != "5" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("replica %d headers = %v", i, resp.Header)
		}
	}
	for _, who := range []map[string]string{e2e.Bearer(keyB), e2e.Bearer(owner.token)} {
		for _, base := range replicas {
			if resp := e2e.DoURL(t, nil, http.MethodGet, base+"/api/v1/auth/me", nil, who); resp.Status != http.StatusOK {
				t.Errorf("another credential = %d %s, want unaffected", resp.Status, resp.Body)
			}
		}
	}
}
