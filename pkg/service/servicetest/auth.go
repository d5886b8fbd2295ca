package servicetest

import (
	"context"
	"crypto/ed25519"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// Auth stands in for the auth service in a service's tests: it serves GetSigningKeys with one
// test signing key and Authenticate from the API keys registered with APIKey, as svc/auth over
// the harness's mTLS, so the service under test checks credentials exactly as in production.
type Auth struct {
	// Addr is where it listens; point the service's AUTH_GRPC_ADDR at it.
	Addr string

	key     *token.SigningKey
	issuer  *token.Issuer
	mu      sync.Mutex
	apiKeys map[string]*authn.Principal

	keyCalls, resolveCalls atomic.Int32
}

// StartAuth serves a stand-in auth on addr (for example env["AUTH_GRPC_ADDR"] of Environment)
// with a svc/auth certificate of certs' CA, until the test ends.
func StartAuth(t *testing.T, certs devca.Files, addr string) *Auth {
	t.Helper()
	id := mtls.Service("auth")
	if _, err := devca.Ensure(certs.Dir, []mtls.Identity{id}); err != nil {
		t.Fatalf("auth certificate: %v", err)
	}
	src, err := mtls.NewSource(certs.Config(id), nil)
	if err != nil {
		t.Fatalf("auth mtls: %v", err)
	}
	key, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("auth listen: %v", err)
	}
	a := &Auth{Addr: lis.Addr().String(), key: key, issuer: token.NewIssuer(token.IssuerOptions{}), apiKeys: map[string]*authn.Principal{}}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(src.ServerTLS())))
	authv1.RegisterAuthServiceServer(srv, &authServer{a: a})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return a
}

// Token returns an access token for p (a user principal: Subject, Role, Permissions, customer
// scope) issued at issued and valid 15 minutes, signed with the stand-in's published key.
func (a *Auth) Token(t testing.TB, p *authn.Principal, issued time.Time) string {
	t.Helper()
	raw, err := a.issuer.Sign(token.ClaimsFor(p, "", issued, token.MaxLifetime), a.key)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return raw
}

// APIKey registers a new API key standing for p and returns its plaintext.
func (a *Auth) APIKey(t testing.TB, p *authn.Principal) string {
	t.Helper()
	plain, _, err := apikey.Generate("dev", apikey.KindKey)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apiKeys[plain] = p
	return plain
}

// CollectorToken registers a new collector token bound to siteID and returns its plaintext.
// Authenticate resolves it as the auth service resolves collector tokens: a KindCollector
// principal with SiteID and only the collector:write permission.
func (a *Auth) CollectorToken(t testing.TB, siteID string) string {
	t.Helper()
	plain, parsed, err := apikey.Generate("dev", apikey.KindCollector)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apiKeys[plain] = &authn.Principal{
		Kind:             authn.KindCollector,
		Permissions:      []string{authn.PermCollectorWrite},
		CollectorTokenID: "col-" + parsed.Prefix(),
		SiteID:           siteID,
	}
	return plain
}

// RevokeAPIKey makes Authenticate reject plain from now on.
func (a *Auth) RevokeAPIKey(plain string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.apiKeys, plain)
}

// SigningKeyCalls counts the GetSigningKeys calls served.
func (a *Auth) SigningKeyCalls() int { return int(a.keyCalls.Load()) }

// AuthenticateCalls counts the Authenticate calls served.
func (a *Auth) AuthenticateCalls() int { return int(a.resolveCalls.Load()) }

type authServer struct {
	authv1.UnimplementedAuthServiceServer
	a *Auth
}

// GetSigningKeys publishes the stand-in's one key.
func (s *authServer) GetSigningKeys(context.Context, *authv1.GetSigningKeysRequest) (*authv1.GetSigningKeysResponse, error) {
	s.a.keyCalls.Add(1)
	return &authv1.GetSigningKeysResponse{
		Keys: []*authv1.SigningKey{{
			KeyId: s.a.key.ID, Algorithm: token.Algorithm, PublicKey: []byte(ed25519.PublicKey(s.a.key.Public())), Signing: true,
		}},
		Issuer:   token.DefaultIssuer,
		Audience: token.DefaultAudience,
		CacheTtl: durationpb.New(5 * time.Minute),
	}, nil
}

// Authenticate resolves the keys registered with APIKey.
func (s *authServer) Authenticate(_ context.Context, in *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	s.a.resolveCalls.Add(1)
	s.a.mu.Lock()
	p, ok := s.a.apiKeys[in.GetCredential()]
	s.a.mu.Unlock()
	if !ok {
		return nil, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "unknown credential")
	}
	return &authv1.AuthenticateResponse{Principal: authn.ToProto(p), CacheTtl: durationpb.New(authn.MaxResolveTTL)}, nil
}
