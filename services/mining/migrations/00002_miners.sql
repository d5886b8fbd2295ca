-- +goose Up
-- The fleet inventory. A miner's model is a catalogue entry; its figures are its own (a tuned or
-- degraded unit differs from the nameplate). Status values are the API's, lower-case.
CREATE TABLE miners (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text             NOT NULL CHECK (name <> '' AND length(name) <= 128),
    model_id            uuid             NOT NULL REFERENCES miner_models (id),
    -- NULL when the miner has no serial; unique otherwise.
    serial              text             CHECK (serial <> '' AND length(serial) <= 128),
    site                text             NOT NULL DEFAULT '' CHECK (length(site) <= 128),
    zone                text             NOT NULL DEFAULT '' CHECK (length(zone) <= 128),
    -- The owning hosting customer (billing's customer id); NULL when unassigned.
    customer_id         uuid,
    status              text             NOT NULL DEFAULT 'active'
                                         CHECK (status IN ('active', 'offline', 'maintenance', 'retired')),
    hashrate_th         double precision NOT NULL CHECK (hashrate_th > 0 AND hashrate_th <= 10000),
    power_w             double precision NOT NULL CHECK (power_w > 0 AND power_w <= 100000),
    efficiency_j_per_th double precision NOT NULL CHECK (efficiency_j_per_th > 0 AND efficiency_j_per_th <= 5000),
    notes               text             NOT NULL DEFAULT '' CHECK (length(notes) <= 2000),
    last_seen_at        timestamptz,
    created_at          timestamptz      NOT NULL DEFAULT now(),
    updated_at          timestamptz      NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX miners_serial_key ON miners (serial) WHERE serial IS NOT NULL;
CREATE UNIQUE INDEX miners_site_name_key ON miners (site, name);
-- Stable pagination (creation time, then id), overall and per customer.
CREATE INDEX miners_created_idx ON miners (created_at, id);
CREATE INDEX miners_customer_created_idx ON miners (customer_id, created_at, id);
CREATE INDEX miners_model_idx ON miners (model_id);
CREATE INDEX miners_status_idx ON miners (status);

-- +goose Down
DROP TABLE miners;
