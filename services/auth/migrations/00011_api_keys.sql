-- +goose Up
-- API keys (hsi_<env>_key_<random><checksum>) and collector tokens (hsi_<env>_col_...). Only the
-- keyed hash is stored: HMAC-SHA256 of the full credential under a key derived from
-- SESSION_SECRET (pkg/authn/apikey); lookups go through its unique index. The secret is shown
-- once, at creation or rotation.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Owner: the key acts as this user, with at most the scopes below.
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text        NOT NULL CHECK (name <> '' AND length(name) <= 128),
    -- Public display prefix, e.g. hsi_prod_key_AbCdEfGhIjKl (never enough to use the key).
    prefix        text        NOT NULL CHECK (prefix <> ''),
    hash          bytea       NOT NULL CHECK (length(hash) = 32),
    scopes        text[]      NOT NULL CHECK (cardinality(scopes) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- NULL: never expires. Rotation lowers it to the end of the overlap window.
    expires_at    timestamptz,
    revoked_at    timestamptz,
    -- Updated at most once a minute per key, not on every request.
    last_used_at  timestamptz,
    -- The key this one replaced / the key that replaced this one.
    rotated_from  uuid        REFERENCES api_keys (id) ON DELETE SET NULL,
    rotated_to    uuid        REFERENCES api_keys (id) ON DELETE SET NULL,
    -- End of the overlap window set when the key was rotated.
    overlap_until timestamptz,
    CONSTRAINT api_keys_hash_key UNIQUE (hash),
    CONSTRAINT api_keys_expiry_after_creation CHECK (expires_at IS NULL OR expires_at >= created_at)
);
-- Listing (newest first, keyset on created_at, id), for one owner or for everyone.
CREATE INDEX api_keys_user_id_created_at_idx ON api_keys (user_id, created_at DESC, id DESC);
CREATE INDEX api_keys_created_at_idx ON api_keys (created_at DESC, id DESC);
-- A key is rotated at most once: one successor per key.
CREATE UNIQUE INDEX api_keys_rotated_from_key ON api_keys (rotated_from) WHERE rotated_from IS NOT NULL;

-- Collector tokens: site-scoped credentials of edge collectors; they only grant collector:write
-- for their site.
CREATE TABLE collector_tokens (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    site_id      text        NOT NULL CHECK (site_id <> '' AND length(site_id) <= 128),
    name         text        NOT NULL CHECK (name <> '' AND length(name) <= 128),
    prefix       text        NOT NULL CHECK (prefix <> ''),
    hash         bytea       NOT NULL CHECK (length(hash) = 32),
    -- The creating principal: a user id, or an operator identity ("operator/alice").
    created_by   text        NOT NULL CHECK (created_by <> ''),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- NULL: never expires.
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT collector_tokens_hash_key UNIQUE (hash),
    CONSTRAINT collector_tokens_expiry_after_creation CHECK (expires_at IS NULL OR expires_at >= created_at)
);
CREATE INDEX collector_tokens_site_id_created_at_idx ON collector_tokens (site_id, created_at DESC, id DESC);
CREATE INDEX collector_tokens_created_at_idx ON collector_tokens (created_at DESC, id DESC);

-- +goose Down
DROP TABLE collector_tokens;
DROP TABLE api_keys;
