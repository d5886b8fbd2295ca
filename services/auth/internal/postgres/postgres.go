// Package postgres implements the auth service's stores (users, refresh tokens, signing keys) on
// its own Postgres schema with pgx, and turns Postgres errors into the domain packages' sentinel
// errors (a duplicate email becomes users.ErrEmailTaken, a missing row users.ErrNotFound, ...).
//
// Transactions that must agree across replicas take transaction-scoped advisory locks: one
// serialises changes that could leave the system without an owner, one serialises signing-key
// creation and rotation.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	pgkit "github.com/hashinsight/platform/pkg/postgres"
)

// Advisory lock keys (pg_advisory_xact_lock), derived from names so they cannot collide with the
// migration lock of another schema.
var (
	ownersLock  = pgkit.LockKey("auth.users.owners")
	signingLock = pgkit.LockKey("auth.signing_keys")
)

// inTx runs fn in a transaction, committing when it returns nil.
func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func lock(ctx context.Context, tx pgx.Tx, key int64) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return fmt.Errorf("advisory lock: %w", err)
	}
	return nil
}

// timeOrZero turns a nullable timestamp into a time (zero for NULL), in UTC.
func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullTime turns a zero time into NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
