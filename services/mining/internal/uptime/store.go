package uptime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/internal/platform"
)

// minerRow is a miner as uptime needs it.
type minerRow struct {
	id, name, site, customer string
	created                  time.Time
	// first is the start of the miner's first telemetry window, if any.
	first *time.Time
	// span is the counted period of the request (countedSpan).
	span span
}

const minerColumns = `m.id::text, m.name, m.site, COALESCE(m.customer_id::text, ''), m.created_at,
	(SELECT min(w.window_start) FROM uptime_windows w WHERE w.miner_id = m.id)`

func scanMiner(row pgx.Row) (minerRow, error) {
	var r minerRow
	err := row.Scan(&r.id, &r.name, &r.site, &r.customer, &r.created, &r.first)
	return r, err
}

// loadMiner returns one miner; (false) when it does not exist.
func loadMiner(ctx context.Context, db *pgxpool.Pool, id string) (minerRow, bool, error) {
	r, err := scanMiner(db.QueryRow(ctx, `SELECT `+minerColumns+` FROM miners m WHERE m.id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return minerRow{}, false, nil
	case err != nil:
		return minerRow{}, false, fmt.Errorf("load miner: %w", err)
	}
	return r, true, nil
}

// loadMiners returns the miners of scope (and of site when not empty), in id order.
func loadMiners(ctx context.Context, db *pgxpool.Pool, scope platform.Scope, site string) ([]minerRow, error) {
	rows, err := db.Query(ctx, `SELECT `+minerColumns+` FROM miners m
		WHERE `+platform.ScopePredicate+` AND ($3 = '' OR m.site = $3)
		ORDER BY m.id`, scope.All, scope.CustomerIDs, site)
	if err != nil {
		return nil, fmt.Errorf("load miners: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (minerRow, error) { return scanMiner(row) })
	if err != nil {
		return nil, fmt.Errorf("load miners: %w", err)
	}
	return out, nil
}

// query is one count of up windows: miner i's up windows in s.
type query struct {
	miner string
	s     span
}

// WindowsPerDay is the number of windows of a UTC day.
const WindowsPerDay = 86400 / WindowSeconds

// countUp answers the queries in one round trip. The whole UTC days of a span are summed from
// uptime_days; only the windows of the partial days at its edges are counted in uptime_windows.
func countUp(ctx context.Context, db *pgxpool.Pool, qs []query) ([]int64, error) {
	if len(qs) == 0 {
		return nil, nil
	}
	n := len(qs)
	ids := make([]string, n)
	from, days, daysEnd, to := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	for i, q := range qs {
		firstDay := (q.s.from + WindowsPerDay - 1) / WindowsPerDay * WindowsPerDay // ceil (windows are ≥ 0)
		lastDay := q.s.to / WindowsPerDay * WindowsPerDay
		if firstDay >= lastDay { // no whole day: count every window
			firstDay, lastDay = q.s.to, q.s.to
		}
		ids[i] = q.miner
		from[i], days[i], daysEnd[i], to[i] = windowStart(q.s.from), windowStart(firstDay), windowStart(lastDay), windowStart(q.s.to)
	}
	rows, err := db.Query(ctx, `
		SELECT (SELECT count(*) FROM uptime_windows w
		        WHERE w.miner_id = t.m AND w.max_hashrate_ghs > 0
		          AND ((w.window_start >= t.s AND w.window_start < t.ds)
		            OR (w.window_start >= t.de AND w.window_start < t.e)))
		     + COALESCE((SELECT sum(d.up_windows) FROM uptime_days d
		                 WHERE d.miner_id = t.m
		                   AND d.day >= (t.ds AT TIME ZONE 'UTC')::date
		                   AND d.day < (t.de AT TIME ZONE 'UTC')::date), 0)
		FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])
		     WITH ORDINALITY AS t(m, s, ds, de, e, i)
		ORDER BY t.i`, ids, from, days, daysEnd, to)
	if err != nil {
		return nil, fmt.Errorf("count up windows: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("count up windows: %w", err)
	}
	return out, nil
}

// storedRecord is a row of downtime_causes.
type storedRecord struct {
	id, miner, site, note, createdBy string
	seq                              int64
	cause                            miningv1.DowntimeCause
	start, end, created              time.Time
}

const recordColumns = `d.id::text, d.seq, COALESCE(d.miner_id::text, ''), COALESCE(d.site, ''), d.cause,
	d.start_time, d.end_time, d.note, d.created_by_user_id, d.created_at`

func scanRecord(row pgx.CollectableRow) (storedRecord, error) {
	var r storedRecord
	var cause string
	err := row.Scan(&r.id, &r.seq, &r.miner, &r.site, &cause, &r.start, &r.end, &r.note, &r.createdBy, &r.created)
	r.cause = causeFromDB(cause)
	return r, err
}

// loadRecords returns the causes recorded for any of miners (or their sites) that overlap
// [from, to).
func loadRecords(ctx context.Context, db *pgxpool.Pool, miners []minerRow, from, to time.Time) ([]storedRecord, error) {
	ids := make([]string, 0, len(miners))
	sites := make([]string, 0)
	seen := map[string]bool{}
	for _, m := range miners {
		ids = append(ids, m.id)
		if !seen[m.site] {
			seen[m.site] = true
			sites = append(sites, m.site)
		}
	}
	rows, err := db.Query(ctx, `SELECT `+recordColumns+` FROM downtime_causes d
		WHERE (d.miner_id = ANY($1::uuid[]) OR d.site = ANY($2::text[]))
		  AND d.start_time < $4 AND d.end_time > $3
		ORDER BY d.seq`, ids, sites, from, to)
	if err != nil {
		return nil, fmt.Errorf("load downtime causes: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("load downtime causes: %w", err)
	}
	return out, nil
}

// windowRow is a stored uptime window.
type windowRow struct {
	start       time.Time
	samples     int64
	sumGHs, max float64
}

func loadWindows(ctx context.Context, db *pgxpool.Pool, miner string, s span) ([]windowRow, error) {
	rows, err := db.Query(ctx, `SELECT window_start, samples, hashrate_sum_ghs, max_hashrate_ghs
		FROM uptime_windows WHERE miner_id = $1 AND window_start >= $2 AND window_start < $3
		ORDER BY window_start`, miner, windowStart(s.from), windowStart(s.to))
	if err != nil {
		return nil, fmt.Errorf("load windows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (windowRow, error) {
		var w windowRow
		err := row.Scan(&w.start, &w.samples, &w.sumGHs, &w.max)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("load windows: %w", err)
	}
	return out, nil
}

var causeNames = map[miningv1.DowntimeCause]string{
	miningv1.DowntimeCause_DOWNTIME_CAUSE_HOST_FAULT:     "host_fault",
	miningv1.DowntimeCause_DOWNTIME_CAUSE_CURTAILMENT:    "curtailment",
	miningv1.DowntimeCause_DOWNTIME_CAUSE_MAINTENANCE:    "maintenance",
	miningv1.DowntimeCause_DOWNTIME_CAUSE_CLIENT_REQUEST: "client_request",
}

func causeToDB(c miningv1.DowntimeCause) string { return causeNames[c] }

func causeFromDB(s string) miningv1.DowntimeCause {
	for c, name := range causeNames {
		if name == s {
			return c
		}
	}
	return miningv1.DowntimeCause_DOWNTIME_CAUSE_HOST_FAULT
}

func collectAll(rows pgx.Rows) ([]storedRecord, error) { return pgx.CollectRows(rows, scanRecord) }

func collectOne(rows pgx.Rows) (storedRecord, error) {
	return pgx.CollectExactlyOneRow(rows, scanRecord)
}
