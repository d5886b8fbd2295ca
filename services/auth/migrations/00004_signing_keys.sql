-- +goose Up
-- Ed25519 keys that sign access tokens. The private key (its 32-byte seed) is stored encrypted:
-- nonce ‖ AES-256-GCM ciphertext under a key derived from ENCRYPTION_PASSWORD, with kid as
-- additional data. Exactly one key is active (not_after and retired_at unset); a rotated-out key
-- gets not_after (when the last token it signed expires) and stays published until then.
CREATE TABLE signing_keys (
    kid             text        PRIMARY KEY CHECK (kid <> '' AND length(kid) <= 64),
    alg             text        NOT NULL CHECK (alg = 'EdDSA'),
    public_key      bytea       NOT NULL CHECK (length(public_key) = 32),
    private_key_enc bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    not_after       timestamptz,
    retired_at      timestamptz
);
-- At most one active key, whatever the replicas do.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE not_after IS NULL AND retired_at IS NULL;

-- +goose Down
DROP TABLE signing_keys;
