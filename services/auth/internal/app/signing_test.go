package app_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/config"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	"github.com/hashinsight/platform/services/auth/internal/app"
)

// kidOf returns the "kid" header of a JWT.
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("jwt header: %v", err)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.Alg != "EdDSA" {
		t.Fatalf("alg %q, want EdDSA", h.Alg)
	}
	return h.Kid
}

// verifierFor verifies tokens with exactly the keys GetSigningKeys published.
func verifierFor(resp *authv1.GetSigningKeysResponse) *token.Verifier {
	keys := token.StaticKeys{}
	for _, k := range resp.GetKeys() {
		keys[k.GetKeyId()] = ed25519.PublicKey(k.GetPublicKey())
	}
	return token.NewVerifier(token.NewKeySet(keys, token.KeySetOptions{}), token.VerifierOptions{
		Issuer: resp.GetIssuer(), Audience: resp.GetAudience(), CacheSize: -1,
	})
}

// TestSigningKeys checks GetSigningKeys and that a key rotation logs nobody out: a token signed
// before the rotation keeps working, new tokens use the new key, and the old key stays
// published with an expiry after the old token's.
func TestSigningKeys(t *testing.T) {
	m := startAuth(t, map[string]string{"SIGNING_KEY_ROTATION": "2s", "ACCESS_TOKEN_TTL": "5m"})
	keys, err := m.gw.GetSigningKeys(m.ctx(), &authv1.GetSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.GetKeys()) == 0 {
		t.Fatal("no signing keys published")
	}
	first := keys.GetKeys()[0]
	if !first.GetSigning() || first.GetAlgorithm() != "EdDSA" || len(first.GetPublicKey()) != ed25519.PublicKeySize ||
		first.GetExpireTime() != nil || keys.GetIssuer() != "hashinsight-auth" || keys.GetCacheTtl().AsDuration() <= 0 {
		t.Fatalf("GetSigningKeys = %v", keys)
	}

	m.createUser("", &authv1.CreateUserRequest{Email: "owner@example.com", Password: pw, Role: authv1.Role_ROLE_OWNER})
	old := m.login("owner@example.com", pw)
	oldKid := kidOf(t, old.GetAccessToken())
	if life := time.Until(old.GetAccessTokenExpireTime().AsTime()); life > 5*time.Minute || life < 4*time.Minute {
		t.Errorf("access token lives %v, want ACCESS_TOKEN_TTL=5m", life)
	}
	p, err := verifierFor(keys).Verify(t.Context(), old.GetAccessToken())
	if err != nil {
		t.Fatalf("the token does not verify with the published keys: %v", err)
	}
	if p.Email != "owner@example.com" || p.Role != "owner" || p.SessionID == "" {
		t.Errorf("verified principal = %+v", p)
	}

	var rotated *authv1.GetSigningKeysResponse
	eventually(t, 15*time.Second, "a signing key rotation", func() bool {
		r, err := m.gw.GetSigningKeys(m.ctx(), &authv1.GetSigningKeysRequest{})
		if err != nil || len(r.GetKeys()) < 2 || r.GetKeys()[0].GetKeyId() == oldKid {
			return false
		}
		rotated = r
		return true
	})
	var oldKey *authv1.SigningKey
	for _, k := range rotated.GetKeys() {
		if k.GetKeyId() == oldKid {
			oldKey = k
		}
	}
	if oldKey == nil {
		t.Fatal("the rotated-out key is no longer published")
	}
	if oldKey.GetSigning() || oldKey.GetExpireTime() == nil || !oldKey.GetExpireTime().AsTime().After(old.GetAccessTokenExpireTime().AsTime()) {
		t.Errorf("old key %v must stay published past the old token's expiry %v", oldKey, old.GetAccessTokenExpireTime().AsTime())
	}

	// The old token still works, on auth itself and for a verifier using the published keys.
	if _, err := m.gw.GetMe(m.as(old.GetAccessToken()), &authv1.GetMeRequest{}); err != nil {
		t.Errorf("token signed before the rotation: %v", err)
	}
	if _, err := verifierFor(rotated).Verify(t.Context(), old.GetAccessToken()); err != nil {
		t.Errorf("old token against the rotated key set: %v", err)
	}
	fresh := m.login("owner@example.com", pw)
	if kid := kidOf(t, fresh.GetAccessToken()); kid == oldKid {
		t.Error("a token issued after the rotation is signed with the old key")
	}
	if _, err := m.gw.GetMe(m.as(fresh.GetAccessToken()), &authv1.GetMeRequest{}); err != nil {
		t.Errorf("token signed after the rotation: %v", err)
	}
	// The refresh token from before the rotation still refreshes.
	if _, err := m.gw.Refresh(m.ctx(), &authv1.RefreshRequest{RefreshToken: old.GetRefreshToken()}); err != nil {
		t.Errorf("refresh across a rotation: %v", err)
	}
}

// TestSigningKeySurvivesRestart checks that a restarted replica keeps the same key (it is stored
// encrypted under ENCRYPTION_PASSWORD) so tokens issued before the restart stay valid, and that
// the stored private key is not the plain seed.
func TestSigningKeySurvivesRestart(t *testing.T) {
	m := startAuth(t, nil)
	before, err := m.gw.GetSigningKeys(m.ctx(), &authv1.GetSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var enc []byte
	if err := m.h.Runtime.DB.QueryRow(m.ctx(), `SELECT private_key_enc FROM signing_keys`).Scan(&enc); err != nil {
		t.Fatal(err)
	}
	if len(enc) < 12+32+16 {
		t.Errorf("stored private key is %d bytes, want nonce+ciphertext+tag", len(enc))
	}
	env := m.h.Env
	if code := m.h.Stop(); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	cfg, err := app.LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	m2 := restart(t, m, cfg)
	after, err := m2.gw.GetSigningKeys(m2.ctx(), &authv1.GetSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.GetKeys()) != 1 || after.GetKeys()[0].GetKeyId() != before.GetKeys()[0].GetKeyId() ||
		!bytes.Equal(after.GetKeys()[0].GetPublicKey(), before.GetKeys()[0].GetPublicKey()) {
		t.Errorf("keys after restart %v, want the same key as before %v", after.GetKeys(), before.GetKeys())
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"defaults", map[string]string{}, ""},
		{"access token over 15 minutes", map[string]string{"ACCESS_TOKEN_TTL": "16m"}, "ACCESS_TOKEN_TTL"},
		{"access token zero", map[string]string{"ACCESS_TOKEN_TTL": "0s"}, "ACCESS_TOKEN_TTL"},
		{"access token not a duration", map[string]string{"ACCESS_TOKEN_TTL": "fifteen"}, "ACCESS_TOKEN_TTL"},
		{"refresh shorter than access", map[string]string{"REFRESH_TOKEN_TTL": "1m"}, "REFRESH_TOKEN_TTL"},
		{"rotation too short", map[string]string{"SIGNING_KEY_ROTATION": "10ms"}, "SIGNING_KEY_ROTATION"},
		{"bad env name", map[string]string{"HASHINSIGHT_ENV": "Prod-1"}, "HASHINSIGHT_ENV"},
		{"unknown password hashing", map[string]string{"PASSWORD_HASHING": "gpu"}, "PASSWORD_HASHING"},
		{"inline password hashing", map[string]string{"PASSWORD_HASHING": "inline"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := app.LoadConfig(tc.env)
			if tc.wantVar == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.AccessTokenTTL != 15*time.Minute || cfg.RefreshTokenTTL != 30*day || cfg.SigningKeyRotation != 24*time.Hour || cfg.Env != "dev" ||
					cfg.PasswordHashing != tc.env["PASSWORD_HASHING"] && cfg.PasswordHashing != app.HashingWorkers {
					t.Errorf("defaults = %+v", cfg)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Var != tc.wantVar {
				t.Fatalf("error %v, want a config error naming %s", err, tc.wantVar)
			}
			if code := config.Exit(err, &bytes.Buffer{}); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}
