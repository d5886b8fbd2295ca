// Package apikeys manages API keys and collector tokens: creation (the secret is returned once),
// listing without secrets, revocation, rotation with an overlap window, and authentication of a
// presented credential (DESIGN §3, manual §6.3).
//
// Credentials have the format of pkg/authn/apikey: hsi_<env>_key_<random><checksum> for API keys,
// hsi_<env>_col_<random><checksum> for collector tokens. Only a keyed hash (HMAC-SHA256 under a
// key derived from SESSION_SECRET) is stored. [Service.Authenticate] parses first, so a
// malformed or checksum-failing value is rejected without touching the store.
//
// Authorization model: an [Actor] is the caller. Users manage their own keys; an actor holding
// users:admin manages everybody's. A key or token the actor may not manage answers ErrNotFound,
// as if it did not exist.
//
// This package does not write audit events and does not know users: the caller (the gRPC layer)
// records api_key_create/rotate/revoke and collector_token_create/revoke, and, when resolving a
// credential into a principal, loads the key's owner, rejects disabled owners and intersects the
// key's scopes with the owner's current permissions.
package apikeys

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hashinsight/platform/pkg/authn"
)

// Limits and defaults.
const (
	// DefaultTTL is an API key's lifetime when none is asked for.
	DefaultTTL = 90 * 24 * time.Hour
	// MaxTTL is the longest API key lifetime.
	MaxTTL = 365 * 24 * time.Hour
	// DefaultOverlap is how long a rotated key stays valid next to its successor by default.
	DefaultOverlap = 7 * 24 * time.Hour
	// MaxOverlap is the longest overlap window.
	MaxOverlap = 90 * 24 * time.Hour
	// MaxCollectorTTL is the longest collector token lifetime (0 means no expiry).
	MaxCollectorTTL = 3650 * 24 * time.Hour
	// TouchInterval is how stale last_used_at may get: it is written at most once per interval
	// per credential, not on every request.
	TouchInterval = time.Minute
	// DefaultPageSize and MaxPageSize bound listings.
	DefaultPageSize = 50
	MaxPageSize     = 1000

	maxNameLen   = 128
	maxSiteIDLen = 128
	maxScopes    = 64
)

// Sentinel errors. Every error of this package wraps one of them (or a store/context error);
// the gRPC layer maps them in its toStatus:
var (
	// ErrInvalidKey: the presented credential is malformed, fails its checksum, belongs to
	// another environment or is unknown. Unauthenticated (AUTH_001).
	ErrInvalidKey = errors.New("apikeys: invalid credential")
	// ErrExpired: the presented credential has expired (rotated keys expire at the end of their
	// overlap). Unauthenticated (AUTH_003).
	ErrExpired = errors.New("apikeys: credential expired")
	// ErrRevoked: the presented credential was revoked. Unauthenticated (AUTH_001).
	ErrRevoked = errors.New("apikeys: credential revoked")
	// ErrSiteMismatch: a collector token was presented for another site (Resolved.CheckSite).
	// PermissionDenied (AUTH_002).
	ErrSiteMismatch = errors.New("apikeys: collector token is bound to another site")
	// ErrScopeExceeds: a requested scope is not held by the creator (or the owner), or the creator
	// of a collector token lacks collector:write. PermissionDenied (AUTH_002).
	ErrScopeExceeds = errors.New("apikeys: scope exceeds the creator's permissions")
	// ErrPermissionDenied: the actor may not act for another user (creating a key for, or listing
	// the keys of, someone else without users:admin). PermissionDenied (AUTH_002).
	ErrPermissionDenied = errors.New("apikeys: permission denied")
	// ErrNotFound: no such key or token, or the actor may not manage it. NotFound (NOT_FOUND_001).
	ErrNotFound = errors.New("apikeys: not found")
	// ErrInvalidArgument: a bad name, scope, TTL, overlap, site id or page token.
	// InvalidArgument (VALIDATION_001).
	ErrInvalidArgument = errors.New("apikeys: invalid argument")
	// ErrInactive: the key cannot be rotated because it is revoked, expired or already rotated.
	// FailedPrecondition (CONFLICT_001).
	ErrInactive = errors.New("apikeys: key is not active")
	// ErrUnknownUser: the key's owner does not exist. NotFound (NOT_FOUND_001).
	ErrUnknownUser = errors.New("apikeys: unknown user")
)

// Kind is what a presented credential turned out to be.
type Kind string

// Credential kinds.
const (
	KindAPIKey    Kind = "api_key"
	KindCollector Kind = "collector"
)

// Actor is the principal performing a management operation.
type Actor struct {
	// UserID is the acting user's id. Operators and services may use their identity
	// ("operator/alice"); they cannot own API keys but can manage them with users:admin.
	UserID string
	// Permissions the actor holds (for an API key: its effective scope).
	Permissions []string
}

// IsAdmin reports whether a may manage every user's keys and tokens (users:admin).
func (a Actor) IsAdmin() bool { return slices.Contains(a.Permissions, authn.PermUsersAdmin) }

func (a Actor) canManage(ownerID string) bool {
	return a.IsAdmin() || (a.UserID != "" && a.UserID == ownerID)
}

// State is the lifecycle state of a key or token at some instant.
type State string

// States.
const (
	StateActive  State = "active"
	StateRotated State = "rotated" // replaced, still valid until ExpiresAt (the overlap)
	StateExpired State = "expired"
	StateRevoked State = "revoked"
)

// Key is an API key without its secret. Zero times mean "not set" (never expires, never
// revoked, never used, not rotated).
type Key struct {
	ID     string
	UserID string
	Name   string
	// DisplayPrefix is the public leading part of the key, e.g. "hsi_prod_key_AbCdEfGhIjKl".
	DisplayPrefix string
	// Scopes are the permissions the key was granted, sorted.
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
	// RotatedFromID is the key this key replaced; RotatedToID the key that replaced it.
	RotatedFromID string
	RotatedToID   string
	// OverlapUntil is the end of the overlap window given when the key was rotated.
	OverlapUntil time.Time
}

// State returns k's state at now. Revoked wins over expired, expired over rotated.
func (k Key) State(now time.Time) State {
	switch {
	case !k.RevokedAt.IsZero():
		return StateRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StateExpired
	case k.RotatedToID != "":
		return StateRotated
	}
	return StateActive
}

// CollectorToken is a site-scoped collector token without its secret. Zero times mean "not set".
type CollectorToken struct {
	ID     string
	SiteID string
	Name   string
	// DisplayPrefix is the public leading part, e.g. "hsi_prod_col_AbCdEfGhIjKl".
	DisplayPrefix string
	// CreatedBy is the creating actor's UserID.
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
}

// State returns t's state at now (never StateRotated).
func (t CollectorToken) State(now time.Time) State {
	switch {
	case !t.RevokedAt.IsZero():
		return StateRevoked
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return StateExpired
	}
	return StateActive
}

// Resolved is an authenticated credential.
type Resolved struct {
	Kind Kind
	// KeyID is the API key's id (KindAPIKey).
	KeyID string
	// TokenID and SiteID identify a collector token and its site (KindCollector).
	TokenID string
	SiteID  string
	// UserID is the API key's owner, or the collector token's creator (informational).
	UserID string
	// Scopes: the API key's scopes (to be intersected with the owner's current permissions), or
	// ["collector:write"] for a collector token.
	Scopes []string
	// ExpiresAt is when the credential stops being valid; zero for never. Caches must not keep
	// the answer past it.
	ExpiresAt time.Time
}

// CheckSite returns ErrSiteMismatch unless r is a collector token bound to siteID. Collector
// uploads call it with their X-Site-ID.
func (r Resolved) CheckSite(siteID string) error {
	if r.Kind != KindCollector || r.SiteID == "" || r.SiteID != siteID {
		return ErrSiteMismatch
	}
	return nil
}

// Cursor is a keyset position in a newest-first listing.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// KeyQuery selects API keys for Store.ListKeys, newest first (created_at, id descending).
type KeyQuery struct {
	// UserID restricts to one owner; empty lists every owner.
	UserID string
	// ActiveAt, when set, keeps only keys neither revoked nor expired at that instant.
	ActiveAt time.Time
	// After, when set, continues after that position.
	After *Cursor
	// Limit is the maximum number of keys (positive).
	Limit int
}

// TokenQuery selects collector tokens for Store.ListCollectorTokens, newest first.
type TokenQuery struct {
	// SiteID restricts to one site; CreatedBy to one creator. Empty does not filter.
	SiteID    string
	CreatedBy string
	// ActiveAt, When set, keeps only tokens neither revoked nor expired at that instant.
	ActiveAt time.Time
	After    *Cursor
	Limit    int
}

// Rotation is what a rotate callback decides: the successor to insert and the new expiry of the
// old key.
type Rotation struct {
	// New is the successor (ID empty: the store assigns it) and NewHash its keyed hash.
	New     Key
	NewHash []byte
	// OldExpiresAt is the old key's new expiry, also recorded as its overlap_until.
	OldExpiresAt time.Time
}

// Store persists keys and tokens. The postgres implementation is package apikeyspg. Lookups of
// a missing (or malformed) id return ErrNotFound.
type Store interface {
	// CreateKey inserts k (ID assigned by the store) with its hash; an unknown owner fails with
	// ErrUnknownUser.
	CreateKey(ctx context.Context, k Key, hash []byte) (Key, error)
	GetKey(ctx context.Context, id string) (Key, error)
	// KeyByHash finds the key whose keyed hash is hash.
	KeyByHash(ctx context.Context, hash []byte) (Key, error)
	ListKeys(ctx context.Context, q KeyQuery) ([]Key, error)
	// RevokeKey sets revoked_at to at unless already revoked, and returns the key.
	RevokeKey(ctx context.Context, id string, at time.Time) (Key, error)
	// RevokeUserKeys revokes every unrevoked key of userID at at and returns how many.
	RevokeUserKeys(ctx context.Context, userID string, at time.Time) (int64, error)
	// RotateKey, in one transaction, locks key id, calls rotate with it, inserts the successor
	// and updates the old key (expires_at and overlap_until = OldExpiresAt, rotated_to = the
	// successor's id). It returns the successor and the updated old key. An error from rotate is
	// returned as is.
	RotateKey(ctx context.Context, id string, rotate func(old Key) (Rotation, error)) (newKey, oldKey Key, err error)
	// TouchKey sets last_used_at to at unless it is already later than at-interval (another
	// replica touched it), so at most one write per interval happens.
	TouchKey(ctx context.Context, id string, at time.Time, interval time.Duration) error

	CreateCollectorToken(ctx context.Context, t CollectorToken, hash []byte) (CollectorToken, error)
	GetCollectorToken(ctx context.Context, id string) (CollectorToken, error)
	CollectorTokenByHash(ctx context.Context, hash []byte) (CollectorToken, error)
	ListCollectorTokens(ctx context.Context, q TokenQuery) ([]CollectorToken, error)
	RevokeCollectorToken(ctx context.Context, id string, at time.Time) (CollectorToken, error)
	TouchCollectorToken(ctx context.Context, id string, at time.Time, interval time.Duration) error
}
