// Package sessions is signing in and staying signed in: Login exchanges an email and a password
// for a token pair, Refresh rotates the refresh token, Logout revokes a session, Me describes the
// caller.
//
// A session is a family of refresh tokens. A refresh token is 32 random bytes (base64url) given to
// the client once; only its SHA-256 is stored. Every refresh spends the presented token and issues
// a new one in the same family; presenting a spent token again means it was copied, so the whole
// family is revoked and the event audited as token_reuse (SECURITY). Access tokens are short-lived
// EdDSA JWTs (at most 15 minutes) that carry the family id as their session id ("sid").
//
// Brute force: failures are counted per account and per client IP with exponential backoff
// (package throttle behind the Throttle interface); a locked key answers ErrThrottled with the
// time to wait, without spending a password hash. Password hashes run in a few slots
// (package password) and a login never waits for one: with every slot busy it is refused at once
// (a *ThrottledError with Busy set), before any lookup, so a flood of logins costs little more
// than its refusals and cannot starve other requests. An unknown email still costs one argon2id
// verification, so response times do not reveal which accounts exist. Every failure is audited.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/password"
	"github.com/hashinsight/platform/services/auth/internal/reqinfo"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

// Errors; internal/grpcapi maps them to status codes. Their texts are safe to show.
var (
	// ErrInvalidCredentials: unknown email, wrong password or disabled user — deliberately not
	// told apart (Unauthenticated AUTH_001).
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrThrottled is matched by *ThrottledError (ResourceExhausted API_001 with RetryInfo).
	ErrThrottled = errors.New("too many failed login attempts")
	// ErrInvalidRefreshToken: unknown, revoked or malformed refresh token, or one of a disabled
	// user (Unauthenticated AUTH_001).
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrRefreshExpired: the refresh token has expired (Unauthenticated AUTH_003).
	ErrRefreshExpired = errors.New("refresh token expired: log in again")
	// ErrTokenReuse: an already used refresh token was presented; its session is revoked
	// (Unauthenticated AUTH_001).
	ErrTokenReuse = errors.New("refresh token already used: the session has been revoked")
	// ErrNoUser: the principal has no user account (GetMe of a user that no longer exists or was
	// disabled) (Unauthenticated AUTH_001).
	ErrNoUser = errors.New("the account of this credential no longer exists or is disabled")
	// ErrTokenNotFound is returned by Store lookups.
	ErrTokenNotFound = errors.New("refresh token not found")
	// ErrFamilyRevoked is returned by Store.InsertRefreshToken when the session was revoked, for
	// example by a concurrent reuse of one of its tokens.
	ErrFamilyRevoked = errors.New("session revoked")
)

// ThrottledError is a login refused because the account or the client IP is locked out, or
// because every password-hashing slot is busy (Busy).
type ThrottledError struct {
	// RetryAfter is how long until the lock ends (for Busy: a short back-off).
	RetryAfter time.Duration
	// Busy is set when the login was refused because no hashing slot was free: the password was
	// not checked and the attempt does not count as a failure of the account or the IP.
	Busy bool
}

// busyRetryAfter is the Retry-After of a login refused for want of a hashing slot.
const busyRetryAfter = time.Second

func (e *ThrottledError) Error() string {
	if e.Busy {
		return "too many logins in progress"
	}
	return ErrThrottled.Error()
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// RefreshToken is a stored refresh token (its hash).
type RefreshToken struct {
	ID        string
	Hash      []byte
	FamilyID  string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is set once the token has been exchanged; RevokedAt once its family was revoked.
	UsedAt    time.Time
	RevokedAt time.Time
}

// Store persists refresh tokens (implemented by internal/postgres).
type Store interface {
	// InsertRefreshToken adds t, or returns ErrFamilyRevoked when any token of t's family is revoked.
	// It must be atomic with RevokeFamily and RevokeUserTokens: a token is never added to a family
	// after (or while) the family is revoked.
	InsertRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshTokenByHash returns the token with that hash, or ErrTokenNotFound.
	RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// MarkRefreshTokenUsed sets used_at if the token is neither used nor revoked, and reports
	// whether it did (false: someone else spent it first).
	MarkRefreshTokenUsed(ctx context.Context, id string, at time.Time) (bool, error)
	// RevokeFamily revokes every unrevoked token of the family and returns how many.
	RevokeFamily(ctx context.Context, familyID string, at time.Time) (int64, error)
	// RevokeUserTokens revokes every unrevoked token of the user and returns how many.
	RevokeUserTokens(ctx context.Context, userID string, at time.Time) (int64, error)
	// DeleteRefreshTokensExpiredBefore deletes tokens that expired before t and returns how many.
	DeleteRefreshTokensExpiredBefore(ctx context.Context, t time.Time) (int64, error)
}

// Throttle counts failures of a key and locks it out (package throttle).
type Throttle interface {
	// Check returns how long key stays locked (0: not locked).
	Check(ctx context.Context, key string) (time.Duration, error)
	// Fail records a failure and returns the lock it starts (0: none).
	Fail(ctx context.Context, key string) (time.Duration, error)
	// Reset forgets key's failures.
	Reset(ctx context.Context, key string) error
}

// Issuer signs access tokens.
type Issuer interface {
	// IssueAccessToken signs an access token for p (a user principal with its SessionID set) and
	// returns it with its expiry.
	IssueAccessToken(ctx context.Context, p *authn.Principal) (string, time.Time, error)
}

// Users is what sessions needs from the user store.
type Users interface {
	Get(ctx context.Context, id string) (users.User, error)
	GetByEmail(ctx context.Context, email string) (users.User, error)
	RecordLogin(ctx context.Context, id string, at time.Time) error
}

// TokenPair is the result of Login and Refresh.
type TokenPair struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// Config configures a Service.
type Config struct {
	// RefreshTTL is the lifetime of a refresh token (default 30 days). Each refresh starts a new
	// one, so a session lives as long as it is used at least once per RefreshTTL.
	RefreshTTL time.Duration
	// AccountThrottle and IPThrottle lock out accounts and client IPs.
	AccountThrottle Throttle
	IPThrottle      Throttle
}

// Service is the session use cases.
type Service struct {
	users   Users
	store   Store
	hasher  *password.Hasher
	issuer  Issuer
	audit   users.Auditor
	account Throttle
	ip      Throttle
	ttl     time.Duration
	now     func() time.Time
}

// DefaultRefreshTTL is the default refresh-token lifetime.
const DefaultRefreshTTL = 30 * 24 * time.Hour

// NewService returns the session service.
func NewService(u Users, store Store, hasher *password.Hasher, issuer Issuer, auditor users.Auditor, cfg Config) *Service {
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	return &Service{
		users: u, store: store, hasher: hasher, issuer: issuer, audit: auditor,
		account: cfg.AccountThrottle, ip: cfg.IPThrottle, ttl: cfg.RefreshTTL, now: time.Now,
	}
}

// Login checks email and password and starts a session.
func (s *Service) Login(ctx context.Context, email, pw string) (TokenPair, users.User, error) {
	norm, err := users.NormalizeEmail(email)
	if err != nil {
		return TokenPair{}, users.User{}, err
	}
	if s.hasher.Saturated() {
		// Cheapest refusal first: no hashing slot is free, so the password could not be checked
		// anyway. Known and unknown accounts are refused alike, and without a lookup.
		return TokenPair{}, users.User{}, s.busy(ctx, norm)
	}
	ip := reqinfo.ClientIP(ctx)
	accountKey, ipKey := "account:"+norm, "ip:"+ip
	if wait := s.locked(ctx, accountKey, ipKey, ip != ""); wait > 0 {
		who := users.User{Email: norm}
		if u, err := s.users.GetByEmail(ctx, norm); err == nil { // so the entry names the account
			who = u
		}
		s.loginFailed(ctx, who, "throttled", map[string]any{"retry_after_ms": wait.Milliseconds()})
		return TokenPair{}, users.User{}, &ThrottledError{RetryAfter: wait}
	}

	u, err := s.users.GetByEmail(ctx, norm)
	switch {
	case errors.Is(err, users.ErrNotFound):
		if err := s.hasher.VerifyDummy(ctx, pw); errors.Is(err, password.ErrBusy) {
			return TokenPair{}, users.User{}, s.busy(ctx, norm)
		} else if err != nil {
			return TokenPair{}, users.User{}, fmt.Errorf("login: %w", err)
		}
		s.fail(ctx, accountKey, ipKey, ip != "")
		s.loginFailed(ctx, users.User{Email: norm}, "unknown_email", nil)
		return TokenPair{}, users.User{}, ErrInvalidCredentials
	case err != nil:
		return TokenPair{}, users.User{}, fmt.Errorf("login: %w", err)
	}
	ok, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if errors.Is(err, password.ErrBusy) {
		return TokenPair{}, users.User{}, s.busy(ctx, norm)
	}
	if err != nil {
		return TokenPair{}, users.User{}, fmt.Errorf("login: verify password: %w", err)
	}
	if !ok {
		s.fail(ctx, accountKey, ipKey, ip != "")
		s.loginFailed(ctx, u, "bad_password", nil)
		return TokenPair{}, users.User{}, ErrInvalidCredentials
	}
	if u.Disabled() {
		s.fail(ctx, accountKey, ipKey, ip != "")
		s.loginFailed(ctx, u, "user_disabled", nil)
		return TokenPair{}, users.User{}, ErrInvalidCredentials
	}

	if s.account != nil {
		_ = s.account.Reset(ctx, accountKey) // a stale counter only delays this account's next lock
	}
	pair, err := s.issue(ctx, u, uuid.NewString())
	if err != nil {
		return TokenPair{}, users.User{}, fmt.Errorf("login: %w", err)
	}
	now := s.now()
	if err := s.users.RecordLogin(ctx, u.ID, now); err == nil {
		u.LastLoginAt = now
	}
	s.record(ctx, audit.Event{
		Level: audit.LevelInfo, Category: audit.CategoryAuthentication, Action: audit.ActionLogin,
		UserID: u.ID, UserEmail: u.Email, UserRole: u.Role, Status: audit.StatusSuccess,
		Details: map[string]any{"login_method": "password"},
	})
	return pair, u, nil
}

// Refresh spends a refresh token and returns a new pair in the same session. The new access
// token carries the user's current role and scope.
func (s *Service) Refresh(ctx context.Context, raw string) (TokenPair, error) {
	hash, ok := hashRefreshToken(raw)
	if !ok {
		return TokenPair{}, ErrInvalidRefreshToken
	}
	t, err := s.store.RefreshTokenByHash(ctx, hash)
	switch {
	case errors.Is(err, ErrTokenNotFound):
		return TokenPair{}, ErrInvalidRefreshToken
	case err != nil:
		return TokenPair{}, fmt.Errorf("refresh: %w", err)
	}
	now := s.now()
	switch {
	case !t.RevokedAt.IsZero():
		return TokenPair{}, ErrInvalidRefreshToken
	case !t.UsedAt.IsZero():
		return TokenPair{}, s.reuse(ctx, t)
	case !now.Before(t.ExpiresAt):
		return TokenPair{}, ErrRefreshExpired
	}
	u, err := s.users.Get(ctx, t.UserID)
	if errors.Is(err, users.ErrNotFound) || (err == nil && u.Disabled()) {
		if _, err := s.store.RevokeFamily(ctx, t.FamilyID, now); err != nil {
			return TokenPair{}, fmt.Errorf("refresh: revoke family: %w", err)
		}
		return TokenPair{}, ErrInvalidRefreshToken
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("refresh: %w", err)
	}
	spent, err := s.store.MarkRefreshTokenUsed(ctx, t.ID, now)
	if err != nil {
		return TokenPair{}, fmt.Errorf("refresh: %w", err)
	}
	if !spent { // a concurrent refresh with the same token won: one of the two is a copy
		return TokenPair{}, s.reuse(ctx, t)
	}
	pair, err := s.issue(ctx, u, t.FamilyID)
	if errors.Is(err, ErrFamilyRevoked) { // a copy of this token was replayed meanwhile
		return TokenPair{}, ErrInvalidRefreshToken
	}
	if err != nil {
		return TokenPair{}, fmt.Errorf("refresh: %w", err)
	}
	return pair, nil
}

// reuse revokes the family of a token presented after it was spent.
func (s *Service) reuse(ctx context.Context, t RefreshToken) error {
	n, err := s.store.RevokeFamily(ctx, t.FamilyID, s.now())
	if err != nil {
		return fmt.Errorf("refresh: revoke family after reuse: %w", err)
	}
	e := audit.Event{
		Level: audit.LevelSecurity, Category: audit.CategoryAuthentication, Action: audit.ActionTokenReuse,
		UserID: t.UserID, Status: audit.StatusFailure,
		Details: map[string]any{"session_id": t.FamilyID, "revoked_tokens": n},
	}
	if u, err := s.users.Get(ctx, t.UserID); err == nil {
		e.UserEmail, e.UserRole = u.Email, u.Role
	}
	s.record(ctx, e)
	return ErrTokenReuse
}

// LogoutInput is the input of Logout.
type LogoutInput struct {
	// RefreshToken, when set, names the session to end.
	RefreshToken string
	// AllSessions ends every session of the calling user.
	AllSessions bool
}

// Logout ends the session named by the refresh token, or else the caller's current session (the
// access token's sid), or every session of the caller.
func (s *Service) Logout(ctx context.Context, actor *authn.Principal, in LogoutInput) error {
	now := s.now()
	details := map[string]any{}
	userID := ""
	if actor != nil && (actor.Kind == authn.KindUser || actor.Kind == authn.KindAPIKey) {
		userID = actor.Subject
	}
	switch {
	case in.AllSessions:
		if userID == "" {
			return &users.FieldError{Field: "all_sessions", Reason: "needs a user credential"}
		}
		n, err := s.store.RevokeUserTokens(ctx, userID, now)
		if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		details["all_sessions"], details["revoked_tokens"] = true, n
	case in.RefreshToken != "":
		hash, ok := hashRefreshToken(in.RefreshToken)
		if !ok {
			return ErrInvalidRefreshToken
		}
		t, err := s.store.RefreshTokenByHash(ctx, hash)
		switch {
		case errors.Is(err, ErrTokenNotFound):
			return ErrInvalidRefreshToken
		case err != nil:
			return fmt.Errorf("logout: %w", err)
		}
		// Someone else's session is not the caller's to end unless it administers users.
		if t.UserID != userID && !actor.Has(authn.PermUsersAdmin) {
			return ErrInvalidRefreshToken
		}
		n, err := s.store.RevokeFamily(ctx, t.FamilyID, now)
		if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		details["session_id"], details["revoked_tokens"] = t.FamilyID, n
		if t.UserID != userID {
			details["target_user_id"] = t.UserID
		}
	case actor != nil && actor.SessionID != "":
		n, err := s.store.RevokeFamily(ctx, actor.SessionID, now)
		if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		details["session_id"], details["revoked_tokens"] = actor.SessionID, n
	default:
		return &users.FieldError{Field: "refresh_token", Reason: "is required when the credential carries no session"}
	}
	e := audit.Event{
		Level: audit.LevelInfo, Category: audit.CategoryAuthentication, Action: audit.ActionLogout,
		Status: audit.StatusSuccess, Details: details,
	}
	if actor != nil {
		e.UserID, e.UserEmail, e.UserRole = actor.Subject, actor.Email, actor.Role
	}
	s.record(ctx, e)
	return nil
}

// Me returns the caller and, for users and API keys, its user record. A user that was disabled or
// deleted since its credential was issued gets ErrNoUser.
func (s *Service) Me(ctx context.Context, actor *authn.Principal) (*authn.Principal, *users.User, error) {
	if actor == nil {
		return nil, nil, ErrNoUser
	}
	if actor.Kind != authn.KindUser && actor.Kind != authn.KindAPIKey {
		return actor, nil, nil
	}
	if users.ValidateID("sub", actor.Subject) != nil {
		return nil, nil, ErrNoUser
	}
	u, err := s.users.Get(ctx, actor.Subject)
	switch {
	case errors.Is(err, users.ErrNotFound):
		return nil, nil, ErrNoUser
	case err != nil:
		return nil, nil, fmt.Errorf("me: %w", err)
	case u.Disabled():
		return nil, nil, ErrNoUser
	}
	return actor, &u, nil
}

// purgeGrace is how long an expired refresh token is kept: presenting it answers "expired"
// rather than "invalid" for a day, then it is forgotten.
const purgeGrace = 24 * time.Hour

// Purge deletes refresh tokens that expired more than a day ago and returns how many.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	n, err := s.store.DeleteRefreshTokensExpiredBefore(ctx, s.now().Add(-purgeGrace))
	if err != nil {
		return 0, fmt.Errorf("purge refresh tokens: %w", err)
	}
	return n, nil
}

// RunPurge calls Purge every interval until ctx ends, logging failures through logf.
func (s *Service) RunPurge(ctx context.Context, interval time.Duration, logf func(msg string, args ...any)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.Purge(ctx); err != nil && ctx.Err() == nil {
			logf("refresh token purge failed", "error", err)
		} else if n > 0 {
			logf("expired refresh tokens purged", "count", n)
		}
	}
}

// issue stores a new refresh token of family and signs an access token for u.
func (s *Service) issue(ctx context.Context, u users.User, family string) (TokenPair, error) {
	raw, hash, err := newRefreshToken()
	if err != nil {
		return TokenPair{}, err
	}
	now := s.now()
	rt := RefreshToken{ID: uuid.NewString(), Hash: hash, FamilyID: family, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.ttl)}
	all, cust := u.Scope()
	p := &authn.Principal{
		Kind: authn.KindUser, Subject: u.ID, Email: u.Email, Role: u.Role,
		Permissions: u.Permissions(), AllCustomers: all, CustomerIDs: cust, SessionID: family,
	}
	access, exp, err := s.issuer.IssueAccessToken(ctx, p)
	if err != nil {
		return TokenPair{}, fmt.Errorf("issue access token: %w", err)
	}
	if err := s.store.InsertRefreshToken(ctx, rt); err != nil {
		return TokenPair{}, fmt.Errorf("store refresh token: %w", err)
	}
	return TokenPair{AccessToken: access, AccessExpiresAt: exp, RefreshToken: raw, RefreshExpiresAt: rt.ExpiresAt}, nil
}

// locked returns how long the account or the IP stays locked. A throttle that cannot answer
// does not lock anyone out (the counters live in Redis or memory, never the only defence: the
// hash semaphore still bounds the work).
func (s *Service) locked(ctx context.Context, accountKey, ipKey string, withIP bool) time.Duration {
	var wait time.Duration
	if s.account != nil {
		if d, err := s.account.Check(ctx, accountKey); err == nil {
			wait = max(wait, d)
		}
	}
	if withIP && s.ip != nil {
		if d, err := s.ip.Check(ctx, ipKey); err == nil {
			wait = max(wait, d)
		}
	}
	return wait
}

// busy audits a login refused because no hashing slot was free and returns its error. The entry
// names the account by the email given (no lookup: this path must stay cheap under a flood).
func (s *Service) busy(ctx context.Context, email string) error {
	s.loginFailed(ctx, users.User{Email: email}, "busy", map[string]any{"retry_after_ms": busyRetryAfter.Milliseconds()})
	return &ThrottledError{RetryAfter: busyRetryAfter, Busy: true}
}

func (s *Service) fail(ctx context.Context, accountKey, ipKey string, withIP bool) {
	if s.account != nil {
		_, _ = s.account.Fail(ctx, accountKey)
	}
	if withIP && s.ip != nil {
		_, _ = s.ip.Fail(ctx, ipKey)
	}
}

func (s *Service) loginFailed(ctx context.Context, u users.User, reason string, extra map[string]any) {
	details := map[string]any{"login_method": "password", "reason": reason}
	for k, v := range extra {
		details[k] = v
	}
	s.record(ctx, audit.Event{
		Level: audit.LevelSecurity, Category: audit.CategoryAuthentication, Action: audit.ActionLoginFailed,
		UserID: u.ID, UserEmail: u.Email, UserRole: u.Role, Status: audit.StatusFailure, Details: details,
	})
}

func (s *Service) record(ctx context.Context, e audit.Event) {
	if s.audit == nil {
		return
	}
	e.IPAddress = reqinfo.ClientIP(ctx)
	s.audit.Record(ctx, e)
}

// refreshTokenBytes is the entropy of a refresh token.
const refreshTokenBytes = 32

func newRefreshToken() (raw string, hash []byte, err error) {
	b := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("refresh token: %w", err)
	}
	raw = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(raw))
	return raw, sum[:], nil
}

// hashRefreshToken returns the stored hash of raw, or false when raw cannot be a refresh token
// (so garbage is rejected without a lookup).
func hashRefreshToken(raw string) ([]byte, bool) {
	if len(raw) != base64.RawURLEncoding.EncodedLen(refreshTokenBytes) {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(raw); err != nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(raw))
	return sum[:], true
}
