package token

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// AuthKeySource is the KeySource of every service but auth: the keys of
// auth.v1.AuthService/GetSigningKeys. Keys of another algorithm, of the wrong size or past their
// expire_time are skipped.
type AuthKeySource struct {
	client authv1.AuthServiceClient
	now    func() time.Time
}

// NewAuthKeySource returns a KeySource calling client (an mTLS connection to svc/auth).
func NewAuthKeySource(client authv1.AuthServiceClient) *AuthKeySource {
	return &AuthKeySource{client: client, now: time.Now}
}

// Keys calls GetSigningKeys.
func (s *AuthKeySource) Keys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	resp, err := s.client.GetSigningKeys(ctx, &authv1.GetSigningKeysRequest{})
	if err != nil {
		return nil, fmt.Errorf("auth GetSigningKeys: %w", err)
	}
	now := s.now()
	keys := make(map[string]ed25519.PublicKey, len(resp.GetKeys()))
	for _, k := range resp.GetKeys() {
		if k.GetKeyId() == "" || len(k.GetPublicKey()) != ed25519.PublicKeySize {
			continue
		}
		if alg := k.GetAlgorithm(); alg != "" && alg != Algorithm {
			continue
		}
		if k.GetExpireTime() != nil && !now.Before(k.GetExpireTime().AsTime()) {
			continue
		}
		keys[k.GetKeyId()] = ed25519.PublicKey(k.GetPublicKey())
	}
	return keys, nil
}
