package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/service"
	"github.com/hashinsight/platform/pkg/service/servicetest"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

// spec is a mining-shaped service with an empty schema: the wiring under test does not care what
// the handlers do, only whether a call gets past authentication (UNIMPLEMENTED) or not.
func spec() service.Spec {
	return service.Spec{
		Name:       "mining",
		Services:   []protoreflect.FullName{protoreflect.FullName(miningv1.MiningService_ServiceDesc.ServiceName)},
		Migrations: fstest.MapFS{"00001_init.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 1;\n")}},
	}
}

// waitForAuth polls until a call with cred is no longer refused as UNAVAILABLE.
func waitForAuth(t *testing.T, h *servicetest.Harness, cred string) {
	t.Helper()
	client := miningv1.NewMiningServiceClient(h.Dial(mtls.Service("gateway")))
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cred)
		_, err := client.GetMiner(ctx, &miningv1.GetMinerRequest{Id: "0b6f3c1e-8d1a-4a57-9f0e-1f2d3c4b5a69"})
		cancel()
		if status.Code(err) != codes.Unavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("auth still unavailable: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type check struct {
	name   string
	as     mtls.Identity
	cred   string
	method string // "get" (miners:read) or "delete" (miners:delete)
	code   codes.Code
	reason errcode.Code
}

func runChecks(t *testing.T, h *servicetest.Harness, checks []check) {
	t.Helper()
	conns := map[mtls.Identity]miningv1.MiningServiceClient{}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			client, ok := conns[c.as]
			if !ok {
				client = miningv1.NewMiningServiceClient(h.Dial(c.as))
				conns[c.as] = client
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if c.cred != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.cred)
			}
			var err error
			if c.method == "delete" {
				_, err = client.DeleteMiner(ctx, &miningv1.DeleteMinerRequest{Id: "0b6f3c1e-8d1a-4a57-9f0e-1f2d3c4b5a69"})
			} else {
				_, err = client.GetMiner(ctx, &miningv1.GetMinerRequest{Id: "0b6f3c1e-8d1a-4a57-9f0e-1f2d3c4b5a69"})
			}
			if status.Code(err) != c.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, c.code)
			}
			if c.reason != "" && !errcode.Is(err, c.reason) {
				t.Fatalf("err %v, want reason %s", err, c.reason)
			}
		})
	}
}

// TestRemoteAuthn: a service checks credentials with auth over mTLS, and starts before auth does.
func TestRemoteAuthn(t *testing.T) {
	env, certs := servicetest.Environment(t, spec())
	register := func(_ context.Context, rt *service.Runtime) error {
		miningv1.RegisterMiningServiceServer(rt.GRPC(), miningv1.UnimplementedMiningServiceServer{})
		return nil
	}
	h := servicetest.Start(t, spec(), register, env) // auth is not up yet
	h.Certs = certs
	gateway, operator := mtls.Service("gateway"), mtls.Operator("conformance")
	now := time.Now()
	client := user(authn.RoleClient)

	runChecks(t, h, []check{
		{"auth down: no credential is still AUTH_001", gateway, "", "get", codes.Unauthenticated, errcode.AuthRequired},
		{"auth down: a token cannot be checked", gateway, throwawayToken(t, client, now), "get", codes.Unavailable, ""},
		{"auth down: operator needs no auth", operator, "", "delete", codes.Unimplemented, ""},
		{"auth down: malformed key rejected locally", gateway, "hsi_dev_key_x", "get", codes.Unauthenticated, errcode.AuthRequired},
	})

	auth := servicetest.StartAuth(t, certs, env["AUTH_GRPC_ADDR"])
	// The connection to auth may sit in gRPC's reconnect backoff for a moment after auth comes up.
	waitForAuth(t, h, auth.Token(t, client, now))
	key := auth.APIKey(t, &authn.Principal{Kind: authn.KindAPIKey, Subject: "user-1", APIKeyID: "k1",
		Permissions: []string{authn.PermMinersRead}, CustomerIDs: []string{"c1"}})
	checksum := key[:len(key)-1] + "!"
	runChecks(t, h, []check{
		{"client token, permission held", gateway, auth.Token(t, client, now), "get", codes.Unimplemented, ""},
		{"client token, permission missing", gateway, auth.Token(t, client, now), "delete", codes.PermissionDenied, errcode.AuthForbidden},
		{"owner token", gateway, auth.Token(t, user(authn.RoleOwner), now), "delete", codes.Unimplemented, ""},
		{"expired token", gateway, auth.Token(t, user(authn.RoleOwner), now.Add(-time.Hour)), "get", codes.Unauthenticated, errcode.AuthExpired},
		{"token of another key", gateway, throwawayToken(t, client, now), "get", codes.Unauthenticated, errcode.AuthRequired},
		{"API key", gateway, key, "get", codes.Unimplemented, ""},
		{"API key again (cached)", gateway, key, "get", codes.Unimplemented, ""},
		{"API key, scope lacks permission", gateway, key, "delete", codes.PermissionDenied, errcode.AuthForbidden},
		{"checksum-failing key", gateway, checksum, "get", codes.Unauthenticated, errcode.AuthRequired},
		{"no credential", gateway, "", "get", codes.Unauthenticated, errcode.AuthRequired},
	})
	if n := auth.AuthenticateCalls(); n != 1 {
		t.Errorf("Authenticate calls %d, want 1 (cached; malformed keys never sent)", n)
	}
	if n := auth.SigningKeyCalls(); n < 1 {
		t.Errorf("GetSigningKeys calls %d, want at least 1", n)
	}
}

// TestLocalAuthn: the auth service's in-process checkers, no RPC at all (nothing listens at
// AUTH_GRPC_ADDR).
func TestLocalAuthn(t *testing.T) {
	env, certs := servicetest.Environment(t, spec())
	key, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	apiKey, _, err := apikey.Generate("dev", apikey.KindKey)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := apikey.Generate("dev", apikey.KindKey)
	if err != nil {
		t.Fatal(err)
	}
	var denials atomic.Int32
	register := func(_ context.Context, rt *service.Runtime) error {
		miningv1.RegisterMiningServiceServer(rt.GRPC(), miningv1.UnimplementedMiningServiceServer{})
		rt.UseLocalAuthn(service.LocalAuthn{
			Keys: token.StaticKeys{key.ID: key.Public()},
			Resolver: authn.CredentialResolverFunc(func(_ context.Context, plaintext string) (*authn.Principal, error) {
				if plaintext != apiKey {
					return nil, authn.ErrInvalidCredential
				}
				return &authn.Principal{Kind: authn.KindAPIKey, Subject: "user-1", Permissions: []string{authn.PermMinersRead}}, nil
			}),
			Recorder: authn.DenialRecorderFunc(func(context.Context, authn.Denial) { denials.Add(1) }),
		})
		return nil
	}
	h := servicetest.Start(t, spec(), register, env)
	h.Certs = certs
	gateway := mtls.Service("gateway")
	sign := func(p *authn.Principal) string {
		raw, err := token.NewIssuer(token.IssuerOptions{}).Sign(token.ClaimsFor(p, "", time.Now(), 15*time.Minute), key)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	runChecks(t, h, []check{
		{"client token", gateway, sign(user(authn.RoleClient)), "get", codes.Unimplemented, ""},
		{"client token, permission missing", gateway, sign(user(authn.RoleClient)), "delete", codes.PermissionDenied, errcode.AuthForbidden},
		{"API key", gateway, apiKey, "get", codes.Unimplemented, ""},
		{"API key, scope lacks permission", gateway, apiKey, "delete", codes.PermissionDenied, errcode.AuthForbidden},
		{"unknown API key", gateway, other, "get", codes.Unauthenticated, errcode.AuthRequired},
	})
	if n := denials.Load(); n != 2 {
		t.Errorf("denials recorded %d, want 2", n)
	}
}

func user(role string) *authn.Principal {
	return &authn.Principal{Kind: authn.KindUser, Subject: "user-" + role, Role: role,
		Permissions: authn.PermissionsForRole(role), AllCustomers: authn.RoleSeesAllCustomers(role), CustomerIDs: []string{"c1"}}
}

// throwawayToken is a well-formed access token signed by a key no auth publishes.
func throwawayToken(t *testing.T, p *authn.Principal, issued time.Time) string {
	t.Helper()
	key, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := token.NewIssuer(token.IssuerOptions{}).Sign(token.ClaimsFor(p, "", issued, 15*time.Minute), key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
