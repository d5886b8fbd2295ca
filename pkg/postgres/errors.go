package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes this package classifies (PostgreSQL Appendix A).
const (
	codeUniqueViolation        = "23505"
	codeForeignKeyViolation    = "23503"
	codeNotNullViolation       = "23502"
	codeCheckViolation         = "23514"
	codeExclusionViolation     = "23P01"
	codeSerializationFailure   = "40001"
	codeDeadlockDetected       = "40P01"
	codeQueryCanceled          = "57014"
	codeInsufficientPrivilege  = "42501"
	codeUndefinedTable         = "42P01"
	codeDuplicateObject        = "42710"
	codeLockNotAvailable       = "55P03"
	codeInternalError          = "XX000"
	codeClassConnectionFailure = "08"
	codeClassInsufficientRes   = "53"
	codeAdminShutdown          = "57P01"
	codeCannotConnectNow       = "57P03"
)

// SQLState returns the SQLSTATE of the first *pgconn.PgError in err's chain, or "".
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// ConstraintName returns the constraint a constraint-violation error names, or "". Stores use it
// to tell which unique key was hit (e.g. miners_serial_key vs miners_name_key).
func ConstraintName(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

// IsUniqueViolation reports a unique_violation (23505), e.g. a duplicate key on insert.
func IsUniqueViolation(err error) bool { return SQLState(err) == codeUniqueViolation }

// IsForeignKeyViolation reports a foreign_key_violation (23503): a referenced row is missing, or
// a row still referenced was deleted.
func IsForeignKeyViolation(err error) bool { return SQLState(err) == codeForeignKeyViolation }

// IsNotNullViolation reports a not_null_violation (23502).
func IsNotNullViolation(err error) bool { return SQLState(err) == codeNotNullViolation }

// IsCheckViolation reports a check_violation (23514).
func IsCheckViolation(err error) bool { return SQLState(err) == codeCheckViolation }

// IsExclusionViolation reports an exclusion_violation (23P01).
func IsExclusionViolation(err error) bool { return SQLState(err) == codeExclusionViolation }

// IsSerializationFailure reports a serialization_failure (40001) or deadlock_detected (40P01):
// the transaction may succeed if retried.
func IsSerializationFailure(err error) bool {
	code := SQLState(err)
	return code == codeSerializationFailure || code == codeDeadlockDetected
}

// IsInsufficientPrivilege reports an insufficient_privilege error (42501), e.g. a role touching
// another service's schema.
func IsInsufficientPrivilege(err error) bool { return SQLState(err) == codeInsufficientPrivilege }

// IsUndefinedTable reports an undefined_table error (42P01).
func IsUndefinedTable(err error) bool { return SQLState(err) == codeUndefinedTable }

// IsTimeout reports a statement cancelled by statement_timeout or lock_timeout (57014, 55P03) or a
// context deadline: the request took too long (the manual's DB_002).
func IsTimeout(err error) bool {
	code := SQLState(err)
	return code == codeQueryCanceled || code == codeLockNotAvailable || errors.Is(err, context.DeadlineExceeded)
}

// IsUnavailable reports that the database could not be reached or is refusing work (connection
// failures, the server shutting down or starting, too many connections): the manual's DB_001.
func IsUnavailable(err error) bool {
	code := SQLState(err)
	switch {
	case len(code) == 5 && (code[:2] == codeClassConnectionFailure || code[:2] == codeClassInsufficientRes):
		return true
	case code == codeAdminShutdown || code == codeCannotConnectNow:
		return true
	case code != "":
		return false
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) || pgconn.SafeToRetry(err)
}
