package postgres_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
)

// schemaListing describes every column of every relation in schema, plus its indexes and owners.
func schemaListing(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT c.table_name || '.' || c.column_name || ' ' || c.data_type || ' ' || c.is_nullable
		FROM information_schema.columns c WHERE c.table_schema = $1
		UNION ALL
		SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = $1
		UNION ALL
		SELECT 'owner ' || tablename || ' ' || tableowner FROM pg_tables WHERE schemaname = $1
		ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	listing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return listing
}

func TestMigrateSecondRunAppliesNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, pgtest.Options{Schema: "migr", Role: true})
	ctx := t.Context()
	pool, err := postgres.Connect(ctx, db.DSN, postgres.Options{Service: "migr"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	applied, err := postgres.Migrate(ctx, pool, "migr", widgets)
	if err != nil || applied != 2 {
		t.Fatalf("first run: applied %d, %v; want 2", applied, err)
	}
	before := schemaListing(t, pool, "migr")
	if !slices.Contains(before, "owner widgets "+db.Service.Role) || !slices.Contains(before, "owner "+postgres.VersionTable+" "+db.Service.Role) {
		t.Errorf("tables not owned by the service role: %q", before)
	}

	applied, err = postgres.Migrate(ctx, pool, "migr", widgets)
	if err != nil || applied != 0 {
		t.Fatalf("second run: applied %d, %v; want 0", applied, err)
	}
	if after := schemaListing(t, pool, "migr"); !slices.Equal(before, after) {
		t.Errorf("second run changed the schema:\nbefore %q\nafter  %q", before, after)
	}
	current, latest, err := postgres.Version(ctx, pool, "migr", widgets)
	if err != nil || current != 2 || latest != 2 {
		t.Errorf("Version = %d, %d, %v; want 2, 2", current, latest, err)
	}
	var inPublic bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('public.goose_db_version') IS NOT NULL").Scan(&inPublic); err != nil || inPublic {
		t.Errorf("version table in public: %v, %v", inPublic, err)
	}

	// A new migration shipped later is applied on the next start.
	next := fstest.MapFS{"00003_color.sql": {Data: []byte("-- +goose Up\nALTER TABLE widgets ADD COLUMN color text;\n")}}
	for k, v := range widgets {
		next[k] = v
	}
	if applied, err := postgres.Migrate(ctx, pool, "migr", next); err != nil || applied != 1 {
		t.Errorf("third run with a new file: applied %d, %v; want 1", applied, err)
	}
}

func TestMigratePinsSearchPath(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, pgtest.Options{Schema: "pinned"})
	// The superuser's plain DSN has search_path "$user", public: Migrate must still use the schema.
	pool, err := pgxpool.New(t.Context(), db.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.Migrate(t.Context(), pool, "pinned", widgets); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := pool.QueryRow(t.Context(), "SELECT schemaname FROM pg_tables WHERE tablename = 'widgets'").Scan(&schema); err != nil || schema != "pinned" {
		t.Errorf("widgets created in %q (%v), want pinned", schema, err)
	}
	var sp string
	if err := pool.QueryRow(t.Context(), "SHOW search_path").Scan(&sp); err != nil || sp != `"$user", public` {
		t.Errorf("the caller's pool was modified: search_path %q, %v", sp, err)
	}
}

func TestMigrateConcurrentReplicas(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDatabase(t, pgtest.Options{Schema: "replicas", Role: true})
	ctx := t.Context()
	const replicas = 3
	var wg sync.WaitGroup
	applied := make([]int, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			// Each replica has its own pool, as separate processes would.
			pool, err := postgres.Connect(ctx, db.DSN, postgres.Options{Service: "replicas", MaxConns: 2})
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = postgres.Migrate(ctx, pool, "replicas", widgets)
		})
	}
	wg.Wait()
	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != 2 {
		t.Errorf("applied %v in total %d, want each of the 2 migrations once", applied, total)
	}
	conn, err := pgx.Connect(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var rows int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM replicas.goose_db_version WHERE version_id > 0").Scan(&rows); err != nil || rows != 2 {
		t.Errorf("version rows = %d, %v; want 2", rows, err)
	}
}

func TestMigrateFailureIsAtomic(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, pgtest.Options{Schema: "broken", Role: true})
	bad := fstest.MapFS{
		"00001_ok.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE ok (id int);\n")},
		"00002_bad.sql": {Data: []byte("-- +goose Up\nCREATE TABLE half (id int);\nSELECT no_such_function();\n")},
	}
	applied, err := postgres.Migrate(t.Context(), pool, "broken", bad)
	if err == nil {
		t.Fatal("want an error from the broken migration")
	}
	if applied != 1 {
		t.Errorf("applied = %d, want 1 (the good migration)", applied)
	}
	var half bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass('broken.half') IS NOT NULL").Scan(&half); err != nil || half {
		t.Errorf("the failed migration left table half behind (%v)", err)
	}
	if _, err := postgres.Migrate(t.Context(), pool, "broken", fstest.MapFS{"README.md": {}}); err == nil {
		t.Error("no migration files: want an error")
	}
	if _, err := postgres.Migrate(t.Context(), pool, "Bad-Schema", widgets); err == nil {
		t.Error("invalid schema: want an error")
	}
}
