package inventory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	pgkit "github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// minerStore is the SQL of the miners table. Unique violations come back as platform conflicts,
// a missing row as platform.NotFound; other errors are wrapped with the operation.
type minerStore struct {
	db *pgxpool.Pool
}

// minerColumns are the columns scanMiner reads, from miners m joined with miner_models mm.
const minerColumns = `m.id::text, m.name, mm.model, m.model_id::text, coalesce(m.serial, ''), m.site, m.zone,
	coalesce(m.customer_id::text, ''), m.status, m.hashrate_th, m.power_w, m.efficiency_j_per_th, m.notes,
	m.last_seen_at, m.created_at, m.updated_at`

const selectMiners = `SELECT ` + minerColumns + ` FROM miners m JOIN miner_models mm ON mm.id = m.model_id`

func scanMiner(row pgx.Row) (*Miner, error) {
	var m Miner
	err := row.Scan(&m.ID, &m.Name, &m.Model, &m.ModelID, &m.Serial, &m.Site, &m.Zone, &m.CustomerID, &m.Status,
		&m.HashrateTH, &m.PowerW, &m.Efficiency, &m.Notes, &m.LastSeenAt, &m.CreatedAt, &m.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// minerConflict turns a unique violation of the miners table into the conflict on the field the
// caller gave.
func minerConflict(err error) error {
	if !pgkit.IsUniqueViolation(err) {
		return err
	}
	switch pgkit.ConstraintName(err) {
	case "miners_serial_key":
		return platform.Conflict("serial", "another miner has this serial")
	case "miners_site_name_key":
		return platform.Conflict("name", "another miner at this site has this name")
	}
	return err
}

// errUnknownModel answers a model name that is not in the catalogue.
var errUnknownModel = platform.InvalidField("model", "is not a model of the catalogue (see ListMinerModels)")

// create inserts m, resolving m.Model case-insensitively against the catalogue, and returns the
// stored miner.
func (s *minerStore) create(ctx context.Context, m *Miner) (*Miner, error) {
	const q = `WITH mm AS (SELECT id, model FROM miner_models WHERE lower(model) = lower($2)),
	m AS (
		INSERT INTO miners (name, model_id, serial, site, zone, customer_id, status, hashrate_th, power_w,
			efficiency_j_per_th, notes)
		SELECT $1, mm.id, NULLIF($3, ''), $4, $5, NULLIF($6, '')::uuid, $7, $8, $9, $10, $11 FROM mm
		RETURNING *)
	SELECT ` + minerColumns + ` FROM m, mm`
	out, err := scanMiner(s.db.QueryRow(ctx, q, m.Name, m.Model, m.Serial, m.Site, m.Zone, m.CustomerID, m.Status,
		m.HashrateTH, m.PowerW, m.Efficiency, m.Notes))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errUnknownModel
	case err != nil:
		return nil, fmt.Errorf("create miner: %w", minerConflict(err))
	}
	return out, nil
}

// get returns the miner id, whatever its customer (the caller checks the scope).
func (s *minerStore) get(ctx context.Context, id string) (*Miner, error) {
	m, err := scanMiner(s.db.QueryRow(ctx, selectMiners+` WHERE m.id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, platform.NotFound("miner", id)
	case err != nil:
		return nil, fmt.Errorf("get miner: %w", err)
	}
	return m, nil
}

// update locks the miner id, lets change modify it (an error aborts), resolves its model when
// change reports it changed, and stores it. It returns the stored miner.
func (s *minerStore) update(ctx context.Context, id string, change func(*Miner) (modelChanged bool, err error)) (*Miner, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update miner: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op

	m, err := scanMiner(tx.QueryRow(ctx, selectMiners+` WHERE m.id = $1 FOR UPDATE OF m`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, platform.NotFound("miner", id)
	case err != nil:
		return nil, fmt.Errorf("update miner: lock: %w", err)
	}
	modelChanged, err := change(m)
	if err != nil {
		return nil, err
	}
	if modelChanged {
		err := tx.QueryRow(ctx, `SELECT id::text, model FROM miner_models WHERE lower(model) = lower($1)`, m.Model).
			Scan(&m.ModelID, &m.Model)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil, errUnknownModel
		case err != nil:
			return nil, fmt.Errorf("update miner: resolve model: %w", err)
		}
	}
	err = tx.QueryRow(ctx, `UPDATE miners SET name = $2, model_id = $3::uuid, serial = NULLIF($4, ''), site = $5,
		zone = $6, customer_id = NULLIF($7, '')::uuid, status = $8, hashrate_th = $9, power_w = $10,
		efficiency_j_per_th = $11, notes = $12, updated_at = now()
		WHERE id = $1 RETURNING updated_at`,
		m.ID, m.Name, m.ModelID, m.Serial, m.Site, m.Zone, m.CustomerID, m.Status, m.HashrateTH, m.PowerW,
		m.Efficiency, m.Notes).Scan(&m.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("update miner: %w", minerConflict(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("update miner: commit: %w", minerConflict(err))
	}
	return m, nil
}

// delete removes the miner id if scope sees it; a miner outside the scope is NotFound.
func (s *minerStore) delete(ctx context.Context, id string, scope platform.Scope) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM miners m WHERE m.id = $3 AND `+platform.ScopePredicate,
		scope.All, scope.CustomerIDs, id)
	switch {
	case pgkit.IsForeignKeyViolation(err):
		return platform.Precondition("the miner is still referenced and cannot be deleted")
	case err != nil:
		return fmt.Errorf("delete miner: %w", err)
	case tag.RowsAffected() == 0:
		return platform.NotFound("miner", id)
	}
	return nil
}

// minerFilter selects miners for list. Empty fields do not filter.
type minerFilter struct {
	Scope  platform.Scope
	Status string
	Model  string
	Site   string
	// After is the keyset cursor: rows strictly after (AfterTime, AfterID) in (created_at, id)
	// order; zero AfterID starts at the beginning.
	AfterTime time.Time
	AfterID   string
	Limit     int
}

// list returns up to f.Limit miners in (created_at, id) order after the cursor, and the number of
// miners matching the filters (cursor aside).
func (s *minerStore) list(ctx context.Context, f minerFilter) ([]*Miner, int64, error) {
	args := []any{f.Scope.All, f.Scope.CustomerIDs}
	where := []string{platform.ScopePredicate}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Status != "" {
		where = append(where, "m.status = "+arg(f.Status))
	}
	if f.Model != "" {
		where = append(where, "lower(mm.model) = lower("+arg(f.Model)+")")
	}
	if f.Site != "" {
		where = append(where, "m.site = "+arg(f.Site))
	}
	filter := strings.Join(where, " AND ")
	countArgs, cond := args, filter
	if f.AfterID != "" {
		cond += fmt.Sprintf(" AND (m.created_at, m.id) > (%s, %s::uuid)", arg(f.AfterTime), arg(f.AfterID))
	}
	// The total and the page in one round trip (and one implicit transaction).
	var (
		total int64
		out   []*Miner
		batch pgx.Batch
	)
	batch.Queue(`SELECT count(*) FROM miners m JOIN miner_models mm ON mm.id = m.model_id WHERE `+filter,
		countArgs...).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&total); err != nil {
			return fmt.Errorf("count miners: %w", err)
		}
		return nil
	})
	batch.Queue(selectMiners+` WHERE `+cond+` ORDER BY m.created_at, m.id LIMIT `+arg(f.Limit), args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			m, err := scanMiner(rows)
			if err != nil {
				return fmt.Errorf("list miners: scan: %w", err)
			}
			out = append(out, m)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list miners: %w", err)
		}
		return nil
	})
	if err := s.db.SendBatch(ctx, &batch).Close(); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}
