package users

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/password"
	"github.com/hashinsight/platform/services/auth/internal/reqinfo"
)

// NewUser is a user to insert.
type NewUser struct {
	Email        string
	DisplayName  string
	PasswordHash string
	Role         string
	CustomerID   string
	CustomerIDs  []string
}

// Query selects users for List, in creation order.
type Query struct {
	// ID, when set, selects only that user.
	ID string
	// Role, when set, selects only users with that role.
	Role string
	// IncludeDisabled includes disabled users.
	IncludeDisabled bool
	// Text is a case-insensitive substring of the email or the display name.
	Text string
	// AfterCreated and AfterID continue after that user (keyset pagination).
	AfterCreated time.Time
	AfterID      string
	// Limit is the maximum number of users returned.
	Limit int
}

// Store persists users (implemented by internal/postgres).
type Store interface {
	// Create inserts u. A taken email fails with ErrEmailTaken.
	Create(ctx context.Context, u NewUser) (User, error)
	// CreateFirstOwner inserts u (an owner) only while no active owner exists, atomically across
	// replicas: ErrEmailTaken when the email is taken, else ErrBootstrapClosed when an active owner
	// exists.
	CreateFirstOwner(ctx context.Context, u NewUser) (User, error)
	// Get returns the user with id, or ErrNotFound.
	Get(ctx context.Context, id string) (User, error)
	// GetByEmail returns the user with the (normalised) email, or ErrNotFound.
	GetByEmail(ctx context.Context, email string) (User, error)
	// List returns the users matching q.
	List(ctx context.Context, q Query) ([]User, error)
	// Update loads the user with id for update, together with the number of active owners
	// (counted under a lock that serialises owner changes), and calls fn. When fn reports a
	// change, the user as fn left it is stored; when fn disabled the user, its refresh tokens are
	// revoked in the same transaction. ErrNotFound when there is no such user; fn's error is
	// returned as is.
	Update(ctx context.Context, id string, fn func(u *User, activeOwners int) (changed bool, err error)) (User, error)
	// RecordLogin sets the user's last login time.
	RecordLogin(ctx context.Context, id string, at time.Time) error
}

// Auditor records audit events. Implementations never fail the caller: an event that cannot be
// recorded is logged.
type Auditor interface {
	Record(ctx context.Context, e audit.Event)
}

// KeyRevoker revokes every API key of a user (package credentials).
type KeyRevoker interface {
	RevokeUserKeys(ctx context.Context, userID string) (int64, error)
}

// Config holds the collaborators of a Service.
type Config struct {
	Store  Store
	Hasher *password.Hasher
	// Audit records user_create, role_change and user_disable; nil records nothing.
	Audit Auditor
	// Keys, when set, has a disabled user's API keys revoked.
	Keys KeyRevoker
}

// Service is the user-management use cases.
type Service struct {
	store  Store
	hasher *password.Hasher
	audit  Auditor
	keys   KeyRevoker
	now    func() time.Time
}

// NewService returns the user service.
func NewService(cfg Config) *Service {
	return &Service{store: cfg.Store, hasher: cfg.Hasher, audit: cfg.Audit, keys: cfg.Keys, now: time.Now}
}

// Pagination defaults.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// CreateInput is the input of Create.
type CreateInput struct {
	Email       string
	Password    string
	DisplayName string
	Role        string
	CustomerID  string
}

// Create creates a user on behalf of actor.
func (s *Service) Create(ctx context.Context, actor *authn.Principal, in CreateInput) (User, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return User{}, err
	}
	if err := password.CheckPolicy(in.Password); err != nil {
		return User{}, invalid("password", err.Error())
	}
	if err := validateDisplayName(in.DisplayName); err != nil {
		return User{}, err
	}
	if err := validateRole(in.Role, in.CustomerID); err != nil {
		return User{}, err
	}
	if !actor.Has(authn.PermUsersAdmin) {
		return User{}, ErrRoleNotAssignable
	}
	bootstrap := false
	if in.Role == authn.RoleOwner {
		switch {
		case isOwner(actor):
		case actor.Kind == authn.KindOperator:
			bootstrap = true
		default:
			return User{}, ErrOwnerRequired
		}
	} else if err := checkAssign(actor, in.Role); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	nu := NewUser{Email: email, DisplayName: strings.TrimSpace(in.DisplayName), PasswordHash: hash, Role: in.Role, CustomerID: in.CustomerID}
	var u User
	if bootstrap {
		u, err = s.store.CreateFirstOwner(ctx, nu)
	} else {
		u, err = s.store.Create(ctx, nu)
	}
	if err != nil {
		if errors.Is(err, ErrEmailTaken) || errors.Is(err, ErrBootstrapClosed) {
			s.record(ctx, actor, audit.LevelWarning, audit.ActionUserCreate, audit.StatusFailure, map[string]any{
				"email": email, "role": in.Role, "reason": reasonOf(err),
			})
			return User{}, err
		}
		return User{}, fmt.Errorf("create user: %w", err)
	}
	details := map[string]any{"target_user_id": u.ID, "email": u.Email, "role": u.Role}
	if u.CustomerID != "" {
		details["customer_id"] = u.CustomerID
	}
	if bootstrap {
		details["bootstrap"] = true
	}
	s.record(ctx, actor, audit.LevelInfo, audit.ActionUserCreate, audit.StatusSuccess, details)
	return u, nil
}

// Get returns the user with id as actor may see it: without users:admin only its own user
// exists.
func (s *Service) Get(ctx context.Context, actor *authn.Principal, id string) (User, error) {
	if err := ValidateID("id", id); err != nil {
		return User{}, err
	}
	if !canSee(actor, id) {
		return User{}, ErrNotFound
	}
	u, err := s.store.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return User{}, err
		}
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// ListInput is the input of List.
type ListInput struct {
	PageSize        int
	PageToken       string
	Role            string
	IncludeDisabled bool
	Query           string
}

// List returns one page of users in creation order and the token of the next page ("" at the
// end). Without users:admin the page holds at most the actor's own user.
func (s *Service) List(ctx context.Context, actor *authn.Principal, in ListInput) ([]User, string, error) {
	size := in.PageSize
	switch {
	case size < 0 || size > MaxPageSize:
		return nil, "", invalid("page_size", fmt.Sprintf("must be between 0 and %d", MaxPageSize))
	case size == 0:
		size = DefaultPageSize
	}
	if in.Role != "" && !authn.ValidRole(in.Role) {
		return nil, "", invalid("role", "must be one of owner, admin, broker, client")
	}
	q := Query{Role: in.Role, IncludeDisabled: in.IncludeDisabled, Text: strings.TrimSpace(in.Query), Limit: size + 1}
	if in.PageToken != "" {
		created, id, err := decodePageToken(in.PageToken)
		if err != nil {
			return nil, "", err
		}
		q.AfterCreated, q.AfterID = created, id
	}
	if !actor.Has(authn.PermUsersAdmin) {
		if actor == nil || ValidateID("id", actor.Subject) != nil {
			return nil, "", nil
		}
		q.ID = actor.Subject
	}
	list, err := s.store.List(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	next := ""
	if len(list) > size {
		list = list[:size]
		last := list[len(list)-1]
		next = encodePageToken(last.CreatedAt, last.ID)
	}
	return list, next, nil
}

// ChangeRoleInput is the input of ChangeRole.
type ChangeRoleInput struct {
	ID         string
	Role       string
	CustomerID string
}

// ChangeRole gives the user a new role (and, for clients, a customer binding). Access tokens
// already issued keep their claims until they expire; the next refresh carries the new role.
func (s *Service) ChangeRole(ctx context.Context, actor *authn.Principal, in ChangeRoleInput) (User, error) {
	if err := ValidateID("id", in.ID); err != nil {
		return User{}, err
	}
	if err := validateRole(in.Role, in.CustomerID); err != nil {
		return User{}, err
	}
	if !canSee(actor, in.ID) {
		return User{}, ErrNotFound
	}
	var oldRole, oldCustomer string
	u, err := s.store.Update(ctx, in.ID, func(u *User, activeOwners int) (bool, error) {
		oldRole, oldCustomer = u.Role, u.CustomerID
		if u.Role == in.Role && u.CustomerID == in.CustomerID {
			return false, nil
		}
		if (u.Role == authn.RoleOwner || in.Role == authn.RoleOwner) && !isOwner(actor) {
			return false, ErrOwnerRequired
		}
		if err := checkAssign(actor, in.Role); err != nil {
			return false, err
		}
		if u.Role == authn.RoleOwner && in.Role != authn.RoleOwner && !u.Disabled() && activeOwners <= 1 {
			return false, ErrLastOwner
		}
		u.Role, u.CustomerID = in.Role, in.CustomerID
		if in.Role != authn.RoleBroker {
			u.CustomerIDs = nil
		}
		u.UpdatedAt = s.now()
		return true, nil
	})
	if err != nil {
		if isDomainError(err) {
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
				s.record(ctx, actor, audit.LevelWarning, audit.ActionRoleChange, audit.StatusFailure, map[string]any{
					"target_user_id": in.ID, "new_role": in.Role, "reason": reasonOf(err),
				})
			}
			return User{}, err
		}
		return User{}, fmt.Errorf("change role: %w", err)
	}
	if oldRole != u.Role || oldCustomer != u.CustomerID {
		details := map[string]any{"target_user_id": u.ID, "target_email": u.Email, "old_role": oldRole, "new_role": u.Role}
		if u.CustomerID != "" {
			details["customer_id"] = u.CustomerID
		}
		s.record(ctx, actor, audit.LevelInfo, audit.ActionRoleChange, audit.StatusSuccess, details)
	}
	return u, nil
}

// MaxCustomers bounds the customers assigned to one broker.
const MaxCustomers = 1000

// SetCustomers replaces the customers assigned to a broker user (its tenant scope) with ids:
// canonical UUIDs, unique, at most MaxCustomers; empty removes every assignment. Only brokers
// have assigned customers (ErrNotBroker otherwise: a client's single customer is changed with
// ChangeRole). Access tokens already issued keep their scope until they expire; the next login
// or refresh carries the new one. A change is audited as customers_changed with the customers
// added and removed.
func (s *Service) SetCustomers(ctx context.Context, actor *authn.Principal, id string, ids []string) (User, error) {
	if err := ValidateID("id", id); err != nil {
		return User{}, err
	}
	want, err := canonicalCustomers(ids)
	if err != nil {
		return User{}, err
	}
	if !canSee(actor, id) || !actor.Has(authn.PermUsersAdmin) {
		return User{}, ErrNotFound
	}
	var before []string
	u, err := s.store.Update(ctx, id, func(u *User, _ int) (bool, error) {
		if u.Role != authn.RoleBroker {
			return false, ErrNotBroker
		}
		if err := checkAssign(actor, authn.RoleBroker); err != nil {
			return false, err
		}
		before = slices.Clone(u.CustomerIDs)
		slices.Sort(before)
		if slices.Equal(before, want) {
			return false, nil
		}
		u.CustomerIDs = want
		u.UpdatedAt = s.now()
		return true, nil
	})
	if err != nil {
		if isDomainError(err) {
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
				s.record(ctx, actor, audit.LevelWarning, audit.ActionCustomersChanged, audit.StatusFailure, map[string]any{
					"target_user_id": id, "reason": reasonOf(err),
				})
			}
			return User{}, err
		}
		return User{}, fmt.Errorf("set customers: %w", err)
	}
	added, removed := diffSorted(before, want)
	if len(added) > 0 || len(removed) > 0 {
		s.record(ctx, actor, audit.LevelInfo, audit.ActionCustomersChanged, audit.StatusSuccess, map[string]any{
			"target_user_id": u.ID, "target_email": u.Email, "customer_count": len(want),
			"added": toAny(added), "removed": toAny(removed),
		})
	}
	return u, nil
}

// canonicalCustomers validates customer ids and returns them in canonical (lower-case) form,
// sorted; nil for none.
func canonicalCustomers(ids []string) ([]string, error) {
	if len(ids) > MaxCustomers {
		return nil, invalid("customer_ids", fmt.Sprintf("must hold at most %d customers", MaxCustomers))
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		field := fmt.Sprintf("customer_ids[%d]", i)
		if err := ValidateID(field, id); err != nil {
			return nil, err
		}
		out[i] = strings.ToLower(id)
	}
	slices.Sort(out)
	for i := 1; i < len(out); i++ {
		if out[i] == out[i-1] {
			return nil, invalid("customer_ids", "must not repeat a customer")
		}
	}
	return out, nil
}

// diffSorted returns the elements only in b (added) and only in a (removed); a and b are sorted.
func diffSorted(a, b []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			removed = append(removed, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			added = append(added, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// toAny makes a JSON array of audit details (nil → empty array).
func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Disable disables the user: it can no longer log in or refresh, and its refresh tokens are
// revoked. Disabling a disabled user changes nothing.
func (s *Service) Disable(ctx context.Context, actor *authn.Principal, id, reason string) (User, error) {
	if err := ValidateID("id", id); err != nil {
		return User{}, err
	}
	if !canSee(actor, id) {
		return User{}, ErrNotFound
	}
	if actor != nil && actor.Subject == id {
		return User{}, ErrDisableSelf
	}
	changed := false
	u, err := s.store.Update(ctx, id, func(u *User, activeOwners int) (bool, error) {
		if u.Disabled() {
			return false, nil
		}
		if u.Role == authn.RoleOwner {
			if !isOwner(actor) {
				return false, ErrOwnerRequired
			}
			if activeOwners <= 1 {
				return false, ErrLastOwner
			}
		}
		now := s.now()
		u.DisabledAt, u.UpdatedAt = now, now
		changed = true
		return true, nil
	})
	if err != nil {
		if isDomainError(err) {
			if !errors.Is(err, ErrNotFound) {
				s.record(ctx, actor, audit.LevelWarning, audit.ActionUserDisable, audit.StatusFailure, map[string]any{
					"target_user_id": id, "reason": reasonOf(err),
				})
			}
			return User{}, err
		}
		return User{}, fmt.Errorf("disable user: %w", err)
	}
	if !changed {
		return u, nil
	}
	details := map[string]any{"target_user_id": u.ID, "target_email": u.Email}
	if s.keys != nil {
		// The sessions went in the same transaction as the flag; the keys are another table's
		// business. A failure here is not fatal: keys of a disabled owner no longer resolve.
		if n, err := s.keys.RevokeUserKeys(ctx, u.ID); err == nil {
			details["revoked_api_keys"] = n
		}
	}
	if reason = strings.TrimSpace(reason); reason != "" {
		details["reason"] = reason
	}
	s.record(ctx, actor, audit.LevelInfo, audit.ActionUserDisable, audit.StatusSuccess, details)
	return u, nil
}

// isOwner reports whether actor acts as an owner: an owner's access token or API key.
func isOwner(actor *authn.Principal) bool {
	return actor != nil && (actor.Kind == authn.KindUser || actor.Kind == authn.KindAPIKey) && actor.Role == authn.RoleOwner
}

// checkAssign reports whether actor may give a user role (owner handled by the callers).
func checkAssign(actor *authn.Principal, role string) error {
	if actor == nil || !actor.Has(authn.PermUsersAdmin) {
		return ErrRoleNotAssignable
	}
	switch actor.Kind {
	case authn.KindOperator, authn.KindService:
		if role == authn.RoleOwner {
			return ErrOwnerRequired
		}
		return nil
	case authn.KindUser, authn.KindAPIKey:
		if !authn.CanAssignRole(actor.Role, role) {
			if role == authn.RoleOwner {
				return ErrOwnerRequired
			}
			return ErrRoleNotAssignable
		}
		return nil
	}
	return ErrRoleNotAssignable
}

// canSee reports whether actor may see the user id: users:admin sees everyone, others only
// themselves.
func canSee(actor *authn.Principal, id string) bool {
	if actor.Has(authn.PermUsersAdmin) {
		return true
	}
	return actor != nil && actor.Subject == id && (actor.Kind == authn.KindUser || actor.Kind == authn.KindAPIKey)
}

func isDomainError(err error) bool {
	for _, e := range []error{ErrNotFound, ErrEmailTaken, ErrOwnerRequired, ErrBootstrapClosed, ErrRoleNotAssignable, ErrLastOwner, ErrDisableSelf, ErrNotBroker, ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrEmailTaken):
		return "email_taken"
	case errors.Is(err, ErrBootstrapClosed):
		return "owner_exists"
	case errors.Is(err, ErrOwnerRequired):
		return "owner_required"
	case errors.Is(err, ErrRoleNotAssignable):
		return "role_not_assignable"
	case errors.Is(err, ErrLastOwner):
		return "last_owner"
	case errors.Is(err, ErrDisableSelf):
		return "self"
	case errors.Is(err, ErrNotBroker):
		return "not_broker"
	}
	return "error"
}

// record appends an audit event acted by actor.
func (s *Service) record(ctx context.Context, actor *authn.Principal, level audit.Level, action, status string, details map[string]any) {
	if s.audit == nil {
		return
	}
	e := audit.Event{
		Level:     level,
		Category:  audit.CategoryUserManagement,
		Action:    action,
		IPAddress: reqinfo.ClientIP(ctx),
		Status:    status,
		Details:   details,
	}
	if actor != nil {
		e.UserID, e.UserEmail, e.UserRole = actor.Subject, actor.Email, actor.Role
		if actor.APIKeyID != "" {
			details["api_key_id"] = actor.APIKeyID
		}
	}
	s.audit.Record(ctx, e)
}

// Page tokens are base64url("<created unix nanos>|<id>"): opaque to clients.
func encodePageToken(created time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d|%s", created.UnixNano(), id))
}

func decodePageToken(tok string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", invalid("page_token", "is not a token from a previous response")
	}
	nanos, id, ok := strings.Cut(string(b), "|")
	var n int64
	if _, err := fmt.Sscanf(nanos, "%d", &n); !ok || err != nil || ValidateID("page_token", id) != nil {
		return time.Time{}, "", invalid("page_token", "is not a token from a previous response")
	}
	return time.Unix(0, n), id, nil
}
