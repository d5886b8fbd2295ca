package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/errcode"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	"github.com/hashinsight/platform/services/auth/internal/app"
	"github.com/hashinsight/platform/services/auth/internal/postgres"
	"github.com/hashinsight/platform/services/auth/internal/signing"
)

// TestEveryMethodAuthenticates is the auth service's row of the table over every RPC: through the
// gateway, no credential → AUTH_001 (public methods excepted), an expired token → AUTH_003, a
// token without the method's permission → AUTH_002, a token with exactly that permission → no
// authentication or permission error. Tokens are signed with the service's real signing key (read
// from its database with ENCRYPTION_PASSWORD), so they exercise the production verifier.
func TestEveryMethodAuthenticates(t *testing.T) {
	m := startAuth(t, nil)
	owner := m.createUser("", &authv1.CreateUserRequest{Email: "owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})

	keys, err := signing.NewManager(postgres.NewSigningKeys(m.h.Runtime.DB), m.h.Env["ENCRYPTION_PASSWORD"], signing.Options{TokenLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	signer, err := keys.Signer()
	if err != nil {
		t.Fatal(err)
	}
	issuer := token.NewIssuer(token.IssuerOptions{})
	mint := func(perms []string, issued time.Time) string {
		p := &authn.Principal{Kind: authn.KindUser, Subject: owner.GetId(), Email: owner.GetEmail(), Role: authn.RoleOwner,
			Permissions: perms, AllCustomers: true}
		raw, err := issuer.Sign(token.ClaimsFor(p, "", issued, 5*time.Minute), &token.SigningKey{ID: signer.ID, Private: signer.Key})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	without := func(perm string) []string {
		var out []string
		for _, p := range authn.AllPermissions() {
			if p != perm {
				out = append(out, p)
			}
		}
		return out
	}

	policy, err := access.Load(app.Spec().Services...)
	if err != nil {
		t.Fatal(err)
	}
	conn := m.h.Dial(gatewayID)
	for _, full := range policy.Methods() {
		rule, _ := policy.Rule(full)
		t.Run(strings.TrimPrefix(full, "/"), func(t *testing.T) {
			type credCase struct {
				name, cred string
				want       errcode.Code // "": no authentication or permission error
			}
			cases := []credCase{{"no credential", "", errcode.AuthRequired}}
			if rule.Public {
				cases[0].want = ""
			} else {
				cases = append(cases,
					credCase{"expired token", mint(authn.AllPermissions(), time.Now().Add(-time.Hour)), errcode.AuthExpired},
					credCase{"right permission", mint([]string{rule.Permission}, time.Now()), ""},
				)
				if rule.Permission != authn.PermSelf {
					cases = append(cases, credCase{"missing permission", mint(without(rule.Permission), time.Now()), errcode.AuthForbidden})
				}
			}
			for _, c := range cases {
				ctx := m.ctx()
				if c.cred != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.cred)
				}
				err := invokeEmpty(ctx, t, conn, full)
				got := errcode.FromError(err)
				switch {
				case c.want != "" && got != c.want:
					t.Errorf("%s: %v (%s), want %s", c.name, status.Code(err), got, c.want)
				case c.want == "" && (got == errcode.AuthRequired || got == errcode.AuthExpired || got == errcode.AuthForbidden ||
					status.Code(err) == codes.Unavailable || status.Code(err) == codes.Internal):
					t.Errorf("%s: %v, want no authentication error", c.name, err)
				}
			}
		})
	}
}

// invokeEmpty calls the unary method full with an empty request.
func invokeEmpty(ctx context.Context, t *testing.T, conn *grpc.ClientConn, full string) error {
	t.Helper()
	name := strings.Replace(strings.TrimPrefix(full, "/"), "/", ".", 1)
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatal(err)
	}
	md := d.(protoreflect.MethodDescriptor)
	return conn.Invoke(ctx, full, dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output()))
}
