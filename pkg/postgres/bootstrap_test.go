package postgres_test

import (
	"crypto/rand"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
)

// scratch returns the admin DSN of an empty database and two services with roles unique to this
// test (roles are cluster-wide; the database is not). The roles are dropped after the database.
func scratch(t *testing.T) (adminDSN string, mining, billing postgres.Service) {
	t.Helper()
	suffix := strings.ToLower(rand.Text()[:8])
	mining = postgres.Service{Schema: "mining", Role: "t" + suffix + "_mining", Password: `pw 'with' \quotes\`}
	billing = postgres.Service{Schema: "billing", Role: "t" + suffix + "_billing", Password: "pässwört-ünïcode"}
	clusterDSN := pgtest.AdminDSN(t)
	t.Cleanup(func() { // registered first, so it runs after the database is dropped
		conn, err := pgx.Connect(ctxT(t), clusterDSN)
		if err != nil {
			t.Errorf("drop roles: %v", err)
			return
		}
		defer conn.Close(ctxT(t))
		for _, r := range []string{mining.Role, billing.Role} {
			if _, err := conn.Exec(ctxT(t), "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize()); err != nil {
				t.Errorf("drop role %s: %v", r, err)
			}
		}
	})
	db := pgtest.NewDatabase(t, pgtest.Options{Schema: "scratch"})
	return db.AdminDSN, mining, billing
}

// connectAs connects to the database of adminDSN as svc's role, by password.
func connectAs(t *testing.T, adminDSN string, svc postgres.Service) *pgx.Conn {
	t.Helper()
	dsn, err := svc.DSN(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect as %s: %v", svc.Role, err)
	}
	t.Cleanup(func() { conn.Close(ctxT(t)) })
	return conn
}

func TestBootstrapIdempotent(t *testing.T) {
	t.Parallel()
	adminDSN, mining, _ := scratch(t)
	ctx := t.Context()
	if err := postgres.Bootstrap(ctx, adminDSN, mining); err != nil {
		t.Fatalf("first bootstrap: %v", err)
	}
	conn := connectAs(t, adminDSN, mining)
	if _, err := conn.Exec(ctx, "CREATE TABLE miners (id int PRIMARY KEY); INSERT INTO miners VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	mining.Password = "rotated-password"
	if err := postgres.Bootstrap(ctx, adminDSN, mining); err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	conn = connectAs(t, adminDSN, mining) // with the new password
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM miners").Scan(&n); err != nil || n != 1 {
		t.Fatalf("data after second bootstrap: n=%d err=%v", n, err)
	}

	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctxT(t))
	var owner, acl string
	var config []string
	var super, createRole, createDB bool
	err = admin.QueryRow(ctx, `
		SELECT pg_get_userbyid(n.nspowner), coalesce(n.nspacl::text, ''), coalesce(r.rolconfig, '{}'),
		       r.rolsuper, r.rolcreaterole, r.rolcreatedb
		FROM pg_namespace n, pg_roles r WHERE n.nspname = $1 AND r.rolname = $2`, mining.Schema, mining.Role).
		Scan(&owner, &acl, &config, &super, &createRole, &createDB)
	if err != nil {
		t.Fatal(err)
	}
	if owner != mining.Role {
		t.Errorf("schema owner = %q, want %q", owner, mining.Role)
	}
	for _, item := range strings.Split(strings.Trim(acl, "{}"), ",") {
		if strings.HasPrefix(item, "=") { // aclitem "=UC/owner" is a grant to PUBLIC
			t.Errorf("schema ACL %q grants PUBLIC privileges", acl)
		}
	}
	if !strings.Contains(strings.Join(config, ","), "search_path=mining") {
		t.Errorf("role config %q lacks search_path=mining", config)
	}
	if super || createRole || createDB {
		t.Errorf("role has elevated attributes: super=%v createrole=%v createdb=%v", super, createRole, createDB)
	}
}

func TestBootstrapConcurrent(t *testing.T) {
	t.Parallel()
	adminDSN, mining, _ := scratch(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = postgres.Bootstrap(t.Context(), adminDSN, mining) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("bootstrap %d: %v", i, err)
		}
	}
	connectAs(t, adminDSN, mining)
}

func TestBootstrapRejectsBadNames(t *testing.T) {
	t.Parallel()
	for _, svc := range []postgres.Service{
		{Schema: `mining"; DROP SCHEMA billing; --`, Role: "r"},
		{Schema: "mining", Role: "Robert'); DROP TABLE students;--"},
		{Schema: "public", Role: "r"},
	} {
		// The DSN is never dialled: validation comes first.
		if err := postgres.Bootstrap(t.Context(), "postgres://nobody@127.0.0.1:1/none", svc); err == nil {
			t.Errorf("Bootstrap(%+v): want a validation error", svc)
		}
	}
}

// TestSchemaIsolation is the "one service's role cannot read another service's schema".
func TestSchemaIsolation(t *testing.T) {
	t.Parallel()
	adminDSN, mining, billing := scratch(t)
	ctx := t.Context()
	for _, svc := range []postgres.Service{mining, billing} {
		if err := postgres.Bootstrap(ctx, adminDSN, svc); err != nil {
			t.Fatalf("bootstrap %s: %v", svc.Schema, err)
		}
	}
	asBilling := connectAs(t, adminDSN, billing)
	if _, err := asBilling.Exec(ctx, "CREATE TABLE invoices (id int, amount_cents bigint); INSERT INTO invoices VALUES (1, 100)"); err != nil {
		t.Fatalf("billing creates its own table: %v", err)
	}
	var where string
	if err := asBilling.QueryRow(ctx, "SELECT schemaname FROM pg_tables WHERE tablename = 'invoices'").Scan(&where); err != nil || where != "billing" {
		t.Fatalf("invoices landed in %q (%v), want billing", where, err)
	}

	asMining := connectAs(t, adminDSN, mining)
	if _, err := asMining.Exec(ctx, "CREATE TABLE miners (id int)"); err != nil {
		t.Fatalf("mining creates its own table: %v", err)
	}
	tests := []struct {
		name string
		conn *pgx.Conn
		sql  string
		code string
	}{
		{"mining reads billing", asMining, "SELECT * FROM billing.invoices", "42501"},
		{"mining writes billing", asMining, "INSERT INTO billing.invoices VALUES (2, 1)", "42501"},
		{"mining creates in billing", asMining, "CREATE TABLE billing.evil (id int)", "42501"},
		{"mining creates in public", asMining, "CREATE TABLE public.evil (id int)", "42501"},
		{"mining becomes billing", asMining, "SET ROLE " + pgx.Identifier{billing.Role}.Sanitize(), "42501"},
		{"mining drops billing", asMining, "DROP SCHEMA billing CASCADE", "42501"},
		{"billing reads mining", asBilling, "SELECT * FROM mining.miners", "42501"},
		{"unqualified name stays in own schema", asMining, "SELECT * FROM invoices", "42P01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.conn.Exec(ctx, tt.sql)
			if err == nil || postgres.SQLState(err) != tt.code {
				t.Fatalf("%s: got %v, want SQLSTATE %s", tt.sql, err, tt.code)
			}
			if tt.code == "42501" && !postgres.IsInsufficientPrivilege(err) {
				t.Errorf("IsInsufficientPrivilege(%v) = false", err)
			}
		})
	}

	// Someone grants mining billing's role, the catch-all read role and a table: bootstrapping
	// mining again (a restart) takes all of that back.
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctxT(t))
	m, b := pgx.Identifier{mining.Role}.Sanitize(), pgx.Identifier{billing.Role}.Sanitize()
	if _, err := admin.Exec(ctx, "GRANT "+b+" TO "+m+"; GRANT pg_read_all_data TO "+m+
		"; GRANT USAGE ON SCHEMA billing TO "+m+"; GRANT SELECT ON billing.invoices TO "+m); err != nil {
		t.Fatal(err)
	}
	if _, err := asMining.Exec(ctx, "SELECT * FROM billing.invoices"); err != nil {
		t.Fatalf("the grants did not take: %v", err)
	}
	if err := postgres.Bootstrap(ctx, adminDSN, mining); err != nil {
		t.Fatal(err)
	}
	if _, err := asMining.Exec(ctx, "SELECT * FROM billing.invoices"); postgres.SQLState(err) != "42501" {
		t.Errorf("after re-bootstrap: got %v, want 42501", err)
	}
}
