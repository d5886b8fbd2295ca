-- +goose Up
-- The miner catalogue: nameplate figures per model, each with its source.
CREATE TABLE miner_models (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor              text          NOT NULL CHECK (vendor <> ''),
    model               text          NOT NULL CHECK (model <> ''),
    hashrate_th         numeric(10,3) NOT NULL CHECK (hashrate_th > 0),
    power_w             integer       NOT NULL CHECK (power_w > 0),
    efficiency_j_per_th numeric(8,2)  NOT NULL CHECK (efficiency_j_per_th > 0),
    source              text          NOT NULL DEFAULT '',
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX miner_models_model_lower_key ON miner_models (lower(model));

-- Seeded from the nameplate catalogue (vendor spec sheets and reviews, source per row).
INSERT INTO miner_models (vendor, model, hashrate_th, power_w, efficiency_j_per_th, source) VALUES
    ('Bitmain', 'Antminer S9', 13.5, 1323, 98.0, 'glassnode insights (nameplate)'),
    ('Bitmain', 'Antminer S17', 56, 2520, 45.0, 'glassnode insights (nameplate)'),
    ('Bitmain', 'Antminer S19', 95, 3250, 34.2, 'miningstore.com spec sheet'),
    ('Bitmain', 'Antminer S19 Pro', 110, 3250, 29.5, 'miningstore.com spec sheet'),
    ('Bitmain', 'Antminer S19j Pro', 100, 3050, 30.5, 'miningstore.com spec sheet'),
    ('Bitmain', 'Antminer S19 XP', 140, 3010, 21.5, 'miningstore.com spec sheet'),
    ('Bitmain', 'Antminer S19 XP Hyd', 255, 5304, 20.8, 'glassnode insights (nameplate)'),
    ('Bitmain', 'Antminer S21', 200, 3500, 17.5, 'vendor launch figures (hackernoon; Lincoin docs)'),
    ('Bitmain', 'Antminer S21 XP', 270, 3645, 13.5, 'retailer spec sheet'),
    ('Bitmain', 'Antminer S21+ Hydro', 319, 4785, 15.0, 'retailer spec sheet (secondary)'),
    ('MicroBT', 'Whatsminer M66S+', 314, 5338, 17.0, 'retailer spec sheet (secondary)'),
    ('Canaan', 'Avalon A1466', 150, 3230, 21.5, 'd-central.tech spec sheet'),
    ('Canaan', 'Avalon A16', 282, 3900, 13.8, 'Hashrate Index review'),
    ('Canaan', 'Avalon A16 XP', 300, 3850, 12.8, 'Hashrate Index review');

-- +goose Down
DROP TABLE miner_models;
