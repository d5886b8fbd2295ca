-- +goose Up
-- Tenant scope and login bookkeeping of users.
-- customer_ids: the customers a broker is assigned to. Interim: billing owns broker assignments
-- (ListBrokerAssignments); until it serves them, auth keeps them here and puts them in the
-- broker's tokens. Only brokers have any.
ALTER TABLE users
    ADD COLUMN customer_ids  uuid[]      NOT NULL DEFAULT '{}',
    ADD COLUMN last_login_at timestamptz,
    ADD CONSTRAINT users_customer_ids_only_broker CHECK (role = 'broker' OR cardinality(customer_ids) = 0),
    ADD CONSTRAINT users_customer_id_only_client CHECK (role = 'client' OR customer_id IS NULL),
    ADD CONSTRAINT users_email_lower CHECK (email = lower(email));
-- ListUsers pages in creation order.
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

-- +goose Down
DROP INDEX users_created_at_id_idx;
ALTER TABLE users
    DROP CONSTRAINT users_email_lower,
    DROP CONSTRAINT users_customer_id_only_client,
    DROP CONSTRAINT users_customer_ids_only_broker,
    DROP COLUMN last_login_at,
    DROP COLUMN customer_ids;
