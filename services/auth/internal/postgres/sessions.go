package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/services/auth/internal/sessions"
)

// Sessions is the sessions.Store (refresh tokens) on Postgres.
type Sessions struct{ pool *pgxpool.Pool }

var _ sessions.Store = (*Sessions)(nil)

// NewSessions returns the refresh-token store.
func NewSessions(pool *pgxpool.Pool) *Sessions { return &Sessions{pool: pool} }

// InsertRefreshToken implements sessions.Store. It refuses (sessions.ErrFamilyRevoked) to add a
// token to a family that has a revoked token. The family and user advisory locks, also taken by
// RevokeFamily and RevokeUserTokens, serialise the two, so a token inserted by a refresh racing a
// reuse-triggered revocation can never survive it.
func (s *Sessions) InsertRefreshToken(ctx context.Context, t sessions.RefreshToken) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockSession(ctx, tx, "family:"+t.FamilyID); err != nil {
			return err
		}
		if err := lockSession(ctx, tx, "user:"+t.UserID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at)
			SELECT $1::uuid, $2, $3::uuid, $4::uuid, $5, $6
			WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $3::uuid AND revoked_at IS NOT NULL)`,
			t.ID, t.Hash, t.FamilyID, t.UserID, t.CreatedAt, t.ExpiresAt)
		if err != nil {
			return fmt.Errorf("insert refresh token: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return sessions.ErrFamilyRevoked
		}
		return nil
	})
}

// lockSession takes a transaction-scoped advisory lock on a session family or a user's sessions.
func lockSession(ctx context.Context, tx pgx.Tx, key string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('refresh_tokens:' || $1, 0))`, key); err != nil {
		return fmt.Errorf("lock %s: %w", key, err)
	}
	return nil
}

// RefreshTokenByHash implements sessions.Store.
func (s *Sessions) RefreshTokenByHash(ctx context.Context, hash []byte) (sessions.RefreshToken, error) {
	var t sessions.RefreshToken
	var used, revoked *time.Time
	err := s.pool.QueryRow(ctx, `SELECT id::text, token_hash, family_id::text, user_id::text, created_at, expires_at, used_at, revoked_at
		FROM refresh_tokens WHERE token_hash = $1`, hash).
		Scan(&t.ID, &t.Hash, &t.FamilyID, &t.UserID, &t.CreatedAt, &t.ExpiresAt, &used, &revoked)
	if err != nil {
		if isNoRows(err) {
			return sessions.RefreshToken{}, sessions.ErrTokenNotFound
		}
		return sessions.RefreshToken{}, fmt.Errorf("get refresh token: %w", err)
	}
	t.UsedAt, t.RevokedAt = timeOrZero(used), timeOrZero(revoked)
	return t, nil
}

// MarkRefreshTokenUsed implements sessions.Store.
func (s *Sessions) MarkRefreshTokenUsed(ctx context.Context, id string, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2
		WHERE id = $1::uuid AND used_at IS NULL AND revoked_at IS NULL`, id, at)
	if err != nil {
		return false, fmt.Errorf("mark refresh token used: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RevokeFamily implements sessions.Store (under the family's lock, see InsertRefreshToken).
func (s *Sessions) RevokeFamily(ctx context.Context, familyID string, at time.Time) (int64, error) {
	return s.revoke(ctx, "family:"+familyID, `UPDATE refresh_tokens SET revoked_at = $2
		WHERE family_id = $1::uuid AND revoked_at IS NULL`, familyID, at)
}

// RevokeUserTokens implements sessions.Store (under the user's lock, see InsertRefreshToken).
func (s *Sessions) RevokeUserTokens(ctx context.Context, userID string, at time.Time) (int64, error) {
	return s.revoke(ctx, "user:"+userID, `UPDATE refresh_tokens SET revoked_at = $2
		WHERE user_id = $1::uuid AND revoked_at IS NULL`, userID, at)
}

func (s *Sessions) revoke(ctx context.Context, lockKey, query, id string, at time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockSession(ctx, tx, lockKey); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, query, id, at)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	return n, nil
}

// DeleteRefreshTokensExpiredBefore implements sessions.Store.
func (s *Sessions) DeleteRefreshTokensExpiredBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("delete expired refresh tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}
