-- +goose Up
-- Telemetry samples as edge and internal collectors send them, one row per (site, collector
-- miner id, observation time): a replayed upload inserts nothing (ON CONFLICT DO NOTHING).
-- Partitioned by month of observed_at. Partitions are created ahead by this migration and on
-- demand by the ingest path (telemetry_ensure_partition); the default partition takes whatever
-- has no partition (far past or future clock errors), so no sample is ever rejected.
CREATE TABLE telemetry_samples (
    site                text             NOT NULL,
    collector_miner_id  text             NOT NULL,
    observed_at         timestamptz      NOT NULL,
    -- The inventory miner the collector id matched (serial, else name, within the site); NULL
    -- for an unknown id. No foreign key: deleting a miner keeps its history.
    miner_id            uuid,
    miner_key           text             NOT NULL DEFAULT '',
    online              boolean          NOT NULL,
    hashrate_ghs        double precision NOT NULL,
    hashrate_5s_ghs     double precision NOT NULL DEFAULT 0,
    temperature_avg_c   double precision NOT NULL DEFAULT 0,
    temperature_max_c   double precision NOT NULL DEFAULT 0,
    temperature_chips_c double precision[],
    fan_speeds_rpm      double precision[],
    frequency_avg_mhz   double precision NOT NULL DEFAULT 0,
    accepted_shares     bigint           NOT NULL DEFAULT 0,
    rejected_shares     bigint           NOT NULL DEFAULT 0,
    hardware_errors     bigint           NOT NULL DEFAULT 0,
    uptime_seconds      bigint           NOT NULL DEFAULT 0,
    power_w             double precision NOT NULL DEFAULT 0,
    efficiency_j_per_th double precision NOT NULL DEFAULT 0,
    -- NULL when not sent (always in "latest" upload mode).
    pool_url            text,
    worker_name         text,
    firmware_version    text             NOT NULL DEFAULT '',
    error_type          text             NOT NULL DEFAULT '',
    error_message       text             NOT NULL DEFAULT '',
    device_id           text             NOT NULL DEFAULT '',
    zone_id             text             NOT NULL DEFAULT '',
    upload_mode         text             NOT NULL DEFAULT 'raw',
    ingested_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (site, collector_miner_id, observed_at)
) PARTITION BY RANGE (observed_at);
-- No index beyond the key: every index slows ingest, and uptime reads uptime_windows, not samples.
CREATE TABLE telemetry_samples_default PARTITION OF telemetry_samples DEFAULT;

-- telemetry_ensure_partition creates the partition of the month holding t unless it exists and
-- reports whether the month now has its own partition. When the default partition already holds
-- rows of that month the partition cannot be created; those samples stay in the default one.
-- +goose StatementBegin
CREATE FUNCTION telemetry_ensure_partition(t timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text        := 'telemetry_samples_' || to_char(t AT TIME ZONE 'UTC', 'YYYY"m"MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN true;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('telemetry_samples partitions'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN true;
    END IF;
    BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF telemetry_samples FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    EXCEPTION WHEN check_violation THEN
        RETURN false;
    END;
    RETURN true;
END;
$$;
-- +goose StatementEnd

-- The month before this migration ran, its month and the three after.
SELECT telemetry_ensure_partition(now() + make_interval(months => m)) FROM generate_series(-1, 3) AS m;

-- +goose Down
DROP TABLE telemetry_samples;
DROP FUNCTION telemetry_ensure_partition(timestamptz);
