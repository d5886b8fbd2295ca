package telemetry

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/services/mining/internal/telemetry/collectorwire"
)

// Upload modes as stored.
const (
	modeRaw    = "raw"
	modeLatest = "latest"
)

// batch is one set of samples from one site, written atomically.
type batch struct {
	site, deviceID, zoneID string
	mode                   string // modeRaw or modeLatest
	records                []collectorwire.Record
}

// result is what an ingest did.
type result struct {
	received, online, stored, duplicates int64
	// unknown are the collector miner ids that matched no miner of the site, in first-seen order.
	unknown []string
	// touched are the ids of matched miners whose last_seen_at moved.
	touched    []string
	ingestedAt time.Time
}

// Partitions are created on demand only for months near the present; samples of other months
// (clock errors) go to the default partition, so a client cannot make the table grow without
// bound in partitions.
const (
	partitionMonthsBack  = 24
	partitionMonthsAhead = 1
)

// store writes telemetry.
type store struct {
	db  *pgxpool.Pool
	now func() time.Time

	mu     sync.Mutex
	months map[time.Time]bool // months whose partition is known to exist (or cannot)
}

func newStore(db *pgxpool.Pool) *store {
	return &store{db: db, now: time.Now, months: map[time.Time]bool{}}
}

// ingest stores b in one transaction: samples (new ones only; duplicates counted), the latest
// state per collector miner, the 5-minute uptime windows of matched miners and their
// last_seen_at. Nothing is stored when it fails.
func (s *store) ingest(ctx context.Context, b batch) (result, error) {
	res := result{received: int64(len(b.records))}
	for i := range b.records {
		if b.records[i].Online {
			res.online++
		}
	}
	if len(b.records) == 0 {
		res.ingestedAt = s.now().UTC()
		return res, nil
	}
	match, err := s.match(ctx, b.site, b.records)
	if err != nil {
		return result{}, err
	}
	seen := map[string]bool{}
	for i := range b.records {
		id := b.records[i].MinerID
		if _, ok := match[id]; !ok && !seen[id] {
			seen[id] = true
			res.unknown = append(res.unknown, id)
		}
	}
	if err := s.ensurePartitions(ctx, b.records); err != nil {
		return result{}, err
	}

	tx, err := s.db.Begin(ctx)
	if err != nil {
		return result{}, fmt.Errorf("ingest: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// One ingest per site at a time: a miner's windows are written only by uploads of its site,
	// so uptime_days cannot count a window twice, and row locks are never taken in two orders.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('telemetry ingest ' || $1))`, b.site); err != nil {
		return result{}, fmt.Errorf("ingest: site lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE telemetry_incoming
		(LIKE telemetry_samples INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return result{}, fmt.Errorf("ingest: staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"telemetry_incoming"}, incomingColumns,
		&recordSource{b: b, match: match, i: -1}); err != nil {
		return result{}, fmt.Errorf("ingest: copy: %w", err)
	}
	if err := tx.QueryRow(ctx, insertSamples).Scan(&res.stored); err != nil {
		return result{}, fmt.Errorf("ingest: insert samples: %w", err)
	}
	res.duplicates = res.received - res.stored
	if _, err := tx.Exec(ctx, upsertLatest); err != nil {
		return result{}, fmt.Errorf("ingest: latest state: %w", err)
	}
	rows, err := tx.Query(ctx, touchMiners)
	if err != nil {
		return result{}, fmt.Errorf("ingest: last seen: %w", err)
	}
	res.touched, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return result{}, fmt.Errorf("ingest: last seen: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return result{}, fmt.Errorf("ingest: commit: %w", err)
	}
	res.ingestedAt = s.now().UTC()
	return res, nil
}

// match maps the collector miner ids of records to miners of site: the miner whose serial equals
// the id, else the one whose name does.
func (s *store) match(ctx context.Context, site string, records []collectorwire.Record) (map[string]string, error) {
	ids := make([]string, 0, len(records))
	for i := range records {
		ids = append(ids, records[i].MinerID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	rows, err := s.db.Query(ctx, `
		SELECT DISTINCT ON (k) k, id::text FROM (
			SELECT serial AS k, id, 0 AS pri FROM miners WHERE site = $1 AND serial = ANY($2::text[])
			UNION ALL
			SELECT name, id, 1 FROM miners WHERE site = $1 AND name = ANY($2::text[])
		) c ORDER BY k, pri`, site, ids)
	if err != nil {
		return nil, fmt.Errorf("ingest: match miners: %w", err)
	}
	out := map[string]string{}
	var k, id string
	_, err = pgx.ForEachRow(rows, []any{&k, &id}, func() error {
		out[k] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ingest: match miners: %w", err)
	}
	return out, nil
}

// ensurePartitions makes sure the months of records near the present have their partition.
func (s *store) ensurePartitions(ctx context.Context, records []collectorwire.Record) error {
	now := s.now().UTC()
	cur := monthOf(now)
	lo, hi := cur.AddDate(0, -partitionMonthsBack, 0), cur.AddDate(0, partitionMonthsAhead, 0)
	var todo []time.Time
	s.mu.Lock()
	for i := range records {
		m := monthOf(records[i].ObservedAt)
		if m.Before(lo) || m.After(hi) || s.months[m] || slices.Contains(todo, m) {
			continue
		}
		todo = append(todo, m)
	}
	s.mu.Unlock()
	for _, m := range todo {
		var ok bool
		if err := s.db.QueryRow(ctx, `SELECT telemetry_ensure_partition($1)`, m).Scan(&ok); err != nil {
			return fmt.Errorf("ingest: partition of %s: %w", m.Format("2006-01"), err)
		}
		s.mu.Lock()
		s.months[m] = true // created, or held by the default partition: nothing more to do
		s.mu.Unlock()
	}
	return nil
}

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// incomingColumns are the staged columns, in recordSource's order.
var incomingColumns = []string{
	"site", "collector_miner_id", "observed_at", "miner_id", "miner_key", "online", "hashrate_ghs",
	"hashrate_5s_ghs", "temperature_avg_c", "temperature_max_c", "temperature_chips_c", "fan_speeds_rpm",
	"frequency_avg_mhz", "accepted_shares", "rejected_shares", "hardware_errors", "uptime_seconds",
	"power_w", "efficiency_j_per_th", "pool_url", "worker_name", "firmware_version", "error_type",
	"error_message", "device_id", "zone_id", "upload_mode",
}

// recordSource feeds a batch to COPY.
type recordSource struct {
	b     batch
	match map[string]string
	i     int
	row   []any
}

func (r *recordSource) Next() bool {
	r.i++
	return r.i < len(r.b.records)
}

func (r *recordSource) Values() ([]any, error) {
	rec := &r.b.records[r.i]
	var minerID any
	if id, ok := r.match[rec.MinerID]; ok {
		minerID = id
	}
	r.row = append(r.row[:0],
		r.b.site, rec.MinerID, rec.ObservedAt, minerID, rec.MinerKey, rec.Online, rec.HashrateGHs,
		rec.Hashrate5sGHs, rec.TempAvgC, rec.TempMaxC, floats(rec.TempChipsC), floats(rec.FanSpeedsRPM),
		rec.FrequencyAvgMHz, rec.AcceptedShares, rec.RejectedShares, rec.HardwareErrors, rec.UptimeSeconds,
		rec.PowerW, rec.EfficiencyJTH, nullable(rec.PoolURL), nullable(rec.WorkerName), rec.FirmwareVersion,
		rec.ErrorType, rec.ErrorMessage, r.b.deviceID, r.b.zoneID, r.b.mode,
	)
	return r.row, nil
}

func (r *recordSource) Err() error { return nil }

// nullable is NULL for "": a value the sample does not carry.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func floats(f []float64) any {
	if f == nil {
		return nil
	}
	return f
}

// insertSamples moves the staged samples into telemetry_samples (a sample already stored is
// skipped), adds the new ones of matched miners to their 5-minute windows and counts the windows
// that became up in uptime_days, in one statement. It returns the number of samples stored.
const insertSamples = `
WITH ins AS (
	INSERT INTO telemetry_samples (site, collector_miner_id, observed_at, miner_id, miner_key, online,
		hashrate_ghs, hashrate_5s_ghs, temperature_avg_c, temperature_max_c, temperature_chips_c,
		fan_speeds_rpm, frequency_avg_mhz, accepted_shares, rejected_shares, hardware_errors,
		uptime_seconds, power_w, efficiency_j_per_th, pool_url, worker_name, firmware_version,
		error_type, error_message, device_id, zone_id, upload_mode)
	SELECT site, collector_miner_id, observed_at, miner_id, miner_key, online,
		hashrate_ghs, hashrate_5s_ghs, temperature_avg_c, temperature_max_c, temperature_chips_c,
		fan_speeds_rpm, frequency_avg_mhz, accepted_shares, rejected_shares, hardware_errors,
		uptime_seconds, power_w, efficiency_j_per_th, pool_url, worker_name, firmware_version,
		error_type, error_message, device_id, zone_id, upload_mode
	FROM telemetry_incoming
	ORDER BY collector_miner_id, observed_at
	ON CONFLICT DO NOTHING
	RETURNING miner_id, observed_at, hashrate_ghs
), agg AS (
	SELECT miner_id, to_timestamp(floor(extract(epoch FROM observed_at) / 300) * 300) AS window_start,
		count(*) AS samples, sum(hashrate_ghs) AS hashrate_sum, max(hashrate_ghs) AS hashrate_max
	FROM ins WHERE miner_id IS NOT NULL
	GROUP BY 1, 2
), newly_up AS (
	-- Windows that become up now (read before this statement's writes).
	SELECT a.miner_id, a.window_start FROM agg a
	WHERE a.hashrate_max > 0 AND NOT EXISTS (
		SELECT 1 FROM uptime_windows w
		WHERE w.miner_id = a.miner_id AND w.window_start = a.window_start AND w.max_hashrate_ghs > 0)
), windows AS (
	INSERT INTO uptime_windows AS w (miner_id, window_start, samples, hashrate_sum_ghs, max_hashrate_ghs)
	SELECT miner_id, window_start, samples, hashrate_sum, hashrate_max FROM agg
	ORDER BY 1, 2
	ON CONFLICT (miner_id, window_start) DO UPDATE SET
		samples = w.samples + excluded.samples,
		hashrate_sum_ghs = w.hashrate_sum_ghs + excluded.hashrate_sum_ghs,
		max_hashrate_ghs = GREATEST(w.max_hashrate_ghs, excluded.max_hashrate_ghs)
), days AS (
	INSERT INTO uptime_days AS d (miner_id, day, up_windows)
	SELECT miner_id, (window_start AT TIME ZONE 'UTC')::date, count(*) FROM newly_up
	GROUP BY 1, 2 ORDER BY 1, 2
	ON CONFLICT (miner_id, day) DO UPDATE SET up_windows = d.up_windows + excluded.up_windows
)
SELECT count(*) FROM ins`

// upsertLatest updates the latest state of every collector miner of the batch from its newest
// sample. pool_url and worker_name are only replaced by non-empty values.
const upsertLatest = `
INSERT INTO telemetry_latest AS l (site, collector_miner_id, miner_id, miner_key, observed_at, online,
	hashrate_ghs, temperature_max_c, power_w, pool_url, worker_name, firmware_version, error_type,
	error_message)
SELECT DISTINCT ON (collector_miner_id) site, collector_miner_id, miner_id, miner_key, observed_at, online,
	hashrate_ghs, temperature_max_c, power_w, COALESCE(pool_url, ''), COALESCE(worker_name, ''),
	firmware_version, error_type, error_message
FROM telemetry_incoming
ORDER BY collector_miner_id, observed_at DESC
ON CONFLICT (site, collector_miner_id) DO UPDATE SET
	miner_id = excluded.miner_id,
	miner_key = COALESCE(NULLIF(excluded.miner_key, ''), l.miner_key),
	observed_at = excluded.observed_at,
	online = excluded.online,
	hashrate_ghs = excluded.hashrate_ghs,
	temperature_max_c = excluded.temperature_max_c,
	power_w = excluded.power_w,
	pool_url = COALESCE(NULLIF(excluded.pool_url, ''), l.pool_url),
	worker_name = COALESCE(NULLIF(excluded.worker_name, ''), l.worker_name),
	firmware_version = COALESCE(NULLIF(excluded.firmware_version, ''), l.firmware_version),
	error_type = excluded.error_type,
	error_message = excluded.error_message,
	updated_at = now()
WHERE excluded.observed_at >= l.observed_at`

// touchMiners moves last_seen_at of the matched miners forward (never past the present) and
// returns the ids it changed. Rows are locked in id order, as every write of this transaction
// takes its locks in key order, so concurrent uploads of one site wait for each other instead of
// deadlocking.
const touchMiners = `
WITH seen AS (
	SELECT miner_id, LEAST(max(observed_at), now()) AS at
	FROM telemetry_incoming WHERE miner_id IS NOT NULL GROUP BY miner_id
), locked AS (
	SELECT m.id, seen.at FROM miners m JOIN seen ON seen.miner_id = m.id
	WHERE m.last_seen_at IS NULL OR m.last_seen_at < seen.at
	ORDER BY m.id
	FOR UPDATE OF m
)
UPDATE miners m SET last_seen_at = locked.at
FROM locked
WHERE m.id = locked.id AND (m.last_seen_at IS NULL OR m.last_seen_at < locked.at)
RETURNING m.id::text`
