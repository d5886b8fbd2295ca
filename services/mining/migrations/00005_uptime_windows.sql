-- +goose Up
-- One row per matched miner and 5-minute window (UTC-aligned) with at least one sample,
-- maintained by the ingest path from the samples it newly stored (so a replay changes nothing).
-- A window is up when max_hashrate_ghs > 0; windows without a row are down. Uptime queries
-- count these rows instead of scanning samples.
CREATE TABLE uptime_windows (
    miner_id         uuid             NOT NULL,
    window_start     timestamptz      NOT NULL CHECK (extract(epoch FROM window_start)::bigint % 300 = 0),
    samples          integer          NOT NULL CHECK (samples > 0),
    hashrate_sum_ghs double precision NOT NULL,
    max_hashrate_ghs double precision NOT NULL,
    PRIMARY KEY (miner_id, window_start)
);
-- Index-only counts of up windows per miner and period.
CREATE INDEX uptime_windows_up_idx ON uptime_windows (miner_id, window_start) WHERE max_hashrate_ghs > 0;

-- +goose Down
DROP TABLE uptime_windows;
