// Package apikeyspg is the PostgreSQL implementation of [apikeys.Store]: the api_keys and
// collector_tokens tables of migration 00011_api_keys.sql, in the auth schema.
package apikeyspg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/services/auth/internal/apikeys"
)

const keyColumns = `id::text, user_id::text, name, prefix, scopes, created_at, expires_at, revoked_at,
	last_used_at, rotated_from::text, rotated_to::text, overlap_until`

const tokenColumns = `id::text, site_id, name, prefix, created_by, created_at, expires_at, revoked_at, last_used_at`

// Store implements apikeys.Store on a pgx pool whose search_path is the auth schema.
type Store struct {
	pool *pgxpool.Pool
}

var _ apikeys.Store = (*Store)(nil)

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// CreateKey implements apikeys.Store.
func (s *Store) CreateKey(ctx context.Context, k apikeys.Key, hash []byte) (apikeys.Key, error) {
	k, err := insertKey(ctx, s.pool, k, hash)
	if err != nil {
		return apikeys.Key{}, fmt.Errorf("apikeyspg: create key: %w", err)
	}
	return k, nil
}

// querier is what insertKey needs: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func insertKey(ctx context.Context, q querier, k apikeys.Key, hash []byte) (apikeys.Key, error) {
	rows, err := q.Query(ctx, `
		INSERT INTO api_keys (user_id, name, prefix, hash, scopes, created_at, expires_at, rotated_from)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING `+keyColumns,
		k.UserID, k.Name, k.DisplayPrefix, hash, k.Scopes, k.CreatedAt, nullTime(k.ExpiresAt), nullString(k.RotatedFromID))
	if err != nil {
		return apikeys.Key{}, err
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanKey)
	switch {
	case postgres.IsForeignKeyViolation(err) && postgres.ConstraintName(err) == "api_keys_user_id_fkey",
		postgres.SQLState(err) == "22P02": // user id is not a uuid
		return apikeys.Key{}, apikeys.ErrUnknownUser
	case err != nil:
		return apikeys.Key{}, err
	}
	return out, nil
}

// GetKey implements apikeys.Store.
func (s *Store) GetKey(ctx context.Context, id string) (apikeys.Key, error) {
	if !apikeys.ValidID(id) {
		return apikeys.Key{}, fmt.Errorf("apikeyspg: get key: %w", apikeys.ErrNotFound)
	}
	return s.oneKey(ctx, "get key", `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id)
}

// KeyByHash implements apikeys.Store.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (apikeys.Key, error) {
	return s.oneKey(ctx, "key by hash", `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash)
}

// RevokeKey implements apikeys.Store.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) (apikeys.Key, error) {
	if !apikeys.ValidID(id) {
		return apikeys.Key{}, fmt.Errorf("apikeyspg: revoke key: %w", apikeys.ErrNotFound)
	}
	return s.oneKey(ctx, "revoke key",
		`UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING `+keyColumns, id, at)
}

// RevokeUserKeys implements apikeys.Store.
func (s *Store) RevokeUserKeys(ctx context.Context, userID string, at time.Time) (int64, error) {
	if !apikeys.ValidID(userID) {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, at)
	if err != nil {
		return 0, fmt.Errorf("apikeyspg: revoke keys of user: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (s *Store) oneKey(ctx context.Context, op, sql string, args ...any) (apikeys.Key, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return apikeys.Key{}, fmt.Errorf("apikeyspg: %s: %w", op, err)
	}
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return apikeys.Key{}, fmt.Errorf("apikeyspg: %s: %w", op, apikeys.ErrNotFound)
	case err != nil:
		return apikeys.Key{}, fmt.Errorf("apikeyspg: %s: %w", op, err)
	}
	return k, nil
}

// ListKeys implements apikeys.Store.
func (s *Store) ListKeys(ctx context.Context, q apikeys.KeyQuery) ([]apikeys.Key, error) {
	var w where
	if q.UserID != "" {
		if !apikeys.ValidID(q.UserID) {
			return nil, nil
		}
		w.add("user_id = ?", q.UserID)
	}
	if !q.ActiveAt.IsZero() {
		w.add("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", q.ActiveAt)
	}
	if q.After != nil {
		w.add2("(created_at, id) < (?, ?)", q.After.CreatedAt, q.After.ID)
	}
	sql := `SELECT ` + keyColumns + ` FROM api_keys` + w.sql() +
		` ORDER BY created_at DESC, id DESC LIMIT ` + w.arg(q.Limit)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, fmt.Errorf("apikeyspg: list keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("apikeyspg: list keys: %w", err)
	}
	return keys, nil
}

// RotateKey implements apikeys.Store.
func (s *Store) RotateKey(ctx context.Context, id string, rotate func(apikeys.Key) (apikeys.Rotation, error)) (apikeys.Key, apikeys.Key, error) {
	if !apikeys.ValidID(id) {
		return apikeys.Key{}, apikeys.Key{}, fmt.Errorf("apikeyspg: rotate key: %w", apikeys.ErrNotFound)
	}
	var newKey, oldKey apikeys.Key
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		old, err := pgx.CollectExactlyOneRow(rows, scanKey)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return apikeys.ErrNotFound
		case err != nil:
			return err
		}
		r, err := rotate(old)
		if err != nil {
			return err
		}
		if newKey, err = insertKey(ctx, tx, r.New, r.NewHash); err != nil {
			return fmt.Errorf("insert successor: %w", err)
		}
		rows, err = tx.Query(ctx, `
			UPDATE api_keys SET expires_at = $2, overlap_until = $2, rotated_to = $3
			WHERE id = $1 RETURNING `+keyColumns, id, r.OldExpiresAt, newKey.ID)
		if err != nil {
			return err
		}
		oldKey, err = pgx.CollectExactlyOneRow(rows, scanKey)
		return err
	})
	if err != nil {
		return apikeys.Key{}, apikeys.Key{}, fmt.Errorf("apikeyspg: rotate key: %w", err)
	}
	return newKey, oldKey, nil
}

// TouchKey implements apikeys.Store.
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time, interval time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE api_keys SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)`, id, at, at.Add(-interval))
	if err != nil {
		return fmt.Errorf("apikeyspg: touch key: %w", err)
	}
	return nil
}

// CreateCollectorToken implements apikeys.Store.
func (s *Store) CreateCollectorToken(ctx context.Context, t apikeys.CollectorToken, hash []byte) (apikeys.CollectorToken, error) {
	return s.oneToken(ctx, "create collector token", `
		INSERT INTO collector_tokens (site_id, name, prefix, hash, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+tokenColumns,
		t.SiteID, t.Name, t.DisplayPrefix, hash, t.CreatedBy, t.CreatedAt, nullTime(t.ExpiresAt))
}

// GetCollectorToken implements apikeys.Store.
func (s *Store) GetCollectorToken(ctx context.Context, id string) (apikeys.CollectorToken, error) {
	if !apikeys.ValidID(id) {
		return apikeys.CollectorToken{}, fmt.Errorf("apikeyspg: get collector token: %w", apikeys.ErrNotFound)
	}
	return s.oneToken(ctx, "get collector token", `SELECT `+tokenColumns+` FROM collector_tokens WHERE id = $1`, id)
}

// CollectorTokenByHash implements apikeys.Store.
func (s *Store) CollectorTokenByHash(ctx context.Context, hash []byte) (apikeys.CollectorToken, error) {
	return s.oneToken(ctx, "collector token by hash", `SELECT `+tokenColumns+` FROM collector_tokens WHERE hash = $1`, hash)
}

// RevokeCollectorToken implements apikeys.Store.
func (s *Store) RevokeCollectorToken(ctx context.Context, id string, at time.Time) (apikeys.CollectorToken, error) {
	if !apikeys.ValidID(id) {
		return apikeys.CollectorToken{}, fmt.Errorf("apikeyspg: revoke collector token: %w", apikeys.ErrNotFound)
	}
	return s.oneToken(ctx, "revoke collector token",
		`UPDATE collector_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING `+tokenColumns, id, at)
}

// ListCollectorTokens implements apikeys.Store.
func (s *Store) ListCollectorTokens(ctx context.Context, q apikeys.TokenQuery) ([]apikeys.CollectorToken, error) {
	var w where
	if q.SiteID != "" {
		w.add("site_id = ?", q.SiteID)
	}
	if q.CreatedBy != "" {
		w.add("created_by = ?", q.CreatedBy)
	}
	if !q.ActiveAt.IsZero() {
		w.add("revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", q.ActiveAt)
	}
	if q.After != nil {
		w.add2("(created_at, id) < (?, ?)", q.After.CreatedAt, q.After.ID)
	}
	sql := `SELECT ` + tokenColumns + ` FROM collector_tokens` + w.sql() +
		` ORDER BY created_at DESC, id DESC LIMIT ` + w.arg(q.Limit)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, fmt.Errorf("apikeyspg: list collector tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("apikeyspg: list collector tokens: %w", err)
	}
	return tokens, nil
}

// TouchCollectorToken implements apikeys.Store.
func (s *Store) TouchCollectorToken(ctx context.Context, id string, at time.Time, interval time.Duration) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE collector_tokens SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)`, id, at, at.Add(-interval))
	if err != nil {
		return fmt.Errorf("apikeyspg: touch collector token: %w", err)
	}
	return nil
}

func (s *Store) oneToken(ctx context.Context, op, sql string, args ...any) (apikeys.CollectorToken, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return apikeys.CollectorToken{}, fmt.Errorf("apikeyspg: %s: %w", op, err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanToken)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return apikeys.CollectorToken{}, fmt.Errorf("apikeyspg: %s: %w", op, apikeys.ErrNotFound)
	case err != nil:
		return apikeys.CollectorToken{}, fmt.Errorf("apikeyspg: %s: %w", op, err)
	}
	return t, nil
}

func scanKey(row pgx.CollectableRow) (apikeys.Key, error) {
	var (
		k                                   apikeys.Key
		expires, revoked, lastUsed, overlap pgtype.Timestamptz
		rotatedFrom, rotatedTo              pgtype.Text
	)
	if err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.DisplayPrefix, &k.Scopes, &k.CreatedAt, &expires, &revoked,
		&lastUsed, &rotatedFrom, &rotatedTo, &overlap); err != nil {
		return apikeys.Key{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, k.RevokedAt, k.LastUsedAt, k.OverlapUntil = fromTime(expires), fromTime(revoked), fromTime(lastUsed), fromTime(overlap)
	k.RotatedFromID, k.RotatedToID = rotatedFrom.String, rotatedTo.String
	return k, nil
}

func scanToken(row pgx.CollectableRow) (apikeys.CollectorToken, error) {
	var (
		t                          apikeys.CollectorToken
		expires, revoked, lastUsed pgtype.Timestamptz
	)
	if err := row.Scan(&t.ID, &t.SiteID, &t.Name, &t.DisplayPrefix, &t.CreatedBy, &t.CreatedAt, &expires, &revoked,
		&lastUsed); err != nil {
		return apikeys.CollectorToken{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = fromTime(expires), fromTime(revoked), fromTime(lastUsed)
	return t, nil
}

// fromTime converts a nullable timestamp; NULL is the zero time.
func fromTime(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// nullString stores "" as NULL.
func nullString(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// where builds a WHERE clause with numbered placeholders.
type where struct {
	conds []string
	args  []any
}

// arg appends v and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// add appends cond with its single "?" replaced by v's placeholder.
func (w *where) add(cond string, v any) {
	w.conds = append(w.conds, strings.Replace(cond, "?", w.arg(v), 1))
}

// add2 appends cond with its two "?" replaced by a's and b's placeholders.
func (w *where) add2(cond string, a, b any) {
	cond = strings.Replace(cond, "?", w.arg(a), 1)
	w.conds = append(w.conds, strings.Replace(cond, "?", w.arg(b), 1))
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
