package token

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/internal/lru"
)

// Verification errors: the authn sentinels, so the Authenticator maps them to AUTH_003 and
// AUTH_001. Key-set outages wrap authn.ErrUnavailable instead.
var (
	// ErrExpired: an authentic token past its exp (plus leeway).
	ErrExpired = authn.ErrExpired
	// ErrInvalid: anything else that is not a valid access token.
	ErrInvalid = authn.ErrInvalidCredential
)

// DefaultCacheSize is the default number of verified tokens a Verifier remembers.
const DefaultCacheSize = 10_000

// VerifierOptions configure a Verifier; zero values take the defaults.
type VerifierOptions struct {
	// Issuer and Audience are the required iss and aud (default DefaultIssuer, DefaultAudience).
	Issuer, Audience string
	// Leeway tolerates clock skew on exp, nbf and iat (default 30 s).
	Leeway time.Duration
	// CacheSize bounds the verified-token cache (default DefaultCacheSize; negative disables it).
	CacheSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier verifies access tokens locally. Safe for concurrent use.
type Verifier struct {
	keys   *KeySet
	parser *jwt.Parser
	leeway time.Duration
	now    func() time.Time
	cache  *lru.Cache[[sha256.Size]byte, verified] // nil when disabled
}

// verified is a cache entry: the principal of a token, the key that signed it and its expiry.
type verified struct {
	p   *authn.Principal
	kid string
}

// NewVerifier returns a Verifier that takes its keys from keys.
func NewVerifier(keys *KeySet, opts VerifierOptions) *Verifier {
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	v := &Verifier{
		keys:   keys,
		leeway: opts.Leeway,
		now:    opts.Now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Algorithm}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithIssuer(opts.Issuer),
			jwt.WithAudience(opts.Audience),
			jwt.WithLeeway(opts.Leeway),
			jwt.WithTimeFunc(opts.Now),
			jwt.WithStrictDecoding(),
		),
	}
	if opts.CacheSize > 0 {
		v.cache = lru.New[[sha256.Size]byte, verified](opts.CacheSize)
	}
	return v
}

// Verify checks raw and returns the user principal it stands for. It rejects any alg but EdDSA
// (alg=none included), a bad signature, edited claims, a key id that is not published after one
// refresh, a missing exp or iat, an issuer or audience other than configured, and a lifetime
// (exp − iat) over MaxLifetime plus leeway. Errors wrap ErrExpired, ErrInvalid or
// authn.ErrUnavailable, or are the context's error. The principal is shared: read-only.
func (v *Verifier) Verify(ctx context.Context, raw string) (*authn.Principal, error) {
	if len(raw) == 0 || len(raw) > MaxTokenLen {
		return nil, fmt.Errorf("%w: token length %d", ErrInvalid, len(raw))
	}
	var sum [sha256.Size]byte
	if v.cache != nil {
		sum = sha256.Sum256([]byte(raw))
		if e, ok := v.cache.Get(sum, v.now()); ok && v.keys.Known(e.kid) {
			c := *e.p
			return &c, nil
		}
	}

	claims := &Claims{}
	var kid string
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, fmt.Errorf("%w: no kid header", ErrInvalid)
		}
		return v.keys.Key(ctx, kid)
	})
	if err != nil {
		return nil, classify(ctx, err)
	}
	if err := v.checkClaims(claims); err != nil {
		return nil, err
	}
	p := claims.principal()
	if v.cache != nil {
		v.cache.Add(sum, verified{p: p, kid: kid}, p.ExpiresAt, v.now())
	}
	c := *p
	return &c, nil
}

// checkClaims applies the rules jwt's validator does not: iat present, lifetime bounded, a
// user token naming a subject and a known role.
func (v *Verifier) checkClaims(c *Claims) error {
	if c.IssuedAt == nil {
		return fmt.Errorf("%w: no iat", ErrInvalid)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt.Time); life > MaxLifetime+v.leeway {
		return fmt.Errorf("%w: lifetime %s exceeds %s", ErrInvalid, life, MaxLifetime)
	}
	if c.Subject == "" {
		return fmt.Errorf("%w: no subject", ErrInvalid)
	}
	if c.Kind != string(authn.KindUser) {
		return fmt.Errorf("%w: kind %q is not an access token", ErrInvalid, c.Kind)
	}
	if !authn.ValidRole(c.Role) {
		return fmt.Errorf("%w: unknown role", ErrInvalid)
	}
	return nil
}

// classify maps a jwt parse error to ErrExpired, ErrInvalid, an outage or the context's error.
// jwt verifies the signature before the claims, so "expired" is only ever said of an authentic
// token.
func classify(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, authn.ErrUnavailable):
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return err
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return ctx.Err()
	case errors.Is(err, jwt.ErrTokenExpired):
		// Any other claim failure makes the token invalid, not merely expired.
		for _, e := range []error{
			jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenUsedBeforeIssued,
			jwt.ErrTokenNotValidYet, jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidSubject,
			jwt.ErrTokenInvalidId,
		} {
			if errors.Is(err, e) {
				return fmt.Errorf("%w: %w", ErrInvalid, err)
			}
		}
		return fmt.Errorf("%w: %w", ErrExpired, err)
	case errors.Is(err, ErrInvalid):
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}
