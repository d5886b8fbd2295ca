-- +goose Up
-- Hosting clients. Contact PII is stored encrypted (envelope-encrypted with the key-encryption key).
CREATE TABLE customers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text        NOT NULL CHECK (name <> '' AND length(name) <= 200),
    contact_enc     bytea,
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'erased')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE customers;
