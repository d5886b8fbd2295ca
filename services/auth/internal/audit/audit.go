// Package audit is the auth service's tamper-evident audit log (DESIGN §3, manual §6.5).
//
// Every security-relevant event (logins, failed logins, token reuse, role changes, user and API
// key management, permission denials, ...) is appended to a hash chain: each entry stores the
// hash of its predecessor (PrevHash, 64 zeros for the first entry) and its own Hash, the SHA-256
// of a canonical JSON encoding of its fields including PrevHash (see [ComputeHash]). Changing,
// deleting or re-ordering any stored entry breaks the chain, and [Log.Verify] names the first
// broken entry.
//
// The database ([Store], implemented by package auditpg) is the source of truth. After an entry
// is committed, [Log] also appends it as one line to the JSONL file (AUDIT_LOG_PATH, by default
// logs/audit.jsonl) in the manual's format, so operators can keep using tail and jq; a failed
// file write is logged, never returned.
//
// Appends are serialised by the store (a chain-head row locked inside the insert transaction),
// so any number of replicas append to one linear chain.
package audit

import (
	"context"
	"errors"
	"time"
)

// Level is the severity of an event (the manual's "level").
type Level string

// Levels, from least to most severe (the order MinLevel filters use).
const (
	LevelInfo    Level = "INFO"
	LevelWarning Level = "WARNING"
	// LevelSecurity marks security-relevant events: failed logins, token reuse, denials.
	LevelSecurity Level = "SECURITY"
	LevelError    Level = "ERROR"
)

// levels returns the valid levels in severity order.
func levels() []Level { return []Level{LevelInfo, LevelWarning, LevelSecurity, LevelError} }

// Valid reports whether l is one of the defined levels.
func (l Level) Valid() bool { return l.rank() >= 0 }

func (l Level) rank() int {
	for i, v := range levels() {
		if v == l {
			return i
		}
	}
	return -1
}

// AtLeast returns the levels at least as severe as l, in severity order; nil for an invalid l.
func (l Level) AtLeast() []Level {
	r := l.rank()
	if r < 0 {
		return nil
	}
	return levels()[r:]
}

// Categories (the manual's "category").
const (
	CategoryAuthentication   = "authentication"
	CategoryAuthorization    = "authorization"
	CategoryUserManagement   = "user_management"
	CategoryAPIKeyManagement = "api_key_management"
	CategoryDataAccess       = "data_access"
	CategoryConfiguration    = "configuration"
)

// Actions (the manual's "action"). Other non-empty actions are accepted too.
const (
	ActionLogin                = "login"
	ActionLoginFailed          = "login_failed"
	ActionLogout               = "logout"
	ActionTokenRefresh         = "token_refresh"
	ActionTokenReuse           = "token_reuse"
	ActionRoleChange           = "role_change"
	ActionUserCreate           = "user_create"
	ActionUserDisable          = "user_disable"
	ActionCustomersChanged     = "customers_changed"
	ActionAPIKeyCreate         = "api_key_create"
	ActionAPIKeyRotate         = "api_key_rotate"
	ActionAPIKeyRevoke         = "api_key_revoke"
	ActionCollectorTokenCreate = "collector_token_create"
	ActionCollectorTokenRevoke = "collector_token_revoke"
	ActionPermissionDenied     = "permission_denied"
)

// Statuses (the manual's "status").
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
)

// GenesisHash is the PrevHash of the first entry of the chain: 64 zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Limits on the event fields; longer values are rejected with ErrInvalidEvent.
const (
	maxNameLen  = 64  // category, action
	maxFieldLen = 512 // user_id, user_email, user_role, ip_address
)

// Sentinel errors. The grpcapi layer maps them to status codes.
var (
	// ErrInvalidEvent: the event misses a required field or has an invalid one (InvalidArgument).
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrInvalidFilter: a bad page token or an inverted time range (InvalidArgument).
	ErrInvalidFilter = errors.New("audit: invalid filter")
	// ErrDuplicateEventID: an event with the caller-chosen ID already exists (AlreadyExists).
	ErrDuplicateEventID = errors.New("audit: duplicate event id")
	// ErrNotFound: no entry with that sequence number (NotFound).
	ErrNotFound = errors.New("audit: entry not found")
)

// Event is one audit log entry. The first block of fields is the manual's JSON format; Seq,
// PrevHash and Hash are the chain and are set by [Log.Append].
type Event struct {
	// ID is the manual's event_id: 16 lower-case hex characters. Append generates it when empty.
	ID string
	// Timestamp is when the event happened; Append uses the log's clock when zero. Stored and
	// hashed in UTC with microsecond precision.
	Timestamp time.Time
	// Level defaults to LevelInfo.
	Level Level
	// Category, e.g. CategoryAuthentication. Required.
	Category string
	// Action, e.g. ActionLoginFailed. Required.
	Action string
	// UserID is the acting principal: a user id, or "operator/alice", "svc/billing"; empty when
	// unknown.
	UserID string
	// UserEmail of the acting user, if known.
	UserEmail string
	// UserRole of the acting user in lower case ("admin"), if known.
	UserRole string
	// IPAddress of the client as seen by the gateway.
	IPAddress string
	// Status is StatusSuccess or StatusFailure; defaults to StatusSuccess.
	Status string
	// Details is a JSON object of free-form details, e.g. {"login_method": "password"}. Values
	// must be JSON-encodable. Never put secrets here. Append normalises it to its JSON form
	// (numbers become float64), which is what is stored, hashed and returned.
	Details map[string]any

	// Seq is the entry's position in the chain, starting at 1, without gaps.
	Seq int64
	// PrevHash is the hex SHA-256 Hash of the entry at Seq-1 (GenesisHash for Seq 1).
	PrevHash string
	// Hash is the hex SHA-256 of the entry's canonical encoding (see ComputeHash).
	Hash string
}

// Head is the end of the chain: the last entry's sequence number and hash (0 and GenesisHash for
// an empty chain).
type Head struct {
	Seq  int64
	Hash string
}

// Query is what [Store.List] selects, newest first. Zero-valued fields do not filter.
type Query struct {
	UserID string
	// Actor is an exact match of the entry's UserID, like UserID (both combine with AND).
	Actor    string
	Category string
	Action   string
	// Levels, when non-empty, are the acceptable levels.
	Levels []Level
	// From is an inclusive lower bound of Timestamp; To an exclusive upper bound.
	From, To time.Time
	// BeforeSeq, when positive, selects entries with Seq < BeforeSeq (keyset pagination).
	BeforeSeq int64
	// Limit is the maximum number of entries returned (positive).
	Limit int
}

// Store persists the chain. The postgres implementation is package auditpg.
type Store interface {
	// Append, in one transaction, locks the chain head (serialising appends across replicas),
	// calls seal with it, inserts the events seal returns (one or more, in order) and advances
	// the head to the last. seal must return events that extend the head: the first with Seq =
	// head.Seq+1 and PrevHash = head.Hash, each next one linked to its predecessor, every Hash
	// set. A duplicate event ID fails the whole append with ErrDuplicateEventID.
	Append(ctx context.Context, seal func(head Head) ([]Event, error)) ([]Event, error)
	// Head returns the current end of the chain.
	Head(ctx context.Context) (Head, error)
	// Get returns the entry at seq, or ErrNotFound.
	Get(ctx context.Context, seq int64) (Event, error)
	// List returns the entries matching q, highest Seq first.
	List(ctx context.Context, q Query) ([]Event, error)
	// Walk calls fn for every stored entry with from <= Seq <= to, in ascending Seq order,
	// reading in batches (so it does not hold one long statement). It stops at fn's first error
	// and returns it.
	Walk(ctx context.Context, from, to int64, fn func(Event) error) error
}
