package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hashinsight/platform/pkg/access"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/errcode"
	"github.com/hashinsight/platform/pkg/mtls"
)

// MetadataKey is the gRPC metadata key of the bearer credential.
const MetadataKey = "authorization"

// TokenVerifier verifies an access token (a JWT) locally; token.Verifier implements it. Errors
// wrap ErrExpired, ErrInvalidCredential or ErrUnavailable.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*Principal, error)
}

// Denial describes a call refused with PermissionDenied because the principal lacks the
// method's permission.
type Denial struct {
	Principal *Principal
	// Caller is the mTLS identity that made the call ("svc/gateway").
	Caller mtls.Identity
	// Method is the full gRPC method ("/hashinsight.mining.v1.MiningService/DeleteMiner").
	Method string
	// Permission is the permission the method requires.
	Permission string
	Time       time.Time
}

// DenialRecorder is told of every PermissionDenied (the auth service appends a
// "permission_denied" audit event). It is called on the request path: it must be quick and must
// not fail the call.
type DenialRecorder interface {
	RecordDenial(ctx context.Context, d Denial)
}

// DenialRecorderFunc adapts a function to DenialRecorder.
type DenialRecorderFunc func(ctx context.Context, d Denial)

// RecordDenial calls f.
func (f DenialRecorderFunc) RecordDenial(ctx context.Context, d Denial) { f(ctx, d) }

// LogDenials is the DenialRecorder of services without an audit table: one warning per denial
// with the audit event's fields.
func LogDenials(logger *slog.Logger) DenialRecorder {
	return DenialRecorderFunc(func(ctx context.Context, d Denial) {
		var subject, kind string
		if d.Principal != nil {
			subject, kind = d.Principal.Subject, string(d.Principal.Kind)
		}
		logger.WarnContext(ctx, "permission denied",
			"audit_action", "permission_denied", "audit_category", "authorization",
			"subject", subject, "principal_kind", kind, "caller", d.Caller.String(),
			"grpc.method", d.Method, "permission", d.Permission)
	})
}

// Options configure an Authenticator.
type Options struct {
	// Verifier checks JWT access tokens; nil rejects them (AUTH_001).
	Verifier TokenVerifier
	// Resolver resolves API keys and collector tokens (wrap it with NewCachedResolver); nil
	// rejects them (AUTH_001).
	Resolver CredentialResolver
	// Recorder is told of permission denials; nil: none.
	Recorder DenialRecorder
	// Logger receives credential-check outages (never a credential). Default: discard.
	Logger *slog.Logger
	// Now is the clock of Denial.Time (default time.Now).
	Now func() time.Time
}

// Authenticator implements pkg/grpcserver's PrincipalAuthenticator with the credential rules of
// the platform:
//
//   - "authorization: Bearer <jwt>" is verified locally (Verifier); "Bearer hsi_…" is parsed
//     (apikey.Parse: a malformed or checksum-failing value is rejected without a lookup) and then
//     resolved (Resolver). A credential that is sent is always the one used, whoever the mTLS
//     caller is.
//   - Without a credential, an operator certificate (operator/*) acts as an operator and any
//     service but svc/gateway as itself, both with every permission and every customer; the
//     gateway without a credential is nobody.
//   - A public method is allowed without a principal; a valid one is attached if sent, and an
//     invalid or expired one is ignored (refresh is called exactly when the access token expired).
//   - Otherwise: no principal → Unauthenticated AUTH_001; an expired credential → Unauthenticated
//     AUTH_003; an invalid one → Unauthenticated AUTH_001; the credential could not be checked →
//     Unavailable; the principal lacks the method's permission → PermissionDenied AUTH_002, and
//     the Recorder is told.
//
// The handler finds the principal with FromContext.
type Authenticator struct {
	verifier TokenVerifier
	resolver CredentialResolver
	recorder DenialRecorder
	logger   *slog.Logger
	now      func() time.Time
	all      []string // every permission, shared by the mTLS principals
}

// NewAuthenticator returns an Authenticator.
func NewAuthenticator(opts Options) *Authenticator {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Authenticator{
		verifier: opts.Verifier, resolver: opts.Resolver, recorder: opts.Recorder,
		logger: opts.Logger, now: opts.Now, all: allPermissions(),
	}
}

// Authenticate applies the credential rules to one call (see Authenticator).
func (a *Authenticator) Authenticate(ctx context.Context, rule access.Rule, caller mtls.Identity) (context.Context, error) {
	p, err := a.principal(ctx, caller)
	if rule.Public {
		if p != nil && err == nil {
			return NewContext(ctx, p), nil
		}
		return ctx, nil
	}
	if err != nil {
		return ctx, a.toStatus(ctx, err)
	}
	if p == nil {
		return ctx, errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "authentication required")
	}
	if !p.Has(rule.Permission) {
		if a.recorder != nil {
			method, _ := grpc.Method(ctx)
			a.recorder.RecordDenial(ctx, Denial{
				Principal: p, Caller: caller, Method: method, Permission: rule.Permission, Time: a.now(),
			})
		}
		return ctx, errcode.Error(errcode.AuthForbidden, codes.PermissionDenied,
			fmt.Sprintf("permission %q required", rule.Permission))
	}
	return NewContext(ctx, p), nil
}

// principal returns the principal of the call: from its credential when one is sent, else from
// the mTLS caller; (nil, nil) when there is none.
func (a *Authenticator) principal(ctx context.Context, caller mtls.Identity) (*Principal, error) {
	cred, present, err := bearer(ctx)
	if err != nil {
		return nil, err
	}
	if present {
		return a.checkCredential(ctx, cred)
	}
	switch {
	case caller.Kind == mtls.KindOperator:
		return a.mtlsPrincipal(KindOperator, caller), nil
	case caller.Kind == mtls.KindService && caller.Name != "gateway": // the edge alone is nobody
		return a.mtlsPrincipal(KindService, caller), nil
	}
	return nil, nil
}

func (a *Authenticator) checkCredential(ctx context.Context, cred string) (*Principal, error) {
	if apikey.Looks(cred) {
		if _, err := apikey.Parse(cred); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCredential, err)
		}
		if a.resolver == nil {
			return nil, fmt.Errorf("%w: API keys are not accepted here", ErrInvalidCredential)
		}
		return a.resolver.Resolve(ctx, cred)
	}
	if strings.Count(cred, ".") == 2 {
		if a.verifier == nil {
			return nil, fmt.Errorf("%w: access tokens are not accepted here", ErrInvalidCredential)
		}
		return a.verifier.Verify(ctx, cred)
	}
	return nil, fmt.Errorf("%w: neither an access token nor an API key", ErrInvalidCredential)
}

// bearer returns the bearer credential of the call's metadata. A header that is present but not
// one well-formed "Bearer <credential>" is an invalid credential.
func bearer(ctx context.Context) (cred string, present bool, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(MetadataKey)
	if len(vals) == 0 {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, fmt.Errorf("%w: more than one authorization header", ErrInvalidCredential)
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	cred = strings.TrimSpace(cred)
	if !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return "", true, fmt.Errorf("%w: authorization is not \"Bearer <credential>\"", ErrInvalidCredential)
	}
	return cred, true, nil
}

// toStatus maps a credential error to the status the client sees. Outages are logged (without
// the credential) and answer Unavailable: the client should retry, not log in again.
func (a *Authenticator) toStatus(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrExpired):
		return errcode.Error(errcode.AuthExpired, codes.Unauthenticated, "credential expired")
	case errors.Is(err, ErrInvalidCredential):
		return errcode.Error(errcode.AuthRequired, codes.Unauthenticated, "invalid credential")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return status.Error(codes.DeadlineExceeded, "deadline exceeded while checking the credential")
	}
	a.logger.WarnContext(ctx, "credential could not be checked", "error", err)
	return status.Error(codes.Unavailable, "the credential could not be checked; retry")
}

func (a *Authenticator) mtlsPrincipal(kind Kind, caller mtls.Identity) *Principal {
	return &Principal{Kind: kind, Subject: caller.String(), Permissions: a.all, AllCustomers: true}
}
