// Package token issues and verifies HashInsight access tokens: JWTs signed with Ed25519 (alg
// "EdDSA", the key id in the "kid" header) that live at most 15 minutes.
//
// The auth service signs with an [Issuer]; every other process verifies locally with a [Verifier]
// whose public keys come from a [KeySet]: the keys of auth's GetSigningKeys ([AuthKeySource]),
// cached, refreshed through singleflight at most once per second when a token names an unknown
// key id, and kept when a refresh fails. Rotation therefore logs nobody out: tokens signed by the
// previous key keep verifying for as long as auth publishes that key.
//
// Ed25519 verification costs ~60 µs on a small server core, so a Verifier remembers tokens it has
// verified (keyed by the SHA-256 of the raw token, bounded LRU, each entry expiring with its
// token and dropped if its key is no longer published): a token is checked cryptographically once
// and then costs about a microsecond per request.
package token

import (
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hashinsight/platform/pkg/authn"
)

// Defaults shared by Issuer and Verifier.
const (
	// DefaultIssuer is the "iss" claim of every access token.
	DefaultIssuer = "hashinsight-auth"
	// DefaultAudience is the "aud" claim of every access token.
	DefaultAudience = "hashinsight"
	// Algorithm is the only accepted JWT "alg".
	Algorithm = "EdDSA"
	// MaxLifetime is the longest an access token may live (exp - iat).
	MaxLifetime = 15 * time.Minute
	// DefaultLeeway tolerates clock skew between auth and the verifier.
	DefaultLeeway = 30 * time.Second
	// MaxTokenLen bounds the raw token a Verifier will look at.
	MaxTokenLen = 8 << 10
)

// Claims are the claims of an access token. RegisteredClaims carries iss, sub (the user id), aud,
// exp, nbf, iat and jti.
type Claims struct {
	jwt.RegisteredClaims
	Email string `json:"email,omitempty"`
	// Role is owner|admin|broker|client.
	Role string `json:"role,omitempty"`
	// Permissions are the user's effective permissions.
	Permissions []string `json:"perms"`
	// CustomerIDs are the customers the user may see when AllCustomers is false.
	CustomerIDs  []string `json:"cust,omitempty"`
	AllCustomers bool     `json:"all_cust,omitempty"`
	// Kind is the principal kind; access tokens are always "user".
	Kind string `json:"kind"`
	// SessionID identifies the refresh-token family (session) the token was issued for.
	SessionID string `json:"sid,omitempty"`
}

// ClaimsFor returns the claims of an access token for user principal p, issued at now and valid
// for ttl (capped at MaxLifetime), with token id jti. Issuer and audience are filled in by Sign.
func ClaimsFor(p *authn.Principal, jti string, now time.Time, ttl time.Duration) Claims {
	if ttl <= 0 || ttl > MaxLifetime {
		ttl = MaxLifetime
	}
	now = now.Truncate(time.Second)
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   p.Subject,
			ID:        jti,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Email:        p.Email,
		Role:         p.Role,
		Permissions:  slices.Clone(p.Permissions),
		CustomerIDs:  slices.Clone(p.CustomerIDs),
		AllCustomers: p.AllCustomers,
		Kind:         string(authn.KindUser),
		SessionID:    p.SessionID,
	}
}

// principal is the Principal a verified token stands for.
func (c *Claims) principal() *authn.Principal {
	p := &authn.Principal{
		Kind:         authn.KindUser,
		Subject:      c.Subject,
		Email:        c.Email,
		Role:         c.Role,
		Permissions:  c.Permissions,
		AllCustomers: c.AllCustomers,
		CustomerIDs:  c.CustomerIDs,
		TokenID:      c.ID,
		SessionID:    c.SessionID,
	}
	if c.ExpiresAt != nil {
		p.ExpiresAt = c.ExpiresAt.Time
	}
	return p
}

// Expiry returns the exp claim, zero when unset.
func (c *Claims) Expiry() time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}
