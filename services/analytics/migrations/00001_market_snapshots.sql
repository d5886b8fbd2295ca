-- +goose Up
-- Market data as collected; every figure records where it came from.
CREATE TABLE market_snapshots (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    observed_at              timestamptz NOT NULL,
    btc_price_usd_cents      bigint      NOT NULL CHECK (btc_price_usd_cents > 0),
    btc_price_source         text        NOT NULL,
    difficulty               numeric     NOT NULL CHECK (difficulty > 0),
    difficulty_source        text        NOT NULL,
    network_hashrate_ehs     numeric     CHECK (network_hashrate_ehs > 0),
    network_hashrate_source  text,
    avg_fees_per_block_sats  bigint      CHECK (avg_fees_per_block_sats >= 0),
    fees_source              text,
    block_subsidy_sats       bigint      NOT NULL CHECK (block_subsidy_sats > 0),
    created_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX market_snapshots_observed_at_idx ON market_snapshots (observed_at DESC);

-- +goose Down
DROP TABLE market_snapshots;
