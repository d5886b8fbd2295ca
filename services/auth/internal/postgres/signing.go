package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/services/auth/internal/signing"
)

// SigningKeys is the signing.Store on Postgres.
type SigningKeys struct{ pool *pgxpool.Pool }

var _ signing.Store = (*SigningKeys)(nil)

// NewSigningKeys returns the signing-key store.
func NewSigningKeys(pool *pgxpool.Pool) *SigningKeys { return &SigningKeys{pool: pool} }

const keyColumns = `kid, alg, public_key, private_key_enc, created_at, not_after, retired_at`

func scanKey(row pgx.Row) (signing.Record, error) {
	var r signing.Record
	var notAfter, retired *time.Time
	if err := row.Scan(&r.ID, &r.Algorithm, &r.PublicKey, &r.PrivateKeyEnc, &r.CreatedAt, &notAfter, &retired); err != nil {
		return signing.Record{}, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	r.NotAfter, r.RetiredAt = timeOrZero(notAfter), timeOrZero(retired)
	return r, nil
}

// UpdateActive implements signing.Store.
func (s *SigningKeys) UpdateActive(ctx context.Context, now time.Time, fn func(active *signing.Record) (*signing.Record, time.Time, error)) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, signingLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retired_at = $1
			WHERE retired_at IS NULL AND not_after IS NOT NULL AND not_after <= $1`, now); err != nil {
			return fmt.Errorf("retire signing keys: %w", err)
		}
		var active *signing.Record
		r, err := scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM signing_keys
			WHERE not_after IS NULL AND retired_at IS NULL`))
		switch {
		case err == nil:
			active = &r
		case !isNoRows(err):
			return fmt.Errorf("load active signing key: %w", err)
		}
		next, prevNotAfter, err := fn(active)
		if err != nil || next == nil {
			return err
		}
		if active != nil {
			if _, err := tx.Exec(ctx, `UPDATE signing_keys SET not_after = $2 WHERE kid = $1`, active.ID, prevNotAfter); err != nil {
				return fmt.Errorf("rotate out signing key: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, alg, public_key, private_key_enc, created_at)
			VALUES ($1, $2, $3, $4, $5)`, next.ID, next.Algorithm, next.PublicKey, next.PrivateKeyEnc, next.CreatedAt); err != nil {
			return fmt.Errorf("insert signing key: %w", err)
		}
		return nil
	})
}

// Published implements signing.Store.
func (s *SigningKeys) Published(ctx context.Context, now time.Time) ([]signing.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys
		WHERE retired_at IS NULL AND (not_after IS NULL OR not_after > $1)
		ORDER BY created_at DESC`, now)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var out []signing.Record
	for rows.Next() {
		r, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return out, nil
}
