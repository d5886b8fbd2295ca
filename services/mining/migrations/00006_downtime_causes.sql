-- +goose Up
-- Downtime causes set through the API for one miner or every miner of a site and a time range
-- [start_time, end_time). Where records overlap, the later one (higher seq) wins.
CREATE TABLE downtime_causes (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    seq                bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    miner_id           uuid,
    site               text        CHECK (site <> '' AND length(site) <= 128),
    cause              text        NOT NULL
                                   CHECK (cause IN ('host_fault', 'curtailment', 'maintenance', 'client_request')),
    start_time         timestamptz NOT NULL,
    end_time           timestamptz NOT NULL,
    note               text        NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    created_by_user_id text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((miner_id IS NULL) <> (site IS NULL)),
    CHECK (end_time > start_time)
);
CREATE INDEX downtime_causes_miner_idx ON downtime_causes (miner_id, start_time) WHERE miner_id IS NOT NULL;
CREATE INDEX downtime_causes_site_idx ON downtime_causes (site, start_time) WHERE site IS NOT NULL;

-- +goose Down
DROP TABLE downtime_causes;
