package pgtest_test

import (
	"testing"
	"testing/fstest"

	"github.com/hashinsight/platform/pkg/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var notes = fstest.MapFS{
	"00001_notes.sql": {Data: []byte("-- +goose Up\nCREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);\n")},
}

func TestNewGivesEachTestItsOwnMigratedDatabase(t *testing.T) {
	t.Parallel()
	opts := pgtest.Options{Schema: "notes", Migrations: notes}
	a, b := pgtest.New(t, opts), pgtest.New(t, opts)
	if _, err := a.Exec(t.Context(), "INSERT INTO notes VALUES (1, 'only in a')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(t.Context(), "SELECT count(*) FROM notes").Scan(&n); err != nil || n != 0 {
		t.Errorf("second clone sees %d rows (%v), want 0", n, err)
	}
	var dbA, dbB string
	_ = a.QueryRow(t.Context(), "SELECT current_database()").Scan(&dbA)
	_ = b.QueryRow(t.Context(), "SELECT current_database()").Scan(&dbB)
	if dbA == dbB {
		t.Errorf("both pools use database %s", dbA)
	}
}

func TestNewRole(t *testing.T) {
	t.Parallel()
	for _, role := range []bool{true, false} {
		pool := pgtest.New(t, pgtest.Options{Schema: "notes", Migrations: notes, Role: role})
		var user, super, schema, owner string
		err := pool.QueryRow(t.Context(), `
			SELECT current_user, current_setting('is_superuser'), current_schema(), tableowner
			FROM pg_tables WHERE tablename = 'notes'`).Scan(&user, &super, &schema, &owner)
		if err != nil {
			t.Fatal(err)
		}
		// Either way the schema is the search_path and the migrations ran as the schema's role.
		if schema != "notes" || owner != "pgtest_notes" {
			t.Errorf("Role=%v: schema %q, table owner %q", role, schema, owner)
		}
		if role && (user != "pgtest_notes" || super != "off") {
			t.Errorf("Role=true: connected as %q (superuser %s), want pgtest_notes", user, super)
		}
		if !role && user == "pgtest_notes" {
			t.Errorf("Role=false: connected as the schema role")
		}
	}
}

func TestNewDatabaseDropsOnCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		name = pgtest.NewDatabase(t, pgtest.Options{Schema: "notes", Migrations: notes}).Name
	})
	pool := pgtest.New(t, pgtest.Options{Schema: "notes", Migrations: notes})
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		t.Errorf("database %s still exists after its test (%v)", name, err)
	}
}
