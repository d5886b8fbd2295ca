// Package auditpg is the PostgreSQL implementation of [audit.Store]: the audit_events table and
// the single-row audit_chain_head of migration 00010_audit.sql, in the auth schema.
package auditpg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/services/auth/internal/audit"
)

// walkBatch is how many entries Walk reads per query.
const walkBatch = 1000

// columns is the select list scanEvent reads.
const columns = `seq, event_id, ts, level, category, action, user_id, user_email, user_role,
	ip_address, status, details, prev_hash, hash`

// Store implements audit.Store on a pgx pool whose search_path is the auth schema.
type Store struct {
	pool *pgxpool.Pool
}

var _ audit.Store = (*Store)(nil)

// New returns a Store using pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Append implements audit.Store: the chain head row is locked FOR UPDATE for the whole
// transaction, so concurrent appends (from any replica) queue on it and each one extends the
// head the previous one committed. The inserts and the head update go in one batch (one round
// trip), however many events are appended.
func (s *Store) Append(ctx context.Context, seal func(audit.Head) ([]audit.Event, error)) ([]audit.Event, error) {
	var stored []audit.Event
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var head audit.Head
		if err := tx.QueryRow(ctx,
			`SELECT seq, hash FROM audit_chain_head WHERE id FOR UPDATE`).Scan(&head.Seq, &head.Hash); err != nil {
			return fmt.Errorf("lock chain head: %w", err)
		}
		events, err := seal(head)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return errors.New("nothing to append")
		}
		batch := &pgx.Batch{}
		prev := head
		for _, e := range events {
			if e.Seq != prev.Seq+1 || e.PrevHash != prev.Hash {
				return fmt.Errorf("sealed event does not extend the chain (seq %d after %d)", e.Seq, prev.Seq)
			}
			details, err := json.Marshal(e.Details)
			if err != nil {
				return fmt.Errorf("encode details: %w", err)
			}
			if e.Details == nil {
				details = []byte("{}")
			}
			batch.Queue(`INSERT INTO audit_events (seq, event_id, ts, level, category, action, user_id, user_email,
					user_role, ip_address, status, details, prev_hash, hash)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
				e.Seq, e.ID, e.Timestamp, string(e.Level), e.Category, e.Action, e.UserID, e.UserEmail,
				e.UserRole, e.IPAddress, e.Status, details, e.PrevHash, e.Hash)
			prev = audit.Head{Seq: e.Seq, Hash: e.Hash}
		}
		batch.Queue(`UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id`, prev.Seq, prev.Hash)
		br := tx.SendBatch(ctx, batch)
		for _, e := range events {
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				if postgres.IsUniqueViolation(err) && postgres.ConstraintName(err) == "audit_events_event_id_key" {
					return fmt.Errorf("%w: %s", audit.ErrDuplicateEventID, e.ID)
				}
				return fmt.Errorf("insert entry %d: %w", e.Seq, err)
			}
		}
		tag, err := br.Exec()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("advance chain head: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return errors.New("chain head row is missing")
		}
		stored = events
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auditpg: append: %w", err)
	}
	return stored, nil
}

// Head implements audit.Store.
func (s *Store) Head(ctx context.Context) (audit.Head, error) {
	var h audit.Head
	if err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head WHERE id`).Scan(&h.Seq, &h.Hash); err != nil {
		return audit.Head{}, fmt.Errorf("auditpg: read chain head: %w", err)
	}
	return h, nil
}

// Get implements audit.Store.
func (s *Store) Get(ctx context.Context, seq int64) (audit.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM audit_events WHERE seq = $1`, seq)
	if err != nil {
		return audit.Event{}, fmt.Errorf("auditpg: get %d: %w", seq, err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEvent)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return audit.Event{}, fmt.Errorf("auditpg: get %d: %w", seq, audit.ErrNotFound)
	case err != nil:
		return audit.Event{}, fmt.Errorf("auditpg: get %d: %w", seq, err)
	}
	return e, nil
}

// List implements audit.Store.
func (s *Store) List(ctx context.Context, q audit.Query) ([]audit.Event, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.UserID != "" {
		add("user_id = ?", q.UserID)
	}
	if q.Actor != "" {
		add("user_id = ?", q.Actor)
	}
	if q.Category != "" {
		add("category = ?", q.Category)
	}
	if q.Action != "" {
		add("action = ?", q.Action)
	}
	if len(q.Levels) > 0 {
		levels := make([]string, len(q.Levels))
		for i, l := range q.Levels {
			levels[i] = string(l)
		}
		add("level = ANY(?)", levels)
	}
	if !q.From.IsZero() {
		add("ts >= ?", q.From)
	}
	if !q.To.IsZero() {
		add("ts < ?", q.To)
	}
	if q.BeforeSeq > 0 {
		add("seq < ?", q.BeforeSeq)
	}
	sql := `SELECT ` + columns + ` FROM audit_events`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, q.Limit)
	sql += ` ORDER BY seq DESC LIMIT $` + strconv.Itoa(len(args))

	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("auditpg: list: %w", err)
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("auditpg: list: %w", err)
	}
	return events, nil
}

// Walk implements audit.Store with keyset batches of walkBatch entries.
func (s *Store) Walk(ctx context.Context, from, to int64, fn func(audit.Event) error) error {
	after := from - 1
	for {
		rows, err := s.pool.Query(ctx,
			`SELECT `+columns+` FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
			after, to, walkBatch)
		if err != nil {
			return fmt.Errorf("auditpg: walk after %d: %w", after, err)
		}
		batch, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return fmt.Errorf("auditpg: walk after %d: %w", after, err)
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(batch) < walkBatch {
			return nil
		}
		after = batch[len(batch)-1].Seq
	}
}

// scanEvent reads one row of columns.
func scanEvent(row pgx.CollectableRow) (audit.Event, error) {
	var (
		e       audit.Event
		level   string
		ts      time.Time
		details []byte
	)
	if err := row.Scan(&e.Seq, &e.ID, &ts, &level, &e.Category, &e.Action, &e.UserID, &e.UserEmail,
		&e.UserRole, &e.IPAddress, &e.Status, &details, &e.PrevHash, &e.Hash); err != nil {
		return audit.Event{}, err
	}
	e.Level = audit.Level(level)
	e.Timestamp = ts.UTC()
	d, err := audit.DecodeDetails(details)
	if err != nil {
		return audit.Event{}, fmt.Errorf("decode details of entry %d: %w", e.Seq, err)
	}
	e.Details = d
	return e, nil
}
