package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// widgets is a tiny migration set used by several tests.
var widgets = fstest.MapFS{
	"00001_init.sql": {Data: []byte(`-- +goose Up
CREATE TABLE widgets (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
-- +goose Down
DROP TABLE widgets;
`)},
	"00002_parts.sql": {Data: []byte(`-- +goose Up
CREATE TABLE parts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    widget_id bigint NOT NULL REFERENCES widgets (id),
    qty       integer NOT NULL CHECK (qty > 0)
);
CREATE INDEX parts_widget_id_idx ON parts (widget_id);
-- +goose Down
DROP TABLE parts;
`)},
}

func TestConnectMetrics(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, pgtest.Options{Schema: "metrics", Migrations: widgets, Role: true})
	ctx := t.Context()
	reg := prometheus.NewRegistry()

	pool, err := postgres.Connect(ctx, db.DSN, postgres.Options{Service: "mining", Registerer: reg, MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "INSERT INTO widgets (name) VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM widgets").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"widgets"}, []string{"name"}, pgx.CopyFromRows([][]any{{"b"}, {"c"}})); err != nil {
		t.Fatal(err)
	}

	// Connecting again for the same service, and for another one, on the same registry must work.
	pool2, err := postgres.Connect(ctx, db.DSN, postgres.Options{Service: "mining", Registerer: reg, MaxConns: 5})
	if err != nil {
		t.Fatalf("second pool for the same service: %v", err)
	}
	defer pool2.Close()
	pool3, err := postgres.Connect(ctx, db.DSN, postgres.Options{Service: "billing", Registerer: reg, MaxConns: 2})
	if err != nil {
		t.Fatalf("pool for another service: %v", err)
	}
	defer pool3.Close()

	if c := testutil.CollectAndCount(reg, "hashinsight_db_query_duration_seconds"); c < 3 {
		t.Errorf("query duration series = %d, want >= 3 (insert, select, copy)", c)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, qt := range []string{"insert", "select", "copy"} {
		h := findMetric(families, "hashinsight_db_query_duration_seconds", map[string]string{"service": "mining", "query_type": qt})
		if h == nil || h.GetHistogram().GetSampleCount() == 0 {
			t.Errorf("no %s observation for service mining", qt)
		}
	}
	for svc, want := range map[string]float64{"mining": 5, "billing": 2} { // gauges follow the newest pool
		m := findMetric(families, "hashinsight_db_connection_pool_max", map[string]string{"service": svc})
		if m == nil || m.GetGauge().GetValue() != want {
			t.Errorf("pool_max{service=%s} = %v, want %v", svc, m.GetGauge().GetValue(), want)
		}
	}
	for _, name := range []string{"size", "active", "idle"} {
		if findMetric(families, "hashinsight_db_connection_pool_"+name, map[string]string{"service": "mining"}) == nil {
			t.Errorf("hashinsight_db_connection_pool_%s{service=mining} missing", name)
		}
	}
}

func findMetric(families []*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == k && lp.GetValue() == v
				}
				if !found {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func TestConnectStatementTimeout(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, pgtest.Options{Schema: "timeouts"})
	tests := []struct {
		name    string
		timeout time.Duration
		want    string
	}{
		{"default", 0, "30s"},
		{"configured", 250 * time.Millisecond, "250ms"},
		{"disabled", -1, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := postgres.Connect(t.Context(), db.DSN, postgres.Options{Service: "timeouts", StatementTimeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var got string
			if err := pool.QueryRow(t.Context(), "SHOW statement_timeout").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("statement_timeout = %q, want %q", got, tt.want)
			}
		})
	}

	pool, err := postgres.Connect(t.Context(), db.DSN, postgres.Options{Service: "timeouts", StatementTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(t.Context(), "SELECT pg_sleep(5)")
	if !postgres.IsTimeout(err) || postgres.SQLState(err) != "57014" {
		t.Errorf("slow statement: got %v, want a 57014 timeout", err)
	}
}

func TestConnectFailure(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	start := time.Now()
	// Port 1 on loopback refuses connections at once.
	_, err := postgres.Connect(t.Context(), "postgres://someone:supersecret@127.0.0.1:1/db?connect_timeout=2",
		postgres.Options{Service: "x", Registerer: reg, PingTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "supersecret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !postgres.IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = false", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("connect failure took %v", d)
	}
	if _, err := postgres.Connect(t.Context(), "postgres://x@h/db", postgres.Options{Registerer: reg}); err == nil {
		t.Error("Registerer without Service: want an error")
	}
	if _, err := postgres.Connect(t.Context(), "postgres://u:supersecret@h:notaport/db", postgres.Options{}); err == nil || strings.Contains(err.Error(), "supersecret") {
		t.Errorf("bad DSN: got %v, want an error without the password", err)
	}
}

func TestErrorHelpers(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, pgtest.Options{Schema: "errs", Migrations: widgets, Role: true})
	ctx := t.Context()

	if _, err := pool.Exec(ctx, "INSERT INTO widgets (name) VALUES ('dup')"); err != nil {
		t.Fatal(err)
	}
	_, dupErr := pool.Exec(ctx, "INSERT INTO widgets (name) VALUES ('dup')")
	_, fkErr := pool.Exec(ctx, "INSERT INTO parts (widget_id, qty) VALUES (999999, 1)")
	_, checkErr := pool.Exec(ctx, "INSERT INTO parts (widget_id, qty) SELECT id, 0 FROM widgets")
	_, nullErr := pool.Exec(ctx, "INSERT INTO widgets (name) VALUES (NULL)")
	_, noTableErr := pool.Exec(ctx, "SELECT * FROM nosuchtable")

	tests := []struct {
		name       string
		err        error
		is         func(error) bool
		constraint string
	}{
		{"unique", dupErr, postgres.IsUniqueViolation, "widgets_name_key"},
		{"unique wrapped", fmt.Errorf("create widget: %w", dupErr), postgres.IsUniqueViolation, "widgets_name_key"},
		{"foreign key", fkErr, postgres.IsForeignKeyViolation, "parts_widget_id_fkey"},
		{"check", checkErr, postgres.IsCheckViolation, "parts_qty_check"},
		{"not null", nullErr, postgres.IsNotNullViolation, ""},
		{"undefined table", noTableErr, postgres.IsUndefinedTable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.is(tt.err) {
				t.Errorf("classifier false for %v", tt.err)
			}
			if got := postgres.ConstraintName(tt.err); got != tt.constraint {
				t.Errorf("ConstraintName = %q, want %q", got, tt.constraint)
			}
		})
	}
	if postgres.IsUniqueViolation(fkErr) || postgres.IsForeignKeyViolation(dupErr) || postgres.IsUniqueViolation(nil) ||
		postgres.IsUniqueViolation(errors.New("23505")) {
		t.Error("classifiers must not match other errors")
	}
}

// ctxT is a short alias used by helpers that need a bounded context outside t.Context.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
