package importer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	pgkit "github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// importLockKey is the transaction-level advisory lock that serialises writing imports, so that
// two uploads of overlapping files see each other's rows instead of racing on the unique indexes.
const importLockKey = 0x6d696e696d707274 // "minimprt"

// analyzeAbove is the staging size from which the staging table is analysed before the
// set-based statements, so that the planner joins it by hash rather than row by row.
const analyzeAbove = 1000

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadCatalogue returns the catalogue as lower-case model name → id.
func loadCatalogue(ctx context.Context, q querier) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT id::text, lower(model) FROM miner_models`)
	if err != nil {
		return nil, fmt.Errorf("load catalogue: %w", err)
	}
	models := map[string]string{}
	var id, name string
	_, err = pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		models[name] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load catalogue: %w", err)
	}
	return models, nil
}

// stage creates the transaction's staging table and copies rows into it.
func stage(ctx context.Context, tx pgx.Tx, rows []row) error {
	_, err := tx.Exec(ctx, `
CREATE TEMP TABLE import_rows (
    line        bigint           NOT NULL,
    name        text             NOT NULL,
    model_id    uuid             NOT NULL,
    serial      text,
    site        text             NOT NULL,
    customer_id uuid,
    hashrate_th double precision NOT NULL,
    power_w     double precision NOT NULL,
    efficiency  double precision NOT NULL,
    match_id    uuid
) ON COMMIT DROP`)
	if err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	cols := []string{"line", "name", "model_id", "serial", "site", "customer_id", "hashrate_th", "power_w", "efficiency"}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"import_rows"}, cols, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		return []any{r.line, r.name, r.modelID, nullable(r.serial), r.site, nullable(r.customerID),
			r.hashrateTH, r.powerW, r.efficiency}, nil
	}))
	if err != nil {
		return fmt.Errorf("copy into staging table: %w", err)
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("copy into staging table: %d of %d rows copied", n, len(rows))
	}
	if len(rows) > analyzeAbove {
		if _, err := tx.Exec(ctx, `ANALYZE import_rows`); err != nil {
			return fmt.Errorf("analyze staging table: %w", err)
		}
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkNew reports staged rows that collide with existing miners (insert mode).
func checkNew(ctx context.Context, tx pgx.Tx) ([]rowError, error) {
	return queryErrors(ctx, tx, `
SELECT s.line, 'serial', 'a miner with this serial already exists (import with upsert to update it)'
  FROM import_rows s JOIN miners m ON m.serial = s.serial
UNION ALL
SELECT s.line, 'name', format('a miner with this name already exists at site %L (import with upsert to update it)', s.site)
  FROM import_rows s JOIN miners m ON m.site = s.site AND m.name = s.name`)
}

// match links staged rows to the existing miners they update (upsert mode): by serial, else by
// site and name. It reports rows that match a miner outside the caller's scope, several rows
// that match one miner, and updates that would take another miner's name at a site.
func match(ctx context.Context, tx pgx.Tx, scope platform.Scope, keepSite bool) ([]rowError, error) {
	if _, err := tx.Exec(ctx, `
UPDATE import_rows s SET match_id = m.id FROM miners m WHERE m.serial = s.serial`); err != nil {
		return nil, fmt.Errorf("match by serial: %w", err)
	}
	if _, err := tx.Exec(ctx, `
UPDATE import_rows s SET match_id = m.id FROM miners m
 WHERE s.match_id IS NULL AND m.site = s.site AND m.name = s.name`); err != nil {
		return nil, fmt.Errorf("match by site and name: %w", err)
	}
	return queryErrors(ctx, tx, `
SELECT s.line, CASE WHEN m.serial = s.serial THEN 'serial' ELSE 'name' END,
       CASE WHEN m.serial = s.serial THEN 'a miner with this serial already exists'
            ELSE 'a miner with this name already exists at this site' END
  FROM import_rows s JOIN miners m ON m.id = s.match_id
 WHERE NOT ($1::bool OR COALESCE(m.customer_id = ANY($2::uuid[]), false))
UNION ALL
SELECT line, '', format('updates the same existing miner as line %s', first)
  FROM (SELECT line, min(line) OVER (PARTITION BY match_id) AS first FROM import_rows WHERE match_id IS NOT NULL) d
 WHERE line <> first
UNION ALL
SELECT s.line, 'name', format('another miner already has this name at site %L', o.site)
  FROM import_rows s
  JOIN miners m ON m.id = s.match_id
  JOIN miners o ON o.site = CASE WHEN $3::bool THEN m.site ELSE s.site END AND o.name = s.name AND o.id <> m.id`,
		scope.All, scope.CustomerIDs, keepSite)
}

// queryErrors runs a query returning (line, column, reason) rows.
func queryErrors(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]rowError, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("check against existing miners: %w", err)
	}
	var (
		out []rowError
		e   rowError
	)
	_, err = pgx.ForEachRow(rows, []any{&e.line, &e.column, &e.reason}, func() error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check against existing miners: %w", err)
	}
	return out, nil
}

// counts are what a write did.
type counts struct {
	created, updated, unchanged int64
	updatedIDs                  []string
}

// update applies matched rows that differ from their miner (upsert mode). Optional columns the
// file left empty keep the miner's value; site is kept when the file has no site column.
func update(ctx context.Context, tx pgx.Tx, keepSite bool) (counts, error) {
	var c counts
	rows, err := tx.Query(ctx, `
WITH target AS (
    SELECT s.match_id AS id, s.name, s.model_id, s.hashrate_th, s.power_w, s.efficiency,
           CASE WHEN $1::bool THEN m.site ELSE s.site END AS site,
           COALESCE(s.serial, m.serial) AS serial,
           COALESCE(s.customer_id, m.customer_id) AS customer_id
      FROM import_rows s JOIN miners m ON m.id = s.match_id
)
UPDATE miners m
   SET name = t.name, model_id = t.model_id, hashrate_th = t.hashrate_th, power_w = t.power_w,
       efficiency_j_per_th = t.efficiency, site = t.site, serial = t.serial,
       customer_id = t.customer_id, updated_at = now()
  FROM target t
 WHERE m.id = t.id
   AND (m.name, m.model_id, m.hashrate_th, m.power_w, m.efficiency_j_per_th, m.site, m.serial, m.customer_id)
       IS DISTINCT FROM
       (t.name, t.model_id, t.hashrate_th, t.power_w, t.efficiency, t.site, t.serial, t.customer_id)
RETURNING m.id::text`, keepSite)
	if err != nil {
		return c, fmt.Errorf("update miners: %w", err)
	}
	c.updatedIDs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return c, fmt.Errorf("update miners: %w", err)
	}
	c.updated = int64(len(c.updatedIDs))
	var matched int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM import_rows WHERE match_id IS NOT NULL`).Scan(&matched); err != nil {
		return c, fmt.Errorf("count matched rows: %w", err)
	}
	c.unchanged = matched - c.updated
	return c, nil
}

// insert creates a miner for every staged row without a match.
func insert(ctx context.Context, tx pgx.Tx) (int64, error) {
	tag, err := tx.Exec(ctx, `
INSERT INTO miners (name, model_id, serial, site, customer_id, hashrate_th, power_w, efficiency_j_per_th)
SELECT name, model_id, serial, site, customer_id, hashrate_th, power_w, efficiency
  FROM import_rows WHERE match_id IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("insert miners: %w", err)
	}
	return tag.RowsAffected(), nil
}

// conflictErr turns a unique violation (a concurrent writer took a serial or a name) into a
// Conflict; other errors pass unchanged.
func conflictErr(err error) error {
	if !pgkit.IsUniqueViolation(err) {
		return err
	}
	field := "name"
	if pgkit.ConstraintName(err) == "miners_serial_key" {
		field = "serial"
	}
	return errors.Join(platform.Conflict(field,
		"another write took a serial or name of this file while it was imported; nothing was written, try again"), err)
}
