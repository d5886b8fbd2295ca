package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// SigningKey is an Ed25519 private key and its key id (the "kid" header).
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// Public returns the key's public half.
func (k *SigningKey) Public() ed25519.PublicKey {
	return k.Private.Public().(ed25519.PublicKey)
}

// GenerateSigningKey returns a new random key whose id is 16 random hex characters.
func GenerateSigningKey() (*SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token: generate key: %w", err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("token: key id: %w", err)
	}
	return &SigningKey{ID: hex.EncodeToString(id), Private: priv}, nil
}

// IssuerOptions configure an Issuer; zero values take the defaults.
type IssuerOptions struct {
	// Issuer is the "iss" claim; default DefaultIssuer.
	Issuer string
	// Audience is the "aud" claim; default DefaultAudience.
	Audience string
}

// Issuer signs access tokens. It is used by the auth service only.
type Issuer struct {
	issuer, audience string
}

// NewIssuer returns an Issuer.
func NewIssuer(opts IssuerOptions) *Issuer {
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	return &Issuer{issuer: opts.Issuer, audience: opts.Audience}
}

// Sign returns the signed JWT of claims. It sets iss and aud, a random jti when none is set, and
// refuses claims a Verifier would reject: no subject, no iat or exp, or a lifetime over
// MaxLifetime.
func (i *Issuer) Sign(claims Claims, key *SigningKey) (string, error) {
	if key == nil || key.ID == "" || len(key.Private) != ed25519.PrivateKeySize {
		return "", errors.New("token: sign: signing key with an id and an Ed25519 private key required")
	}
	if claims.Subject == "" {
		return "", errors.New("token: sign: subject required")
	}
	if claims.IssuedAt == nil || claims.ExpiresAt == nil {
		return "", errors.New("token: sign: iat and exp required")
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life <= 0 || life > MaxLifetime {
		return "", fmt.Errorf("token: sign: lifetime %s outside (0, %s]", life, MaxLifetime)
	}
	if claims.Kind == "" {
		claims.Kind = "user"
	}
	if claims.ID == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("token: sign: jti: %w", err)
		}
		claims.ID = hex.EncodeToString(b)
	}
	claims.Issuer = i.issuer
	claims.Audience = jwt.ClaimStrings{i.audience}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.ID
	s, err := t.SignedString(key.Private)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}
