-- +goose Up
-- Monthly SLA reports, one per customer and period (YYYY-MM).
CREATE TABLE sla_reports (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id         uuid        NOT NULL,
    period              text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    uptime_basis_points integer     NOT NULL CHECK (uptime_basis_points BETWEEN 0 AND 10000),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, period)
);

-- +goose Down
DROP TABLE sla_reports;
