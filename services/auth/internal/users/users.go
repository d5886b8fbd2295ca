// Package users is the auth service's user accounts: people who sign in with an email and a
// password and hold one role (owner, admin, broker, client). It enforces who may create, read,
// promote and disable whom:
//
//   - only an owner may create an owner, change an owner's role or grant the owner role, and only
//     an owner may disable an owner; the last active owner can be neither demoted nor disabled;
//   - the first owner is bootstrapped by an operator (mTLS operator/* certificate, no user
//     credential) while no active owner exists; after that owners are created by owners;
//   - a client user is bound to exactly one customer; a broker sees its assigned customers;
//   - without users:admin a principal sees only its own user: any other id is NOT_FOUND.
//
// Emails are normalised to lower case and unique. Passwords are hashed with argon2id (package
// password) and must be 12 to 128 characters.
package users

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/hashinsight/platform/pkg/authn"
)

// User is a human account.
type User struct {
	ID          string
	Email       string
	DisplayName string
	// Role is one of authn.Roles().
	Role string
	// CustomerID binds a client to its customer; empty for other roles.
	CustomerID string
	// CustomerIDs are a broker's assigned customers; empty for other roles.
	CustomerIDs []string
	// PasswordHash is the argon2id PHC string. Never leaves the service.
	PasswordHash string
	// DisabledAt is zero while the user is enabled.
	DisabledAt  time.Time
	LastLoginAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Disabled reports whether the user has been disabled.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

// Permissions are the effective permissions of the user's role.
func (u User) Permissions() []string { return authn.PermissionsForRole(u.Role) }

// Scope returns the user's tenant scope: all customers, or the listed ones.
func (u User) Scope() (all bool, customerIDs []string) {
	switch {
	case authn.RoleSeesAllCustomers(u.Role):
		return true, nil
	case u.Role == authn.RoleClient && u.CustomerID != "":
		return false, []string{u.CustomerID}
	default:
		return false, slices.Clone(u.CustomerIDs)
	}
}

// Sentinel errors; internal/grpcapi maps them to status codes. Their texts are safe to show.
var (
	// ErrNotFound: no such user, or one the caller may not see (NotFound).
	ErrNotFound = errors.New("user not found")
	// ErrEmailTaken: another user has that email, compared case-insensitively (AlreadyExists).
	ErrEmailTaken = errors.New("a user with that email already exists")
	// ErrOwnerRequired: only an owner may create or modify owners or grant the owner role
	// (PermissionDenied).
	ErrOwnerRequired = errors.New("only an owner may create or modify owners or grant the owner role")
	// ErrBootstrapClosed: an operator asked for an owner while an active owner exists
	// (PermissionDenied).
	ErrBootstrapClosed = errors.New("an owner already exists: further owners are created by an owner")
	// ErrRoleNotAssignable: the caller's role may not assign that role (PermissionDenied).
	ErrRoleNotAssignable = errors.New("your role may not assign that role")
	// ErrLastOwner: the change would leave no active owner (FailedPrecondition).
	ErrLastOwner = errors.New("the last active owner cannot be demoted or disabled")
	// ErrDisableSelf: a user cannot disable itself (FailedPrecondition).
	ErrDisableSelf = errors.New("you cannot disable your own account")
	// ErrNotBroker: assigned customers are set on a user that is not a broker
	// (FailedPrecondition).
	ErrNotBroker = errors.New("only broker users have assigned customers; a client's customer is set with its role")
	// ErrInvalid is matched by every *FieldError (InvalidArgument).
	ErrInvalid = errors.New("invalid argument")
)

// FieldError is an invalid request field.
type FieldError struct {
	// Field is the request field path, e.g. "email".
	Field string
	// Reason says what is wrong, without echoing the value.
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// MaxEmailLen is the longest accepted email (RFC 5321 path limit).
const MaxEmailLen = 254

// NormalizeEmail trims and lower-cases email and checks that it is a plain address
// (local@domain, no display name).
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", invalid("email", "is required")
	}
	if len(e) > MaxEmailLen || !utf8.ValidString(e) {
		return "", invalid("email", fmt.Sprintf("must be a valid address of at most %d characters", MaxEmailLen))
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", invalid("email", "must be a valid email address")
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", invalid("email", "must be a valid email address")
	}
	return e, nil
}

// ValidateID checks that id is a canonical UUID; field names the request field.
func ValidateID(field, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	if len(id) != 36 {
		return invalid(field, "must be a UUID")
	}
	if _, err := uuid.Parse(id); err != nil {
		return invalid(field, "must be a UUID")
	}
	return nil
}

// validateRole checks role and its customer binding.
func validateRole(role, customerID string) error {
	if !authn.ValidRole(role) {
		return invalid("role", "must be one of owner, admin, broker, client")
	}
	if role == authn.RoleClient {
		if customerID == "" {
			return invalid("customer_id", "is required for the client role")
		}
		return ValidateID("customer_id", customerID)
	}
	if customerID != "" {
		return invalid("customer_id", "is only allowed for the client role")
	}
	return nil
}

// MaxDisplayNameLen bounds display names, in characters.
const MaxDisplayNameLen = 128

func validateDisplayName(name string) error {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxDisplayNameLen {
		return invalid("display_name", fmt.Sprintf("must be valid text of at most %d characters", MaxDisplayNameLen))
	}
	return nil
}
