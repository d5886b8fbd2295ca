// Package pgtest gives tests a fresh, migrated PostgreSQL database in milliseconds.
//
// The first call in a test process finds a cluster: TEST_DATABASE_URL (a superuser DSN, as
// printed by scripts/testdb.sh) when set, otherwise a throwaway cluster started in a temporary
// directory (initdb as the postgres user when running as root; 127.0.0.1 only; durability off).
// For each (schema, migrations) pair a template database is built once — the schema and its role
// created by [postgres.Bootstrap], the migrations applied by [postgres.Migrate] as that role — and
// every test then gets its own clone (CREATE DATABASE ... TEMPLATE), dropped when the test ends.
// Templates are shared across test processes through an advisory lock, so parallel packages
// using one cluster build each template once.
//
// Use from a service's tests (the service embeds its migrations, e.g. //go:embed migrations/*.sql,
// and passes the directory with fs.Sub):
//
//	func TestMain(m *testing.M) { pgtest.Main(m) } // optional: stops the throwaway cluster promptly
//
//	func TestMinerStore(t *testing.T) {
//		t.Parallel()
//		sub, _ := fs.Sub(migrations.FS, "migrations")
//		pool := pgtest.New(t, pgtest.Options{Schema: "mining", Migrations: sub, Role: true})
//		store := postgres.NewMinerStore(pool) // the service's internal/postgres
//		...
//	}
//
// Each test pays only for the clone (tens of milliseconds with the cluster on tmpfs); the first
// test of a process also waits for the cluster (1-2 s) and each template's migrations.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/postgres"
)

// EnvDatabaseURL names the variable holding a superuser DSN of an existing cluster to use instead
// of starting a throwaway one.
const EnvDatabaseURL = "TEST_DATABASE_URL"

// harnessVersion is part of every template's name: bump it when the way templates are built
// changes, so long-lived clusters (TEST_DATABASE_URL) do not reuse stale templates.
const harnessVersion = "1"

// maxSchemaLen keeps tmpl_<schema>_<hash8>_new within PostgreSQL's 63-byte identifiers.
const maxSchemaLen = 40

// Options selects the database a test gets.
type Options struct {
	// Schema is the service schema to create, e.g. "mining". Required.
	Schema string
	// Migrations are the schema's goose migrations (files at the root, 00001_init.sql, ...);
	// nil leaves the schema empty.
	Migrations fs.FS
	// Role makes the returned pool connect as the schema's own login role (pgtest_<schema>),
	// created by postgres.Bootstrap, instead of as the superuser, to exercise the production
	// privileges. Either way search_path is the schema.
	Role bool
}

func (o Options) validate() error {
	if err := (postgres.Service{Schema: o.Schema, Role: roleFor(o.Schema)}).Validate(); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if len(o.Schema) > maxSchemaLen {
		return fmt.Errorf("pgtest: schema %q is longer than %d bytes", o.Schema, maxSchemaLen)
	}
	return nil
}

// Database is one test's database, a clone of the (schema, migrations) template.
type Database struct {
	// Name is the database's name (test_<random>).
	Name string
	// AdminDSN is a superuser DSN of this database.
	AdminDSN string
	// DSN is what New connects with: the schema role's DSN when Options.Role is set, else
	// AdminDSN; both pin search_path to the schema.
	DSN string
	// Service is the schema and its role (with the role's password).
	Service postgres.Service
}

// New returns a pool on a fresh clone of the migrated template for opts. The pool is closed and
// the database dropped when the test ends. The pool is built with postgres.Connect (without a
// Prometheus registerer) and at most 8 connections.
func New(t testing.TB, opts Options) *pgxpool.Pool {
	t.Helper()
	db := NewDatabase(t, opts)
	pool, err := postgres.Connect(t.Context(), db.DSN, postgres.Options{Service: opts.Schema, MaxConns: 8})
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", db.Name, err)
	}
	t.Cleanup(pool.Close) // runs before the database is dropped (cleanups run last-in first-out)
	return pool
}

// NewDatabase creates a fresh clone of the migrated template for opts and drops it (forcibly)
// when the test ends. Use it when the code under test needs a DSN rather than a pool.
func NewDatabase(t testing.TB, opts Options) Database {
	t.Helper()
	if err := opts.validate(); err != nil {
		t.Fatal(err)
	}
	admin, adminDSN, err := shared.setup()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tmpl, svc, err := shared.template(ctx, adminDSN, opts)
	if err != nil {
		t.Fatal(err)
	}
	name := "test_" + strings.ToLower(rand.Text()) // base32: [a-z2-7]
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tmpl)); err != nil {
		t.Fatalf("pgtest: clone %s: %v", tmpl, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})

	db := Database{Name: name, Service: svc}
	if db.AdminDSN, err = postgres.DatabaseDSN(adminDSN, name); err != nil {
		t.Fatal(err)
	}
	if opts.Role {
		db.DSN, err = svc.DSN(db.AdminDSN)
	} else {
		db.DSN, err = postgres.SearchPathDSN(db.AdminDSN, opts.Schema)
	}
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// AdminDSN returns a superuser DSN of the cluster's maintenance database ("postgres"), starting
// the cluster if needed. Tests that change a database should use a clone's Database.AdminDSN.
func AdminDSN(t testing.TB) string {
	t.Helper()
	_, dsn, err := shared.setup()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Main runs the package's tests, then [Stop]s the throwaway cluster and exits with the tests'
// status. Call it from TestMain. It is optional: without it the cluster is stopped and deleted by
// a watchdog process (tied to the test process by a pipe) as soon as the test process exits, even
// when it is killed, just not synchronously.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop closes the harness's connections and stops and deletes the throwaway cluster, if this
// process started one, waiting for it. For a TestMain that does more than [Main]: call it after
// m.Run. A later New starts a new cluster.
func Stop() { shared.shutdown() }

// shared is the test process's cluster and templates. It is package state, which the project
// otherwise forbids, because a test helper has nowhere else to keep what must outlive one test:
// the cluster has to be started once per process, not once per test or package-level TestMain,
// and the templates built once. It is only reachable through New, NewDatabase, AdminDSN and Main,
// and mu guards it.
var shared harness

type harness struct {
	mu        sync.Mutex
	started   bool
	err       error // sticky: a cluster that failed to start fails every test the same way
	cluster   *cluster
	adminDSN  string
	admin     *pgxpool.Pool
	templates map[string]*templateState
}

type templateState struct {
	mu    sync.Mutex
	ready bool
}

// setup connects to TEST_DATABASE_URL or starts the throwaway cluster, once.
func (h *harness) setup() (*pgxpool.Pool, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return h.admin, h.adminDSN, h.err
	}
	h.started = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h.err = h.start(ctx)
	return h.admin, h.adminDSN, h.err
}

func (h *harness) start(ctx context.Context) error {
	h.adminDSN = os.Getenv(EnvDatabaseURL)
	if h.adminDSN == "" {
		c, err := startCluster(ctx)
		if err != nil {
			return err
		}
		h.cluster, h.adminDSN = c, c.adminDSN()
	}
	admin, err := postgres.Connect(ctx, h.adminDSN, postgres.Options{Service: "pgtest", MaxConns: 8, StatementTimeout: -1})
	if err != nil {
		if h.cluster == nil {
			return fmt.Errorf("pgtest: %s: %w", EnvDatabaseURL, err)
		}
		return err
	}
	h.admin = admin
	return nil
}

// shutdown closes the admin pool and stops the throwaway cluster; New may start a new one later.
func (h *harness) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.admin != nil {
		h.admin.Close()
	}
	if h.cluster != nil {
		h.cluster.stop()
	}
	h.started, h.err, h.cluster, h.adminDSN, h.admin, h.templates = false, nil, nil, "", nil, nil
}

// template returns the name of the migrated template for opts, building it if this process has
// not seen it yet, and the schema's service identity.
func (h *harness) template(ctx context.Context, adminDSN string, opts Options) (string, postgres.Service, error) {
	sum, err := hashFS(opts.Migrations)
	if err != nil {
		return "", postgres.Service{}, err
	}
	name := "tmpl_" + opts.Schema + "_" + sum
	role := roleFor(opts.Schema)
	svc := postgres.Service{Schema: opts.Schema, Role: role, Password: passwordFor(adminDSN, role)}

	h.mu.Lock()
	if h.templates == nil {
		h.templates = map[string]*templateState{}
	}
	st := h.templates[name]
	if st == nil {
		st = &templateState{}
		h.templates[name] = st
	}
	h.mu.Unlock()

	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ready {
		if err := buildTemplate(ctx, adminDSN, name, svc, opts.Migrations); err != nil {
			return "", postgres.Service{}, err
		}
		st.ready = true
	}
	return name, svc, nil
}

// buildTemplate creates template name unless it exists. It builds under a temporary name and
// renames at the end, so a process killed half-way never leaves a half-built template, and holds
// an advisory lock so concurrent test processes build it once.
func buildTemplate(ctx context.Context, adminDSN, name string, svc postgres.Service, migrations fs.FS) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("pgtest: build template %s: %w", name, err)
		}
	}()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return err
	}
	// Closing the session releases the advisory lock.
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", postgres.LockKey("pgtest/template/"+name)); err != nil {
		return err
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}

	build := name + "_new"
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + ident(build) + " WITH (FORCE)",
		"CREATE DATABASE " + ident(build),
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	buildDSN, err := postgres.DatabaseDSN(adminDSN, build)
	if err != nil {
		return err
	}
	if err := postgres.Bootstrap(ctx, buildDSN, svc); err != nil {
		return err
	}
	if migrations != nil {
		if err := migrateAsRole(ctx, buildDSN, svc, migrations); err != nil {
			return err
		}
	}
	for _, stmt := range []string{
		"ALTER DATABASE " + ident(build) + " RENAME TO " + ident(name),
		// No connections: a session left on a template would make CREATE DATABASE ... TEMPLATE fail.
		"ALTER DATABASE " + ident(name) + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// migrateAsRole applies migrations connected as the schema's role, so the objects are owned by
// it exactly as in production.
func migrateAsRole(ctx context.Context, dbDSN string, svc postgres.Service, migrations fs.FS) error {
	dsn, err := svc.DSN(dbDSN)
	if err != nil {
		return err
	}
	pool, err := postgres.Connect(ctx, dsn, postgres.Options{Service: svc.Schema, MaxConns: 2, StatementTimeout: -1})
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = postgres.Migrate(ctx, pool, svc.Schema, migrations)
	return err
}

// hashFS fingerprints every file of fsys (names and contents) into 8 hex characters.
func hashFS(fsys fs.FS) (string, error) {
	h := sha256.New()
	h.Write([]byte("pgtest/" + harnessVersion + "\x00"))
	if fsys != nil {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("pgtest: read migrations: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:8], nil
}

// roleFor is the login role pgtest creates for schema. It is not the production role name
// (hashinsight_<svc>), so pointing TEST_DATABASE_URL at a dev cluster never touches real roles.
func roleFor(schema string) string { return "pgtest_" + schema }

// passwordFor derives the role's password from the admin DSN: stable across the test processes
// sharing a cluster (they would otherwise reset each other's password), and not guessable without
// the admin DSN.
func passwordFor(adminDSN, role string) string {
	sum := sha256.Sum256([]byte("pgtest-password\x00" + adminDSN + "\x00" + role))
	return hex.EncodeToString(sum[:16])
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
