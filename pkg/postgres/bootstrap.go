package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// identRe is what a schema or role name of ours may look like: a lower-case unquoted
// PostgreSQL identifier of at most 63 bytes.
var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// bootstrapLockKey serialises concurrent Bootstrap calls on one database (pg_advisory_xact_lock).
// It is the FNV-1a hash of "hashinsight/bootstrap".
var bootstrapLockKey = lockKey("hashinsight/bootstrap")

// Service describes one service's database identity: the schema it owns and the login role it
// connects as.
type Service struct {
	// Schema is the service's schema, e.g. "mining".
	Schema string
	// Role is the login role that owns Schema, e.g. "hashinsight_mining".
	Role string
	// Password is the role's password; empty leaves the role without one (trust or peer auth).
	Password string `secret:"true"`
}

// Validate reports whether the schema and role names are acceptable identifiers.
func (s Service) Validate() error {
	if err := ValidateIdentifier(s.Schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := ValidateIdentifier(s.Role); err != nil {
		return fmt.Errorf("role: %w", err)
	}
	if s.Schema == "public" || strings.HasPrefix(s.Schema, "pg_") || s.Schema == "information_schema" {
		return fmt.Errorf("schema: %q is reserved", s.Schema)
	}
	if strings.HasPrefix(s.Role, "pg_") {
		return fmt.Errorf("role: %q is reserved", s.Role)
	}
	if strings.ContainsRune(s.Password, 0) || !utf8.ValidString(s.Password) {
		return errors.New("password: must be valid UTF-8 without NUL bytes")
	}
	return nil
}

// DSN returns the DSN the service connects with: adminDSN's server and database, the service's
// role and password, and search_path pinned to its schema.
func (s Service) DSN(adminDSN string) (string, error) {
	dsn, err := RoleDSN(adminDSN, s.Role, s.Password)
	if err != nil {
		return "", err
	}
	return SearchPathDSN(dsn, s.Schema)
}

// ValidateIdentifier reports whether name matches ^[a-z_][a-z0-9_]{0,62}$, the only schema and
// role names this package creates.
func ValidateIdentifier(name string) error {
	if !identRe.MatchString(name) {
		return fmt.Errorf("invalid identifier %q: want ^[a-z_][a-z0-9_]{0,62}$", name)
	}
	return nil
}

// Bootstrap prepares svc in the database adminDSN points at, idempotently: it creates the login
// role (or resets its password and strips elevated attributes when it exists), creates the
// schema owned by that role, sets the role's search_path to the schema, grants it CONNECT on the
// database, revokes every PUBLIC privilege on the schema, revokes CREATE on schema public from
// PUBLIC, revokes the role's membership in any other role, and revokes its privileges on every
// other non-system schema. The result: the role can use its own schema and nothing else, and no
// other service's role can use its schema.
//
// adminDSN must be a role that may create roles and schemas (a superuser, or CREATEROLE and
// CREATE on the database). Concurrent calls on one database are serialised with an advisory lock;
// a printable-ASCII password is sent as a SCRAM-SHA-256 verifier computed here, so the plain
// password never reaches the server (nor its statement log); other passwords are sent as a quoted
// literal, since only the server applies SASLprep exactly.
func Bootstrap(ctx context.Context, adminDSN string, svc Service) error {
	if err := svc.Validate(); err != nil {
		return fmt.Errorf("postgres: bootstrap: %w", err)
	}
	password, err := passwordLiteral(svc.Password)
	if err != nil {
		return fmt.Errorf("postgres: bootstrap %s: %w", svc.Schema, err)
	}
	cfg, err := pgx.ParseConfig(adminDSN)
	if err != nil {
		return fmt.Errorf("postgres: bootstrap: parse admin dsn: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: bootstrap %s: connect: %w", svc.Schema, err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()

	// Roles are cluster-wide but advisory locks are per database, so a bootstrap of the same role
	// in another database can still race this one; such conflicts are retried.
	const attempts = 4
	for attempt := 1; ; attempt++ {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return bootstrapTx(ctx, tx, svc, password) })
		if err == nil {
			return nil
		}
		if attempt == attempts || !isBootstrapConflict(err) || ctx.Err() != nil {
			return fmt.Errorf("postgres: bootstrap %s: %w", svc.Schema, err)
		}
	}
}

func bootstrapTx(ctx context.Context, tx pgx.Tx, svc Service, password string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", bootstrapLockKey); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	role := pgx.Identifier{svc.Role}.Sanitize()
	schema := pgx.Identifier{svc.Schema}.Sanitize()

	var (
		database                        string
		roleExists, elevated, hasPublic bool
		schemaExists                    bool
		schemaOwner                     string
	)
	err := tx.QueryRow(ctx, `
		SELECT current_database(),
		       r.rolname IS NOT NULL,
		       coalesce(r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls, false),
		       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public'),
		       n.nspname IS NOT NULL,
		       coalesce(pg_get_userbyid(n.nspowner), '')
		FROM (SELECT 1) AS one
		LEFT JOIN pg_roles r ON r.rolname = $1
		LEFT JOIN pg_namespace n ON n.nspname = $2`, svc.Role, svc.Schema).
		Scan(&database, &roleExists, &elevated, &hasPublic, &schemaExists, &schemaOwner)
	if err != nil {
		return fmt.Errorf("inspect catalog: %w", err)
	}

	var stmts []string
	if roleExists {
		stmts = append(stmts, "ALTER ROLE "+role+" WITH LOGIN PASSWORD "+password)
		if elevated {
			// Only issued when needed: changing these attributes requires superuser.
			stmts = append(stmts, "ALTER ROLE "+role+" WITH NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS")
		}
	} else {
		stmts = append(stmts, "CREATE ROLE "+role+" WITH LOGIN PASSWORD "+password)
	}
	stmts = append(stmts,
		"ALTER ROLE "+role+" SET search_path = "+schema,
		"GRANT CONNECT ON DATABASE "+pgx.Identifier{database}.Sanitize()+" TO "+role,
	)
	switch {
	case !schemaExists:
		stmts = append(stmts, "CREATE SCHEMA "+schema+" AUTHORIZATION "+role)
	case schemaOwner != svc.Role:
		stmts = append(stmts, "ALTER SCHEMA "+schema+" OWNER TO "+role)
	}
	stmts = append(stmts, "REVOKE ALL ON SCHEMA "+schema+" FROM PUBLIC")
	if hasPublic {
		stmts = append(stmts,
			"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
			"REVOKE ALL ON SCHEMA public FROM "+role,
		)
	}
	for i, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			// The statement itself is not in the error: it may carry the password verifier.
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}

	// Membership in another role (say another service's, or pg_read_all_data) would lend the
	// role that role's rights.
	rows, err := tx.Query(ctx, `
		SELECT g.rolname FROM pg_auth_members m
		JOIN pg_roles g ON g.oid = m.roleid
		JOIN pg_roles u ON u.oid = m.member
		WHERE u.rolname = $1 ORDER BY 1`, svc.Role)
	if err != nil {
		return fmt.Errorf("list memberships: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list memberships: %w", err)
	}
	for _, g := range groups {
		if _, err := tx.Exec(ctx, "REVOKE "+pgx.Identifier{g}.Sanitize()+" FROM "+role); err != nil {
			return fmt.Errorf("revoke membership in %s: %w", g, err)
		}
	}

	rows, err = tx.Query(ctx, `
		SELECT nspname FROM pg_namespace
		WHERE nspname NOT IN ($1, 'public', 'information_schema') AND nspname NOT LIKE 'pg\_%'
		ORDER BY nspname`, svc.Schema)
	if err != nil {
		return fmt.Errorf("list schemas: %w", err)
	}
	others, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list schemas: %w", err)
	}
	for _, other := range others {
		if _, err := tx.Exec(ctx, "REVOKE ALL ON SCHEMA "+pgx.Identifier{other}.Sanitize()+" FROM "+role); err != nil {
			return fmt.Errorf("revoke on schema %s: %w", other, err)
		}
	}
	return nil
}

// isBootstrapConflict reports errors caused by a concurrent bootstrap of the same role in another
// database: a duplicate role, or a concurrently updated pg_authid row.
func isBootstrapConflict(err error) bool {
	switch SQLState(err) {
	case codeUniqueViolation, codeDuplicateObject, codeSerializationFailure, codeDeadlockDetected:
		return true
	case codeInternalError:
		return strings.Contains(err.Error(), "tuple concurrently updated")
	}
	return false
}

// passwordLiteral returns the SQL literal for the role's PASSWORD clause: NULL for an empty
// password, else a quoted SCRAM-SHA-256 verifier. Passwords outside printable ASCII are sent as a
// quoted literal instead, because the verifier must be computed over the SASLprep-normalised
// password and only the server implements PostgreSQL's exact normalisation.
func passwordLiteral(password string) (string, error) {
	if password == "" {
		return "NULL", nil
	}
	for i := 0; i < len(password); i++ {
		if c := password[i]; c < 0x20 || c > 0x7e {
			return quoteLiteral(password)
		}
	}
	v, err := scramVerifier(password)
	if err != nil {
		return "", err
	}
	return quoteLiteral(v)
}

// quoteLiteral quotes s as a PostgreSQL string constant, correct whatever the server's
// standard_conforming_strings: with backslashes it uses the E” form and doubles them.
func quoteLiteral(s string) (string, error) {
	if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		return "", errors.New("string literal must be valid UTF-8 without NUL bytes")
	}
	q := strings.ReplaceAll(s, "'", "''")
	if strings.Contains(q, `\`) {
		return "E'" + strings.ReplaceAll(q, `\`, `\\`) + "'", nil
	}
	return "'" + q + "'", nil
}

// scramIterations matches PostgreSQL's default scram_iterations.
const scramIterations = 4096

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores in pg_authid (RFC 5802 /
// RFC 7677), in PostgreSQL's text form: SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s",
		scramIterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
