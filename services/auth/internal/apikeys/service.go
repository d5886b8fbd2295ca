package apikeys

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/ident"
)

// DefaultEnv is the credential environment when Options.Env is empty (HASHINSIGHT_ENV default).
const DefaultEnv = "dev"

// Options configures [New].
type Options struct {
	// Store persists keys and tokens (apikeyspg.New(pool)). Required.
	Store Store
	// Hasher computes the keyed hash (apikey.NewHasher(SESSION_SECRET)). Required.
	Hasher *apikey.Hasher
	// Env is the environment new credentials are issued for and presented ones must carry
	// (HASHINSIGHT_ENV: [a-z]{2,8}); empty means DefaultEnv.
	Env string
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// Logger receives failures to update last_used_at; nil discards them.
	Logger *slog.Logger
}

// Service implements API key and collector token management. It is safe for concurrent use.
type Service struct {
	store  Store
	hasher *apikey.Hasher
	env    string
	now    func() time.Time
	logger *slog.Logger
}

// New returns a Service.
func New(opts Options) (*Service, error) {
	if opts.Store == nil || opts.Hasher == nil {
		return nil, errors.New("apikeys: Options.Store and Options.Hasher are required")
	}
	s := &Service{store: opts.Store, hasher: opts.Hasher, env: opts.Env, now: opts.Now, logger: opts.Logger}
	if s.env == "" {
		s.env = DefaultEnv
	}
	// Generating once validates the environment name now rather than on the first Create.
	if _, _, err := apikey.Generate(s.env, apikey.KindKey); err != nil {
		return nil, fmt.Errorf("apikeys: %w", err)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Create issues an API key owned by creator with the given scopes and returns its plaintext
// (show it once, never log it) and its description. Scopes must be a non-empty subset of the
// creator's permissions (ErrScopeExceeds otherwise; unknown permissions are ErrInvalidArgument).
// ttl 0 means DefaultTTL; at most MaxTTL.
func (s *Service) Create(ctx context.Context, creator Actor, name string, scopes []string, ttl time.Duration) (string, Key, error) {
	return s.CreateFor(ctx, creator, creator, name, scopes, ttl)
}

// CreateFor issues an API key owned by owner (its UserID and current Permissions) on behalf of
// creator. Creating a key for someone else requires users:admin (ErrPermissionDenied); the
// scopes must be held by both the creator and the owner (ErrScopeExceeds).
func (s *Service) CreateFor(ctx context.Context, creator, owner Actor, name string, scopes []string, ttl time.Duration) (string, Key, error) {
	name, err := checkName(name)
	if err != nil {
		return "", Key{}, err
	}
	if owner.UserID != creator.UserID && !creator.IsAdmin() {
		return "", Key{}, fmt.Errorf("%w: creating a key for another user requires %s", ErrPermissionDenied, authn.PermUsersAdmin)
	}
	if owner.UserID == "" {
		return "", Key{}, fmt.Errorf("%w: the key needs an owner", ErrInvalidArgument)
	}
	scopes, err = checkScopes(scopes)
	if err != nil {
		return "", Key{}, err
	}
	if missing := authn.Missing(scopes, creator.Permissions); len(missing) > 0 {
		return "", Key{}, fmt.Errorf("%w: creator lacks %s", ErrScopeExceeds, strings.Join(missing, ", "))
	}
	if missing := authn.Missing(scopes, owner.Permissions); len(missing) > 0 {
		return "", Key{}, fmt.Errorf("%w: owner lacks %s", ErrScopeExceeds, strings.Join(missing, ", "))
	}
	switch {
	case ttl < 0 || ttl > MaxTTL:
		return "", Key{}, fmt.Errorf("%w: lifetime must be between 0 (default %d days) and %d days",
			ErrInvalidArgument, DefaultTTL/(24*time.Hour), MaxTTL/(24*time.Hour))
	case ttl == 0:
		ttl = DefaultTTL
	}
	plain, parsed, err := apikey.Generate(s.env, apikey.KindKey)
	if err != nil {
		return "", Key{}, fmt.Errorf("apikeys: create: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	k := Key{
		UserID:        owner.UserID,
		Name:          name,
		DisplayPrefix: displayPrefix(parsed),
		Scopes:        scopes,
		CreatedAt:     now,
		ExpiresAt:     now.Add(ttl),
	}
	k, err = s.store.CreateKey(ctx, k, s.hasher.Hash(plain))
	if err != nil {
		return "", Key{}, fmt.Errorf("apikeys: create: %w", err)
	}
	return plain, k, nil
}

// Get returns key id if actor may manage it (ErrNotFound otherwise).
func (s *Service) Get(ctx context.Context, id string, actor Actor) (Key, error) {
	k, err := s.store.GetKey(ctx, id)
	if err != nil {
		return Key{}, fmt.Errorf("apikeys: get: %w", err)
	}
	if !actor.canManage(k.UserID) {
		return Key{}, fmt.Errorf("apikeys: get: %w", ErrNotFound)
	}
	return k, nil
}

// ListFilter selects keys for List.
type ListFilter struct {
	// UserID lists one owner's keys; empty lists the actor's own keys, or every key for an admin.
	// Another user's id requires users:admin (ErrPermissionDenied).
	UserID string
	// IncludeInactive includes revoked and expired keys.
	IncludeInactive bool
	// PageSize: 0 means DefaultPageSize; capped at MaxPageSize.
	PageSize int
	// PageToken continues a previous listing.
	PageToken string
}

// List returns keys, newest first, without secrets, and the token of the next page ("" at the
// end).
func (s *Service) List(ctx context.Context, actor Actor, f ListFilter) ([]Key, string, error) {
	q := KeyQuery{UserID: f.UserID}
	switch {
	case q.UserID == "" && !actor.IsAdmin():
		q.UserID = actor.UserID
		if q.UserID == "" {
			return nil, "", fmt.Errorf("apikeys: list: %w", ErrPermissionDenied)
		}
	case q.UserID != "" && !actor.canManage(q.UserID):
		return nil, "", fmt.Errorf("%w: listing another user's keys requires %s", ErrPermissionDenied, authn.PermUsersAdmin)
	}
	if !f.IncludeInactive {
		q.ActiveAt = s.now()
	}
	size, after, err := pageArgs(f.PageSize, f.PageToken)
	if err != nil {
		return nil, "", err
	}
	q.After, q.Limit = after, size+1
	keys, err := s.store.ListKeys(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("apikeys: list: %w", err)
	}
	keys, next := trimPage(keys, size, func(k Key) Cursor { return Cursor{CreatedAt: k.CreatedAt, ID: k.ID} })
	return keys, next, nil
}

// Revoke revokes key id at once (callers' caches may honour it for up to their TTL). The actor
// must own the key or hold users:admin (ErrNotFound otherwise). Revoking a revoked key returns
// it unchanged.
func (s *Service) Revoke(ctx context.Context, id string, actor Actor) (Key, error) {
	if _, err := s.Get(ctx, id, actor); err != nil {
		return Key{}, fmt.Errorf("apikeys: revoke: %w", err)
	}
	k, err := s.store.RevokeKey(ctx, id, s.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return Key{}, fmt.Errorf("apikeys: revoke: %w", err)
	}
	return k, nil
}

// RevokeUserKeys revokes every key owned by userID (e.g. when the user is disabled) and returns
// how many were revoked. It does not check an actor: the caller has authorised the operation.
func (s *Service) RevokeUserKeys(ctx context.Context, userID string) (int64, error) {
	n, err := s.store.RevokeUserKeys(ctx, userID, s.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return 0, fmt.Errorf("apikeys: revoke keys of user: %w", err)
	}
	return n, nil
}

// Rotate replaces key id with a new key of the same owner, name and scopes (and the same
// lifetime, counted from now). The old key stays valid until min(its expiry, now+overlap), then
// expires; it records the successor (RotatedToID, state StateRotated). overlap 0 ends the old
// key now; pass DefaultOverlap for the default 7 days; at most MaxOverlap. The actor must own
// the key or hold users:admin (ErrNotFound otherwise); a revoked, expired or already rotated key
// fails with ErrInactive. It returns the new key's plaintext, the new key and the updated old key.
func (s *Service) Rotate(ctx context.Context, id string, actor Actor, overlap time.Duration) (string, Key, Key, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return "", Key{}, Key{}, fmt.Errorf("%w: overlap must be between 0 and %d days", ErrInvalidArgument, MaxOverlap/(24*time.Hour))
	}
	if _, err := s.Get(ctx, id, actor); err != nil {
		return "", Key{}, Key{}, fmt.Errorf("apikeys: rotate: %w", err)
	}
	var plain string
	newKey, oldKey, err := s.store.RotateKey(ctx, id, func(old Key) (Rotation, error) {
		now := s.now().UTC().Truncate(time.Microsecond)
		switch old.State(now) {
		case StateRevoked, StateExpired:
			return Rotation{}, fmt.Errorf("%w: it is %s", ErrInactive, old.State(now))
		case StateRotated:
			return Rotation{}, fmt.Errorf("%w: it was already rotated", ErrInactive)
		}
		ttl := DefaultTTL
		if !old.ExpiresAt.IsZero() {
			ttl = min(max(old.ExpiresAt.Sub(old.CreatedAt), time.Minute), MaxTTL)
		}
		p, parsed, err := apikey.Generate(s.env, apikey.KindKey)
		if err != nil {
			return Rotation{}, err
		}
		plain = p
		oldExpiry := now.Add(overlap)
		if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(oldExpiry) {
			oldExpiry = old.ExpiresAt
		}
		return Rotation{
			New: Key{
				UserID:        old.UserID,
				Name:          old.Name,
				DisplayPrefix: displayPrefix(parsed),
				Scopes:        old.Scopes,
				CreatedAt:     now,
				ExpiresAt:     now.Add(ttl),
				RotatedFromID: old.ID,
			},
			NewHash:      s.hasher.Hash(p),
			OldExpiresAt: oldExpiry,
		}, nil
	})
	if err != nil {
		return "", Key{}, Key{}, fmt.Errorf("apikeys: rotate: %w", err)
	}
	return plain, newKey, oldKey, nil
}

// Authenticate resolves a presented API key or collector token. The value is parsed first: a
// malformed or checksum-failing credential, or one issued for another environment, fails with
// ErrInvalidKey without any store access. Then it is looked up by its keyed hash (unknown:
// ErrInvalidKey) and must be neither revoked (ErrRevoked) nor expired (ErrExpired). last_used_at
// is updated at most once per TouchInterval; a failure to update it is logged, not returned.
//
// It does not look at the owner: the caller rejects disabled owners and intersects Scopes with
// the owner's current permissions.
func (s *Service) Authenticate(ctx context.Context, plaintext string) (Resolved, error) {
	parsed, err := apikey.Parse(plaintext)
	if err != nil {
		// The parse error never contains the input.
		return Resolved{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if parsed.Env != s.env {
		return Resolved{}, fmt.Errorf("%w: issued for another environment", ErrInvalidKey)
	}
	hash := s.hasher.Hash(plaintext)
	now := s.now()
	switch parsed.Kind {
	case apikey.KindKey:
		k, err := s.store.KeyByHash(ctx, hash)
		if err != nil {
			return Resolved{}, lookupError(err)
		}
		switch k.State(now) {
		case StateRevoked:
			return Resolved{}, ErrRevoked
		case StateExpired:
			return Resolved{}, ErrExpired
		}
		if due(k.LastUsedAt, now) {
			if err := s.store.TouchKey(ctx, k.ID, now.UTC().Truncate(time.Microsecond), TouchInterval); err != nil {
				s.logger.WarnContext(ctx, "apikeys: update last_used_at", slog.String("key_id", k.ID), slog.Any("error", err))
			}
		}
		return Resolved{Kind: KindAPIKey, KeyID: k.ID, UserID: k.UserID, Scopes: slices.Clone(k.Scopes), ExpiresAt: k.ExpiresAt}, nil
	case apikey.KindCollector:
		t, err := s.store.CollectorTokenByHash(ctx, hash)
		if err != nil {
			return Resolved{}, lookupError(err)
		}
		switch t.State(now) {
		case StateRevoked:
			return Resolved{}, ErrRevoked
		case StateExpired:
			return Resolved{}, ErrExpired
		}
		if due(t.LastUsedAt, now) {
			if err := s.store.TouchCollectorToken(ctx, t.ID, now.UTC().Truncate(time.Microsecond), TouchInterval); err != nil {
				s.logger.WarnContext(ctx, "apikeys: update last_used_at", slog.String("token_id", t.ID), slog.Any("error", err))
			}
		}
		return Resolved{
			Kind: KindCollector, TokenID: t.ID, SiteID: t.SiteID, UserID: t.CreatedBy,
			Scopes: []string{authn.PermCollectorWrite}, ExpiresAt: t.ExpiresAt,
		}, nil
	}
	return Resolved{}, fmt.Errorf("%w: unknown kind", ErrInvalidKey)
}

// CreateCollectorToken issues a token bound to siteID and returns its plaintext (show it once)
// and its description. The creator must hold collector:write, the token's only permission
// (ErrScopeExceeds). ttl 0 means the token does not expire; at most MaxCollectorTTL.
func (s *Service) CreateCollectorToken(ctx context.Context, creator Actor, siteID, name string, ttl time.Duration) (string, CollectorToken, error) {
	name, err := checkName(name)
	if err != nil {
		return "", CollectorToken{}, err
	}
	siteID = strings.TrimSpace(siteID)
	if siteID == "" || len(siteID) > maxSiteIDLen || !utf8.ValidString(siteID) || strings.ContainsRune(siteID, 0) {
		return "", CollectorToken{}, fmt.Errorf("%w: site id must be 1-%d bytes", ErrInvalidArgument, maxSiteIDLen)
	}
	if creator.UserID == "" {
		return "", CollectorToken{}, fmt.Errorf("%w: the token needs a creator", ErrInvalidArgument)
	}
	if !slices.Contains(creator.Permissions, authn.PermCollectorWrite) {
		return "", CollectorToken{}, fmt.Errorf("%w: creator lacks %s", ErrScopeExceeds, authn.PermCollectorWrite)
	}
	if ttl < 0 || ttl > MaxCollectorTTL {
		return "", CollectorToken{}, fmt.Errorf("%w: lifetime must be between 0 (no expiry) and %d days",
			ErrInvalidArgument, MaxCollectorTTL/(24*time.Hour))
	}
	plain, parsed, err := apikey.Generate(s.env, apikey.KindCollector)
	if err != nil {
		return "", CollectorToken{}, fmt.Errorf("apikeys: create collector token: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t := CollectorToken{
		SiteID: siteID, Name: name, DisplayPrefix: displayPrefix(parsed), CreatedBy: creator.UserID, CreatedAt: now,
	}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	t, err = s.store.CreateCollectorToken(ctx, t, s.hasher.Hash(plain))
	if err != nil {
		return "", CollectorToken{}, fmt.Errorf("apikeys: create collector token: %w", err)
	}
	return plain, t, nil
}

// TokenFilter selects collector tokens for ListCollectorTokens.
type TokenFilter struct {
	// SiteID lists one site's tokens; empty lists every site.
	SiteID string
	// IncludeInactive includes revoked and expired tokens.
	IncludeInactive bool
	// PageSize: 0 means DefaultPageSize; capped at MaxPageSize.
	PageSize  int
	PageToken string
}

// ListCollectorTokens returns collector tokens, newest first, without secrets, and the next page
// token. Admins see every token, others the tokens they created.
func (s *Service) ListCollectorTokens(ctx context.Context, actor Actor, f TokenFilter) ([]CollectorToken, string, error) {
	q := TokenQuery{SiteID: f.SiteID}
	if !actor.IsAdmin() {
		if actor.UserID == "" {
			return nil, "", fmt.Errorf("apikeys: list collector tokens: %w", ErrPermissionDenied)
		}
		q.CreatedBy = actor.UserID
	}
	if !f.IncludeInactive {
		q.ActiveAt = s.now()
	}
	size, after, err := pageArgs(f.PageSize, f.PageToken)
	if err != nil {
		return nil, "", err
	}
	q.After, q.Limit = after, size+1
	tokens, err := s.store.ListCollectorTokens(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("apikeys: list collector tokens: %w", err)
	}
	tokens, next := trimPage(tokens, size, func(t CollectorToken) Cursor { return Cursor{CreatedAt: t.CreatedAt, ID: t.ID} })
	return tokens, next, nil
}

// trimPage drops the look-ahead row a store query fetched (limit size+1) and returns the token of
// the next page, empty on the last page.
func trimPage[T any](items []T, size int, cursor func(T) Cursor) ([]T, string) {
	if len(items) <= size {
		return items, ""
	}
	items = items[:size]
	return items, encodePageToken(cursor(items[size-1]))
}

// RevokeCollectorToken revokes token id at once. The actor must have created it or hold
// users:admin (ErrNotFound otherwise). Revoking a revoked token returns it unchanged.
func (s *Service) RevokeCollectorToken(ctx context.Context, id string, actor Actor) (CollectorToken, error) {
	t, err := s.store.GetCollectorToken(ctx, id)
	if err != nil {
		return CollectorToken{}, fmt.Errorf("apikeys: revoke collector token: %w", err)
	}
	if !actor.canManage(t.CreatedBy) {
		return CollectorToken{}, fmt.Errorf("apikeys: revoke collector token: %w", ErrNotFound)
	}
	t, err = s.store.RevokeCollectorToken(ctx, id, s.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return CollectorToken{}, fmt.Errorf("apikeys: revoke collector token: %w", err)
	}
	return t, nil
}

// due reports whether last_used_at (last) is stale enough to be written again at now.
func due(last, now time.Time) bool { return last.IsZero() || now.Sub(last) >= TouchInterval }

// lookupError maps a failed hash lookup: an unknown credential is ErrInvalidKey.
func lookupError(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidKey
	}
	return fmt.Errorf("apikeys: authenticate: %w", err)
}

// displayPrefix is the public part shown in listings: hsi_<env>_<kind>_<first 12 random chars>.
func displayPrefix(k apikey.Key) string {
	return apikey.Scheme + k.Env + "_" + k.Kind + "_" + k.Prefix()
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > maxNameLen || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: name must be 1-%d characters", ErrInvalidArgument, maxNameLen)
	}
	return name, nil
}

// checkScopes validates scopes against the permission vocabulary and returns them sorted and
// de-duplicated.
func checkScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: at least one scope is required", ErrInvalidArgument)
	}
	if len(scopes) > maxScopes {
		return nil, fmt.Errorf("%w: at most %d scopes", ErrInvalidArgument, maxScopes)
	}
	out := slices.Clone(scopes)
	for _, p := range out {
		if !authn.ValidPermission(p) {
			return nil, fmt.Errorf("%w: unknown permission %q", ErrInvalidArgument, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func pageArgs(size int, token string) (int, *Cursor, error) {
	switch {
	case size < 0:
		return 0, nil, fmt.Errorf("%w: negative page size", ErrInvalidArgument)
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if token == "" {
		return size, nil, nil
	}
	c, err := decodePageToken(token)
	if err != nil {
		return 0, nil, err
	}
	return size, &c, nil
}

// pageTokenPrefix versions the page token format.
const pageTokenPrefix = "ak1:"

func encodePageToken(c Cursor) string {
	raw := pageTokenPrefix + strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + ":" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodePageToken(tok string) (Cursor, error) {
	bad := fmt.Errorf("%w: malformed page token", ErrInvalidArgument)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return Cursor{}, bad
	}
	rest, ok := strings.CutPrefix(string(b), pageTokenPrefix)
	if !ok {
		return Cursor{}, bad
	}
	micros, id, ok := strings.Cut(rest, ":")
	if !ok || !ident.IsUUID(id) {
		return Cursor{}, bad
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return Cursor{}, bad
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}

// ValidID reports whether id has the form of a key or token id (a UUID).
func ValidID(id string) bool { return ident.IsUUID(id) }
