package authn_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/grpcserver"
	"github.com/hashinsight/platform/pkg/mtls"
)

var _ grpcserver.PrincipalAuthenticator = (*authn.Authenticator)(nil)

// serverStream puts a method name in the context the way a gRPC server does.
type serverStream struct{ method string }

func (s serverStream) Method() string               { return s.method }
func (s serverStream) SetHeader(metadata.MD) error  { return nil }
func (s serverStream) SendHeader(metadata.MD) error { return nil }
func (s serverStream) SetTrailer(metadata.MD) error { return nil }

var _ grpc.ServerTransportStream = serverStream{}

type recorder struct {
	mu      sync.Mutex
	denials []authn.Denial
}

func (r *recorder) RecordDenial(_ context.Context, d authn.Denial) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.denials = append(r.denials, d)
}

type authFixture struct {
	clock    *clock
	store    *keyStore
	recorder *recorder
	auth     *authn.Authenticator
	issuer   *token.Issuer
	k1, k2   *token.SigningKey
}

func newAuthFixture(t testing.TB) *authFixture {
	t.Helper()
	f := &authFixture{clock: newClock(), store: newKeyStore(), recorder: &recorder{}, issuer: token.NewIssuer(token.IssuerOptions{})}
	var err error
	if f.k1, err = token.GenerateSigningKey(); err != nil {
		t.Fatal(err)
	}
	if f.k2, err = token.GenerateSigningKey(); err != nil {
		t.Fatal(err)
	}
	keys := token.NewKeySet(token.StaticKeys{f.k1.ID: f.k1.Public()}, token.KeySetOptions{Now: f.clock.Now, MinRefreshInterval: time.Millisecond})
	f.auth = authn.NewAuthenticator(authn.Options{
		Verifier: token.NewVerifier(keys, token.VerifierOptions{Now: f.clock.Now}),
		Resolver: authn.NewCachedResolver(f.store, authn.CacheOptions{Now: f.clock.Now}),
		Recorder: f.recorder,
		Now:      f.clock.Now,
	})
	return f
}

func (f *authFixture) jwt(t testing.TB, key *token.SigningKey, role string, issued time.Time) string {
	t.Helper()
	p := &authn.Principal{Kind: authn.KindUser, Subject: "user-" + role, Role: role, Permissions: authn.PermissionsForRole(role),
		AllCustomers: authn.RoleSeesAllCustomers(role), CustomerIDs: []string{"cust-a"}}
	s, err := f.issuer.Sign(token.ClaimsFor(p, "", issued, 15*time.Minute), key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func enc(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestAuthenticator(t *testing.T) {
	f := newAuthFixture(t)
	now := f.clock.Now()

	client := f.jwt(t, f.k1, authn.RoleClient, now)
	expired := f.jwt(t, f.k1, authn.RoleClient, now.Add(-time.Hour))
	parts := strings.Split(client, ".")
	badSig := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	var claims map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &claims)
	claims["perms"] = authn.AllPermissions()
	edited := parts[0] + "." + enc(claims) + "." + parts[2]
	algNone := enc(map[string]string{"alg": "none", "typ": "JWT", "kid": f.k1.ID}) + "." + parts[1] + "."
	otherKey := f.jwt(t, &token.SigningKey{ID: f.k1.ID, Private: f.k2.Private}, authn.RoleClient, now)
	unpublished := f.jwt(t, f.k2, authn.RoleOwner, now)

	validKey, _, err := apikey.Generate("dev", apikey.KindKey)
	if err != nil {
		t.Fatal(err)
	}
	f.store.add(validKey, &authn.Principal{Kind: authn.KindAPIKey, Subject: "user-k", APIKeyID: "key-1",
		Permissions: []string{authn.PermMinersRead}, CustomerIDs: []string{"cust-a"}})
	revokedKey, _, _ := apikey.Generate("dev", apikey.KindKey)
	expiredKey, _, _ := apikey.Generate("dev", apikey.KindKey)
	f.store.expired[expiredKey] = true
	malformedKey := "hsi_dev_key_tooshort"
	checksumKey := validKey[:len(validKey)-1] + map[bool]string{true: "A", false: "B"}[!strings.HasSuffix(validKey, "A")]
	collector, _, _ := apikey.Generate("dev", apikey.KindCollector)
	f.store.add(collector, &authn.Principal{Kind: authn.KindCollector, SiteID: "site-1", CollectorTokenID: "col-1",
		Permissions: []string{authn.PermCollectorWrite}, AllCustomers: true})

	var (
		gateway  = mtls.Service("gateway")
		operator = mtls.Operator("alice")
		billing  = mtls.Service("billing")
	)
	public := access.Rule{Public: true, Callers: []string{"svc/gateway"}}
	read := access.Rule{Permission: authn.PermMinersRead, Callers: []string{"svc/gateway"}}
	write := access.Rule{Permission: authn.PermMinersWrite, Callers: []string{"svc/gateway"}}
	collect := access.Rule{Permission: authn.PermCollectorWrite, Callers: []string{"svc/gateway"}}

	type want struct {
		code     codes.Code
		reason   errcode.Code // for errors
		kind     authn.Kind   // for success: "" means no principal attached
		subject  string
		resolves int32 // resolver calls this case may add
		denials  int
	}
	cases := []struct {
		name   string
		caller mtls.Identity
		header []string // authorization values
		rule   access.Rule
		want   want
	}{
		{"none / public", gateway, nil, public, want{code: codes.OK}},
		{"none / permission", gateway, nil, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"valid JWT / public attaches it", gateway, []string{"Bearer " + client}, public, want{code: codes.OK, kind: authn.KindUser, subject: "user-client"}},
		{"valid JWT / permission held", gateway, []string{"Bearer " + client}, read, want{code: codes.OK, kind: authn.KindUser, subject: "user-client"}},
		{"valid JWT / lowercase scheme", gateway, []string{"bearer " + client}, read, want{code: codes.OK, kind: authn.KindUser, subject: "user-client"}},
		{"valid JWT / permission missing", gateway, []string{"Bearer " + client}, write, want{code: codes.PermissionDenied, reason: errcode.AuthForbidden, denials: 1}},
		{"expired JWT / permission", gateway, []string{"Bearer " + expired}, read, want{code: codes.Unauthenticated, reason: errcode.AuthExpired}},
		{"expired JWT / public is ignored", gateway, []string{"Bearer " + expired}, public, want{code: codes.OK}},
		{"bad signature", gateway, []string{"Bearer " + badSig}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"alg=none", gateway, []string{"Bearer " + algNone}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"edited claims", gateway, []string{"Bearer " + edited}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"other key", gateway, []string{"Bearer " + otherKey}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"unpublished key", gateway, []string{"Bearer " + unpublished}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"malformed API key, no lookup", gateway, []string{"Bearer " + malformedKey}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"checksum-failing API key, no lookup", gateway, []string{"Bearer " + checksumKey}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"valid API key", gateway, []string{"Bearer " + validKey}, read, want{code: codes.OK, kind: authn.KindAPIKey, subject: "user-k", resolves: 1}},
		{"valid API key again: cached", gateway, []string{"Bearer " + validKey}, read, want{code: codes.OK, kind: authn.KindAPIKey, subject: "user-k"}},
		{"valid API key / scope lacks permission", gateway, []string{"Bearer " + validKey}, write, want{code: codes.PermissionDenied, reason: errcode.AuthForbidden, denials: 1}},
		{"unknown API key", gateway, []string{"Bearer " + revokedKey}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired, resolves: 1}},
		{"expired API key", gateway, []string{"Bearer " + expiredKey}, read, want{code: codes.Unauthenticated, reason: errcode.AuthExpired, resolves: 1}},
		{"collector token", gateway, []string{"Bearer " + collector}, collect, want{code: codes.OK, kind: authn.KindCollector, resolves: 1}},
		{"collector token / other permission", gateway, []string{"Bearer " + collector}, read, want{code: codes.PermissionDenied, reason: errcode.AuthForbidden, denials: 1}},
		{"hsc_ prefix is not a format", gateway, []string{"Bearer hsc_dev_site_abc"}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"Basic scheme", gateway, []string{"Basic dXNlcjpwYXNz"}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"empty bearer", gateway, []string{"Bearer "}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"two headers", gateway, []string{"Bearer " + client, "Bearer " + client}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"garbage bearer", gateway, []string{"Bearer not-a-credential"}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"operator without credential", operator, nil, write, want{code: codes.OK, kind: authn.KindOperator, subject: "operator/alice"}},
		{"operator with a user's credential acts as that user", operator, []string{"Bearer " + client}, write, want{code: codes.PermissionDenied, reason: errcode.AuthForbidden, denials: 1}},
		{"operator with an invalid credential", operator, []string{"Bearer " + badSig}, read, want{code: codes.Unauthenticated, reason: errcode.AuthRequired}},
		{"service without credential", billing, nil, write, want{code: codes.OK, kind: authn.KindService, subject: "svc/billing"}},
		{"service forwarding a user's token", billing, []string{"Bearer " + client}, read, want{code: codes.OK, kind: authn.KindUser, subject: "user-client"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := grpc.NewContextWithServerTransportStream(t.Context(), serverStream{method: "/hashinsight.mining.v1.MiningService/Test"})
			if tc.header != nil {
				md := metadata.MD{}
				for _, h := range tc.header {
					md.Append(authn.MetadataKey, h)
				}
				ctx = metadata.NewIncomingContext(ctx, md)
			}
			callsBefore := f.store.calls.Load()
			f.recorder.mu.Lock()
			deniedBefore := len(f.recorder.denials)
			f.recorder.mu.Unlock()

			got, err := f.auth.Authenticate(ctx, tc.rule, tc.caller)

			if calls := f.store.calls.Load() - callsBefore; calls != tc.want.resolves {
				t.Errorf("resolver calls %d, want %d", calls, tc.want.resolves)
			}
			f.recorder.mu.Lock()
			denials := f.recorder.denials[deniedBefore:]
			f.recorder.mu.Unlock()
			if len(denials) != tc.want.denials {
				t.Errorf("denials recorded %d, want %d", len(denials), tc.want.denials)
			}
			for _, d := range denials {
				if d.Permission != tc.rule.Permission || d.Caller != tc.caller || d.Method != "/hashinsight.mining.v1.MiningService/Test" || d.Principal == nil {
					t.Errorf("denial %+v", d)
				}
			}
			if tc.want.code != codes.OK {
				if status.Code(err) != tc.want.code || !errcode.Is(err, tc.want.reason) {
					t.Fatalf("err %v, want %v %s", err, tc.want.code, tc.want.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			p, ok := authn.FromContext(got)
			if tc.want.kind == "" {
				if ok {
					t.Fatalf("principal %+v attached, want none", p)
				}
				return
			}
			if !ok || p.Kind != tc.want.kind || (tc.want.subject != "" && p.Subject != tc.want.subject) {
				t.Fatalf("principal %+v, want kind %s subject %s", p, tc.want.kind, tc.want.subject)
			}
			if (p.Kind == authn.KindOperator || p.Kind == authn.KindService) && (!p.AllCustomers || !p.Has(authn.PermUsersAdmin)) {
				t.Errorf("mTLS principal %+v lacks full access", p)
			}
		})
	}
}

func TestAuthenticatorOutage(t *testing.T) {
	f := newAuthFixture(t)
	key, _, _ := apikey.Generate("dev", apikey.KindKey)
	f.store.setDown(true)
	ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs(authn.MetadataKey, "Bearer "+key))
	read := access.Rule{Permission: authn.PermMinersRead, Callers: []string{"svc/gateway"}}
	_, err := f.auth.Authenticate(ctx, read, mtls.Service("gateway"))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("auth down: %v, want Unavailable (retry, not log in again)", err)
	}
	// A public method still runs, without a principal.
	got, err := f.auth.Authenticate(ctx, access.Rule{Public: true, Callers: []string{"svc/gateway"}}, mtls.Service("gateway"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := authn.FromContext(got); ok {
		t.Error("principal attached although the credential could not be checked")
	}
}

func TestAuthenticatorWithoutCheckers(t *testing.T) {
	a := authn.NewAuthenticator(authn.Options{})
	read := access.Rule{Permission: authn.PermMinersRead, Callers: []string{"svc/gateway"}}
	key, _, _ := apikey.Generate("dev", apikey.KindKey)
	for _, cred := range []string{"a.b.c", key} {
		ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs(authn.MetadataKey, "Bearer "+cred))
		if _, err := a.Authenticate(ctx, read, mtls.Service("gateway")); !errcode.Is(err, errcode.AuthRequired) {
			t.Errorf("%s without a checker: %v", cred[:5], err)
		}
	}
}

// BenchmarkAuthenticateJWT is the whole per-call check of a session's access token: metadata,
// verification (warm verified-token cache), permission, context.
func BenchmarkAuthenticateJWT(b *testing.B) {
	f := newAuthFixture(b)
	tok := f.jwt(b, f.k1, authn.RoleClient, f.clock.Now())
	benchAuthenticate(b, f, tok)
}

// BenchmarkAuthenticateAPIKey is the same for an API key with a warm resolution cache.
func BenchmarkAuthenticateAPIKey(b *testing.B) {
	f := newAuthFixture(b)
	key, _, _ := apikey.Generate("dev", apikey.KindKey)
	f.store.add(key, &authn.Principal{Kind: authn.KindAPIKey, Subject: "u", Permissions: []string{authn.PermMinersRead}})
	benchAuthenticate(b, f, key)
}

func benchAuthenticate(b *testing.B, f *authFixture, cred string) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(authn.MetadataKey, "Bearer "+cred))
	rule := access.Rule{Permission: authn.PermMinersRead, Callers: []string{"svc/gateway"}}
	gw := mtls.Service("gateway")
	if _, err := f.auth.Authenticate(ctx, rule, gw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.auth.Authenticate(ctx, rule, gw); err != nil {
			b.Fatal(err)
		}
	}
}
