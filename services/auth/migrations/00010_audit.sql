-- +goose Up
-- The tamper-evident audit log (DESIGN §3, manual §6.5). Every entry commits to its predecessor:
-- hash = SHA-256 of the entry's canonical JSON encoding, which includes prev_hash (the previous
-- entry's hash, 64 zeros for the first entry). The chain is computed and verified by
-- internal/audit; the database only keeps it linear and append-only.
CREATE TABLE audit_events (
    -- Position in the chain: 1, 2, 3, ... without gaps (a gap means a deleted entry).
    seq        bigint      PRIMARY KEY CHECK (seq > 0),
    -- The manual's event_id: 16 lower-case hex characters.
    event_id   text        NOT NULL UNIQUE CHECK (event_id ~ '^[0-9a-f]{16}$'),
    -- The manual's timestamp (microsecond precision, as hashed).
    ts         timestamptz NOT NULL,
    level      text        NOT NULL CHECK (level IN ('INFO', 'WARNING', 'SECURITY', 'ERROR')),
    category   text        NOT NULL CHECK (category <> '' AND length(category) <= 64),
    action     text        NOT NULL CHECK (action <> '' AND length(action) <= 64),
    -- Acting principal; empty when unknown (e.g. a failed login for an unknown email). Text, not
    -- uuid: operators and services act too ("operator/alice").
    user_id    text        NOT NULL DEFAULT '',
    user_email text        NOT NULL DEFAULT '',
    user_role  text        NOT NULL DEFAULT '',
    ip_address text        NOT NULL DEFAULT '',
    status     text        NOT NULL CHECK (status IN ('success', 'failure')),
    details    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    prev_hash  text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash       text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    -- No two entries may follow the same predecessor: the chain cannot fork.
    CONSTRAINT audit_events_prev_hash_key UNIQUE (prev_hash)
);
CREATE INDEX audit_events_user_id_seq_idx ON audit_events (user_id, seq) WHERE user_id <> '';
CREATE INDEX audit_events_category_seq_idx ON audit_events (category, seq);
CREATE INDEX audit_events_action_seq_idx ON audit_events (action, seq);
CREATE INDEX audit_events_ts_idx ON audit_events (ts);

-- The chain head: one row, locked FOR UPDATE by every append, so appends from any number of
-- replicas are serialised into one linear chain. It also lets verification notice entries
-- deleted from the end of the chain.
CREATE TABLE audit_chain_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint  NOT NULL CHECK (seq >= 0),
    hash text    NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
INSERT INTO audit_chain_head (id, seq, hash) VALUES (true, 0, repeat('0', 64));

-- Entries are immutable: UPDATE, DELETE and TRUNCATE fail. This stops mistakes, not the schema
-- owner (who can disable the trigger); the hash chain is what detects deliberate tampering.
-- +goose StatementBegin
CREATE FUNCTION audit_events_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_immutable();

-- +goose Down
DROP TABLE audit_chain_head;
DROP TABLE audit_events;
DROP FUNCTION audit_events_immutable();
