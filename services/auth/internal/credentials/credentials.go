// Package credentials puts API keys and collector tokens (package apikeys) together with the
// users they belong to and the audit log:
//
//   - Resolve turns a presented hsi_<env>_key_… or hsi_<env>_col_… credential into the principal
//     every service sees. An API key acts as its owner with the key's scopes intersected with the
//     owner's current permissions (a demoted owner's keys shrink at once) and the owner's tenant
//     scope; a disabled or deleted owner makes the key invalid. A collector token holds only
//     collector:write for its site. Malformed values are rejected before any lookup (apikeys).
//   - the management operations (create, rotate, revoke, list) act for the calling principal and
//     record api_key_create/rotate/revoke and collector_token_create/revoke audit events.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/services/auth/internal/apikeys"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/reqinfo"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

// Users is what credentials needs from the user store.
type Users interface {
	Get(ctx context.Context, id string) (users.User, error)
}

// Service resolves and manages API keys and collector tokens.
type Service struct {
	keys  *apikeys.Service
	users Users
	audit users.Auditor
}

// NewService returns the credentials service.
func NewService(keys *apikeys.Service, u Users, auditor users.Auditor) *Service {
	return &Service{keys: keys, users: u, audit: auditor}
}

// Resolve returns the principal of a presented credential. siteID, when set, is the X-Site-ID of
// a collector upload and must match a collector token's site (apikeys.ErrSiteMismatch); it is
// ignored for API keys. Rejections wrap authn.ErrInvalidCredential or authn.ErrExpired (and the
// apikeys sentinel), so the result serves both the Authenticate RPC and the in-process resolver.
func (s *Service) Resolve(ctx context.Context, plaintext, siteID string) (*authn.Principal, error) {
	r, err := s.keys.Authenticate(ctx, plaintext)
	switch {
	case errors.Is(err, apikeys.ErrExpired):
		return nil, fmt.Errorf("%w: %w", authn.ErrExpired, err)
	case errors.Is(err, apikeys.ErrInvalidKey), errors.Is(err, apikeys.ErrRevoked):
		return nil, fmt.Errorf("%w: %w", authn.ErrInvalidCredential, err)
	case err != nil:
		return nil, fmt.Errorf("resolve credential: %w", err)
	}
	switch r.Kind {
	case apikeys.KindCollector:
		if siteID != "" {
			if err := r.CheckSite(siteID); err != nil {
				return nil, err
			}
		}
		return &authn.Principal{
			Kind:             authn.KindCollector,
			Subject:          r.UserID,
			Permissions:      []string{authn.PermCollectorWrite},
			CollectorTokenID: r.TokenID,
			SiteID:           r.SiteID,
			ExpiresAt:        r.ExpiresAt,
		}, nil
	case apikeys.KindAPIKey:
		u, err := s.users.Get(ctx, r.UserID)
		switch {
		case errors.Is(err, users.ErrNotFound):
			return nil, fmt.Errorf("%w: the key's owner no longer exists", authn.ErrInvalidCredential)
		case err != nil:
			return nil, fmt.Errorf("resolve credential: owner: %w", err)
		case u.Disabled():
			return nil, fmt.Errorf("%w: the key's owner is disabled", authn.ErrInvalidCredential)
		}
		held := u.Permissions()
		perms := make([]string, 0, len(r.Scopes)+1)
		for _, p := range r.Scopes {
			if slices.Contains(held, p) && p != authn.PermSelf {
				perms = append(perms, p)
			}
		}
		perms = append(perms, authn.PermSelf)
		all, cust := u.Scope()
		return &authn.Principal{
			Kind:         authn.KindAPIKey,
			Subject:      u.ID,
			Email:        u.Email,
			Role:         u.Role,
			Permissions:  perms,
			AllCustomers: all,
			CustomerIDs:  cust,
			APIKeyID:     r.KeyID,
			ExpiresAt:    r.ExpiresAt,
		}, nil
	}
	return nil, fmt.Errorf("%w: unknown credential kind", authn.ErrInvalidCredential)
}

// actor is the apikeys view of a principal.
func actor(p *authn.Principal) apikeys.Actor {
	if p == nil {
		return apikeys.Actor{}
	}
	return apikeys.Actor{UserID: p.Subject, Permissions: p.Permissions}
}

// isUser reports whether p stands for a user account (whose Subject is a user id).
func isUser(p *authn.Principal) bool {
	return p != nil && (p.Kind == authn.KindUser || p.Kind == authn.KindAPIKey)
}

// CreateKeyInput is the input of CreateKey.
type CreateKeyInput struct {
	Name        string
	Permissions []string
	// TTL is the key's lifetime; 0 means apikeys.DefaultTTL.
	TTL time.Duration
	// UserID is the key's owner; empty means the caller.
	UserID string
}

// CreateKey creates an API key and returns its secret (shown once) and its description.
func (s *Service) CreateKey(ctx context.Context, p *authn.Principal, in CreateKeyInput) (string, apikeys.Key, error) {
	for _, perm := range in.Permissions {
		if !authn.ValidPermission(perm) {
			return "", apikeys.Key{}, &users.FieldError{Field: "permissions", Reason: fmt.Sprintf("unknown permission %q", perm)}
		}
	}
	creator := actor(p)
	owner := creator
	switch {
	case in.UserID != "" && (!isUser(p) || in.UserID != p.Subject):
		if err := users.ValidateID("user_id", in.UserID); err != nil {
			return "", apikeys.Key{}, err
		}
		if !p.Has(authn.PermUsersAdmin) {
			return "", apikeys.Key{}, fmt.Errorf("%w: creating a key for another user requires %s", apikeys.ErrPermissionDenied, authn.PermUsersAdmin)
		}
		u, err := s.users.Get(ctx, in.UserID)
		switch {
		case errors.Is(err, users.ErrNotFound):
			return "", apikeys.Key{}, err
		case err != nil:
			return "", apikeys.Key{}, fmt.Errorf("create api key: owner: %w", err)
		case u.Disabled():
			return "", apikeys.Key{}, &users.FieldError{Field: "user_id", Reason: "names a disabled user"}
		}
		owner = apikeys.Actor{UserID: u.ID, Permissions: u.Permissions()}
	case !isUser(p):
		return "", apikeys.Key{}, &users.FieldError{Field: "user_id", Reason: "is required when the caller is not a user"}
	}
	secret, k, err := s.keys.CreateFor(ctx, creator, owner, in.Name, in.Permissions, in.TTL)
	if err != nil {
		s.record(ctx, p, audit.LevelWarning, audit.ActionAPIKeyCreate, audit.StatusFailure, map[string]any{
			"owner_user_id": owner.UserID, "reason": reason(err),
		})
		return "", apikeys.Key{}, err
	}
	s.record(ctx, p, audit.LevelInfo, audit.ActionAPIKeyCreate, audit.StatusSuccess, map[string]any{
		"key_id": k.ID, "name": k.Name, "owner_user_id": k.UserID, "scopes": anySlice(k.Scopes),
		"display_prefix": k.DisplayPrefix, "expires_at": k.ExpiresAt.UTC().Format(time.RFC3339),
	})
	return secret, k, nil
}

// ListKeys lists API keys without secrets (apikeys.Service.List).
func (s *Service) ListKeys(ctx context.Context, p *authn.Principal, f apikeys.ListFilter) ([]apikeys.Key, string, error) {
	if f.UserID != "" {
		if err := users.ValidateID("user_id", f.UserID); err != nil {
			return nil, "", err
		}
	}
	return s.keys.List(ctx, actor(p), f)
}

// RotateKey replaces key id; the old key stays valid for overlap.
func (s *Service) RotateKey(ctx context.Context, p *authn.Principal, id string, overlap time.Duration) (string, apikeys.Key, apikeys.Key, error) {
	if err := users.ValidateID("id", id); err != nil {
		return "", apikeys.Key{}, apikeys.Key{}, err
	}
	secret, next, old, err := s.keys.Rotate(ctx, id, actor(p), overlap)
	if err != nil {
		if !errors.Is(err, apikeys.ErrNotFound) {
			s.record(ctx, p, audit.LevelWarning, audit.ActionAPIKeyRotate, audit.StatusFailure, map[string]any{"key_id": id, "reason": reason(err)})
		}
		return "", apikeys.Key{}, apikeys.Key{}, err
	}
	s.record(ctx, p, audit.LevelInfo, audit.ActionAPIKeyRotate, audit.StatusSuccess, map[string]any{
		"key_id": old.ID, "new_key_id": next.ID, "owner_user_id": next.UserID,
		"old_key_expires_at": old.ExpiresAt.UTC().Format(time.RFC3339), "overlap_seconds": int64(overlap / time.Second),
	})
	return secret, next, old, nil
}

// RevokeKey revokes key id.
func (s *Service) RevokeKey(ctx context.Context, p *authn.Principal, id string) (apikeys.Key, error) {
	if err := users.ValidateID("id", id); err != nil {
		return apikeys.Key{}, err
	}
	k, err := s.keys.Revoke(ctx, id, actor(p))
	if err != nil {
		return apikeys.Key{}, err
	}
	s.record(ctx, p, audit.LevelInfo, audit.ActionAPIKeyRevoke, audit.StatusSuccess, map[string]any{
		"key_id": k.ID, "owner_user_id": k.UserID,
	})
	return k, nil
}

// RevokeUserKeys revokes every API key of a user (a disabled user's keys).
func (s *Service) RevokeUserKeys(ctx context.Context, userID string) (int64, error) {
	return s.keys.RevokeUserKeys(ctx, userID)
}

// CreateCollectorToken creates a site-scoped collector token and returns its secret once.
func (s *Service) CreateCollectorToken(ctx context.Context, p *authn.Principal, siteID, name string, ttl time.Duration) (string, apikeys.CollectorToken, error) {
	secret, t, err := s.keys.CreateCollectorToken(ctx, actor(p), siteID, name, ttl)
	if err != nil {
		return "", apikeys.CollectorToken{}, err
	}
	details := map[string]any{"token_id": t.ID, "site_id": t.SiteID, "name": t.Name, "display_prefix": t.DisplayPrefix}
	if !t.ExpiresAt.IsZero() {
		details["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	s.record(ctx, p, audit.LevelInfo, audit.ActionCollectorTokenCreate, audit.StatusSuccess, details)
	return secret, t, nil
}

// ListCollectorTokens lists collector tokens without secrets.
func (s *Service) ListCollectorTokens(ctx context.Context, p *authn.Principal, f apikeys.TokenFilter) ([]apikeys.CollectorToken, string, error) {
	return s.keys.ListCollectorTokens(ctx, actor(p), f)
}

// RevokeCollectorToken revokes collector token id.
func (s *Service) RevokeCollectorToken(ctx context.Context, p *authn.Principal, id string) (apikeys.CollectorToken, error) {
	if err := users.ValidateID("id", id); err != nil {
		return apikeys.CollectorToken{}, err
	}
	t, err := s.keys.RevokeCollectorToken(ctx, id, actor(p))
	if err != nil {
		return apikeys.CollectorToken{}, err
	}
	s.record(ctx, p, audit.LevelInfo, audit.ActionCollectorTokenRevoke, audit.StatusSuccess, map[string]any{
		"token_id": t.ID, "site_id": t.SiteID,
	})
	return t, nil
}

func (s *Service) record(ctx context.Context, p *authn.Principal, level audit.Level, action, status string, details map[string]any) {
	if s.audit == nil {
		return
	}
	e := audit.Event{
		Level: level, Category: audit.CategoryAPIKeyManagement, Action: action, Status: status,
		IPAddress: reqinfo.ClientIP(ctx), Details: details,
	}
	if p != nil {
		e.UserID, e.UserEmail, e.UserRole = p.Subject, p.Email, p.Role
		if p.APIKeyID != "" {
			details["acting_api_key_id"] = p.APIKeyID
		}
	}
	s.audit.Record(ctx, e)
}

func reason(err error) string {
	switch {
	case errors.Is(err, apikeys.ErrScopeExceeds):
		return "scope_exceeds"
	case errors.Is(err, apikeys.ErrPermissionDenied):
		return "permission_denied"
	case errors.Is(err, apikeys.ErrInvalidArgument):
		return "invalid_argument"
	case errors.Is(err, apikeys.ErrInactive):
		return "inactive"
	case errors.Is(err, apikeys.ErrUnknownUser):
		return "unknown_user"
	}
	return "error"
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
