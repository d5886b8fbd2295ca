-- +goose Up
-- The latest state of every collector miner of every site, updated by each ingest. Measurements
-- come from the newest sample; pool_url and worker_name keep their stored values when a sample
-- does not carry them ("latest" upload mode sends them empty).
CREATE TABLE telemetry_latest (
    site               text             NOT NULL,
    collector_miner_id text             NOT NULL,
    miner_id           uuid,
    miner_key          text             NOT NULL DEFAULT '',
    observed_at        timestamptz      NOT NULL,
    online             boolean          NOT NULL,
    hashrate_ghs       double precision NOT NULL,
    temperature_max_c  double precision NOT NULL DEFAULT 0,
    power_w            double precision NOT NULL DEFAULT 0,
    pool_url           text             NOT NULL DEFAULT '',
    worker_name        text             NOT NULL DEFAULT '',
    firmware_version   text             NOT NULL DEFAULT '',
    error_type         text             NOT NULL DEFAULT '',
    error_message      text             NOT NULL DEFAULT '',
    updated_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (site, collector_miner_id)
);
CREATE INDEX telemetry_latest_miner_idx ON telemetry_latest (miner_id) WHERE miner_id IS NOT NULL;

-- +goose Down
DROP TABLE telemetry_latest;
