// Package authn is who is calling and what they may do, as every HashInsight service sees it.
//
// A call reaches a handler with a [Principal] in its context (see [FromContext]): the user behind
// an access token (a JWT verified locally, package authn/token), the API key or collector token
// resolved by the auth service (package authn/apikey parses them), or, for calls without a user
// credential, the operator or service whose mTLS certificate made the call. [Authenticator] builds
// it, plugged into every service's gRPC server by pkg/service; it also enforces the permission each
// RPC declares (pkg/access). The role → permission table of DESIGN.md §3 is defined here once
// ([PermissionsForRole]) and used by the auth service when it issues credentials.
//
// Tenancy: a service filters what it returns with [CustomerFilter] or [Principal.CanSeeCustomer];
// another tenant's resource answers NOT_FOUND, never PermissionDenied.
package authn

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"time"
)

// Errors shared by the credential checkers. Implementations of [TokenVerifier] and
// [CredentialResolver] return (or wrap) them so the Authenticator can pick the status.
var (
	// ErrInvalidCredential: the credential is malformed, forged, unknown, revoked or signed by a key
	// that is not published. Unauthenticated AUTH_001.
	ErrInvalidCredential = errors.New("authn: invalid credential")
	// ErrExpired: the credential was valid but has expired. Unauthenticated AUTH_003.
	ErrExpired = errors.New("authn: credential expired")
	// ErrUnavailable: the credential could not be checked because the auth service (or the
	// signing keys) could not be reached. Unavailable: the client should retry, not log in again.
	ErrUnavailable = errors.New("authn: credential check unavailable")
)

// KeySource supplies the Ed25519 public keys that verify access tokens, by key id ("kid"). The
// remote implementation is token.AuthKeySource (auth's GetSigningKeys); the auth service supplies
// its own keys in-process. token.KeySet caches any KeySource.
type KeySource interface {
	Keys(ctx context.Context) (map[string]ed25519.PublicKey, error)
}

// Kind says what authenticated a principal.
type Kind string

// Principal kinds.
const (
	// KindUser is a human user holding an access token (JWT).
	KindUser Kind = "user"
	// KindAPIKey is an API key (hsi_<env>_key_…), acting with its scoped permissions.
	KindAPIKey Kind = "api_key"
	// KindCollector is a site-scoped edge collector token (hsi_<env>_col_…).
	KindCollector Kind = "collector"
	// KindService is another HashInsight service calling on its own behalf (mTLS identity only).
	KindService Kind = "service"
	// KindOperator is an operator certificate (hictl, on-call) without a user credential.
	KindOperator Kind = "operator"
)

// Principal is the authenticated caller of a request. Principals handed out by this package are
// shared with caches: treat them, and their slices, as read-only (Clone before changing one).
type Principal struct {
	Kind Kind
	// Subject is the user id (uuid) for users, API keys (the key's owner) and collector tokens
	// (the creating user, when known), or the mTLS identity ("svc/billing", "operator/alice") for
	// services and operators.
	Subject string
	Email   string
	// Role is owner|admin|broker|client; empty for services, operators and collectors.
	Role string
	// Permissions are the effective permissions (an API key: its scope, never more than its
	// owner holds). "self" is implied for every principal (see Has).
	Permissions []string
	// AllCustomers lifts the tenant filter (owner, admin, service, operator).
	AllCustomers bool
	// CustomerIDs is the complete tenant scope when AllCustomers is false: a client's one customer,
	// a broker's assigned customers.
	CustomerIDs []string
	// APIKeyID is the id of the API key (KindAPIKey).
	APIKeyID string
	// CollectorTokenID and SiteID identify a collector token and the site it is bound to.
	CollectorTokenID string
	SiteID           string
	// TokenID is the access token's jti and SessionID its session ("sid"), for users.
	TokenID   string
	SessionID string
	// ExpiresAt is when the credential stops being valid; zero for mTLS-only principals.
	ExpiresAt time.Time
}

// Has reports whether p holds permission. "self" (acting on one's own account) is held by every
// principal; a nil principal holds nothing.
func (p *Principal) Has(permission string) bool {
	if p == nil || permission == "" {
		return false
	}
	if permission == PermSelf {
		return true
	}
	return slices.Contains(p.Permissions, permission)
}

// CanSeeCustomer reports whether p may see resources of customer id.
func (p *Principal) CanSeeCustomer(id string) bool {
	if p == nil {
		return false
	}
	if p.AllCustomers {
		return true
	}
	return id != "" && slices.Contains(p.CustomerIDs, id)
}

// Clone returns a deep copy of p.
func (p *Principal) Clone() *Principal {
	if p == nil {
		return nil
	}
	c := *p
	c.Permissions = slices.Clone(p.Permissions)
	c.CustomerIDs = slices.Clone(p.CustomerIDs)
	return &c
}

// CustomerFilter is the tenant scope of p for a query: all is true when p sees every customer;
// otherwise ids are the only customers it may see (none for a nil principal, so an unauthenticated
// query matches nothing). A service filters with `all || customer_id = ANY(ids)`.
func CustomerFilter(p *Principal) (all bool, ids []string) {
	if p == nil {
		return false, nil
	}
	if p.AllCustomers {
		return true, nil
	}
	return false, slices.Clone(p.CustomerIDs)
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of ctx, if one was authenticated.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}
