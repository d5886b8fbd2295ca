package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	pgkit "github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/services/auth/internal/users"
)

// Users is the users.Store on Postgres.
type Users struct{ pool *pgxpool.Pool }

var _ users.Store = (*Users)(nil)

// NewUsers returns the user store.
func NewUsers(pool *pgxpool.Pool) *Users { return &Users{pool: pool} }

const userColumns = `id::text, email, display_name, password_hash, role, coalesce(customer_id::text, ''),
	customer_ids::text[], disabled_at, last_login_at, created_at, updated_at`

func scanUser(row pgx.Row) (users.User, error) {
	var u users.User
	var disabled, lastLogin *time.Time
	err := row.Scan(&u.ID, &u.Email, &u.DisplayName, &u.PasswordHash, &u.Role, &u.CustomerID,
		&u.CustomerIDs, &disabled, &lastLogin, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		if isNoRows(err) {
			return users.User{}, users.ErrNotFound
		}
		return users.User{}, err
	}
	u.DisabledAt, u.LastLoginAt = timeOrZero(disabled), timeOrZero(lastLogin)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	if len(u.CustomerIDs) == 0 {
		u.CustomerIDs = nil
	}
	return u, nil
}

const insertUser = `INSERT INTO users (email, display_name, password_hash, role, customer_id, customer_ids)
	VALUES ($1, $2, $3, $4, nullif($5, '')::uuid, $6::text[]::uuid[])
	RETURNING ` + userColumns

func insertArgs(u users.NewUser) []any {
	ids := u.CustomerIDs
	if ids == nil {
		ids = []string{}
	}
	return []any{u.Email, u.DisplayName, u.PasswordHash, u.Role, u.CustomerID, ids}
}

// Create implements users.Store.
func (s *Users) Create(ctx context.Context, nu users.NewUser) (users.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, insertUser, insertArgs(nu)...))
	if err != nil {
		return users.User{}, mapUserErr("insert user", err)
	}
	return u, nil
}

// CreateFirstOwner implements users.Store.
func (s *Users) CreateFirstOwner(ctx context.Context, nu users.NewUser) (users.User, error) {
	var u users.User
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, ownersLock); err != nil {
			return err
		}
		var emailTaken, ownerExists bool
		err := tx.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1)),
			EXISTS (SELECT 1 FROM users WHERE role = 'owner' AND disabled_at IS NULL)`, nu.Email).Scan(&emailTaken, &ownerExists)
		if err != nil {
			return fmt.Errorf("check owners: %w", err)
		}
		switch {
		case emailTaken:
			return users.ErrEmailTaken
		case ownerExists:
			return users.ErrBootstrapClosed
		}
		u, err = scanUser(tx.QueryRow(ctx, insertUser, insertArgs(nu)...))
		return err
	})
	if err != nil {
		return users.User{}, mapUserErr("insert first owner", err)
	}
	return u, nil
}

// Get implements users.Store.
func (s *Users) Get(ctx context.Context, id string) (users.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1::uuid`, id))
	if err != nil {
		return users.User{}, mapUserErr("get user", err)
	}
	return u, nil
}

// GetByEmail implements users.Store.
func (s *Users) GetByEmail(ctx context.Context, email string) (users.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email))
	if err != nil {
		return users.User{}, mapUserErr("get user by email", err)
	}
	return u, nil
}

// List implements users.Store.
func (s *Users) List(ctx context.Context, q users.Query) ([]users.User, error) {
	var after *time.Time
	if !q.AfterCreated.IsZero() {
		after = &q.AfterCreated
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE ($1 = '' OR id = nullif($1, '')::uuid)
		  AND ($2 = '' OR role = $2)
		  AND ($3 OR disabled_at IS NULL)
		  AND ($4 = '' OR strpos(lower(email), lower($4)) > 0 OR strpos(lower(display_name), lower($4)) > 0)
		  AND ($5::timestamptz IS NULL OR (created_at, id) > ($5::timestamptz, nullif($6, '')::uuid))
		ORDER BY created_at, id
		LIMIT $7`, q.ID, q.Role, q.IncludeDisabled, q.Text, after, q.AfterID, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []users.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// Update implements users.Store.
func (s *Users) Update(ctx context.Context, id string, fn func(u *users.User, activeOwners int) (bool, error)) (users.User, error) {
	var out users.User
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, ownersLock); err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1::uuid FOR UPDATE`, id))
		if err != nil {
			return err
		}
		var owners int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'owner' AND disabled_at IS NULL`).Scan(&owners); err != nil {
			return fmt.Errorf("count owners: %w", err)
		}
		wasDisabled := u.Disabled()
		changed, err := fn(&u, owners)
		if err != nil {
			return err
		}
		if !changed {
			out = u
			return nil
		}
		ids := u.CustomerIDs
		if ids == nil {
			ids = []string{}
		}
		out, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET
				display_name = $2, role = $3, customer_id = nullif($4, '')::uuid, customer_ids = $5::text[]::uuid[],
				disabled_at = $6, updated_at = $7
			WHERE id = $1::uuid RETURNING `+userColumns,
			id, u.DisplayName, u.Role, u.CustomerID, ids, nullTime(u.DisabledAt), u.UpdatedAt))
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if !wasDisabled && out.Disabled() {
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2
				WHERE user_id = $1::uuid AND revoked_at IS NULL`, id, out.DisabledAt); err != nil {
				return fmt.Errorf("revoke refresh tokens: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return users.User{}, mapUserErr("update user", err)
	}
	return out, nil
}

// RecordLogin implements users.Store.
func (s *Users) RecordLogin(ctx context.Context, id string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1::uuid`, id, at); err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return nil
}

// mapUserErr turns constraint violations into the users sentinels and wraps the rest.
func mapUserErr(op string, err error) error {
	switch {
	case pgkit.IsUniqueViolation(err) && pgkit.ConstraintName(err) == "users_email_lower_key":
		return users.ErrEmailTaken
	case isDomain(err):
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isDomain reports errors that already are users sentinels (from fn or the store itself).
func isDomain(err error) bool {
	var fe *users.FieldError
	if errors.As(err, &fe) {
		return true
	}
	for _, s := range []error{users.ErrNotFound, users.ErrEmailTaken, users.ErrBootstrapClosed, users.ErrOwnerRequired,
		users.ErrRoleNotAssignable, users.ErrLastOwner, users.ErrDisableSelf} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
