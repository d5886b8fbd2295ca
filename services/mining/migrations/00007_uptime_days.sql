-- +goose Up
-- Up windows per matched miner and UTC day (at most 288), maintained by the ingest path in the
-- same statement as uptime_windows: a window adds 1 the first time it becomes up. Uptime over
-- whole days sums these rows (one per miner and day) and counts uptime_windows only for the
-- partial days at the edges of a period. Ingest of one site is serialised (an advisory lock), so
-- two uploads cannot both count the same window.
CREATE TABLE uptime_days (
    miner_id   uuid    NOT NULL,
    day        date    NOT NULL,
    up_windows integer NOT NULL CHECK (up_windows BETWEEN 0 AND 288),
    PRIMARY KEY (miner_id, day)
);

-- Windows already stored when this migration runs.
INSERT INTO uptime_days (miner_id, day, up_windows)
SELECT miner_id, (window_start AT TIME ZONE 'UTC')::date, count(*)
FROM uptime_windows WHERE max_hashrate_ghs > 0
GROUP BY 1, 2;

-- +goose Down
DROP TABLE uptime_days;
