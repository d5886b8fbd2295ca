package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// VersionTable is the goose version table Migrate keeps inside each service's schema.
const VersionTable = "goose_db_version"

// MigrateOption configures [Migrate] and [Version].
type MigrateOption func(*migrateConfig)

type migrateConfig struct {
	logger *slog.Logger
}

// WithMigrateLogger logs each applied migration to logger (default: nothing is logged).
func WithMigrateLogger(logger *slog.Logger) MigrateOption {
	return func(c *migrateConfig) { c.logger = logger }
}

// Migrate applies the pending goose migrations of fsys to schema and returns how many it applied
// (0 when the schema is up to date, e.g. on a second start). When a migration fails, the error
// says which, and applied counts the migrations before it, which stay applied.
//
// fsys holds zero-padded goose files at its root (00001_init.sql, 00002_....sql; use fs.Sub for
// an embedded subdirectory). The version table is schema.goose_db_version, and every migration
// runs with search_path = schema, so unqualified names land in the service's schema whatever the
// pool's own search_path; objects are owned by the pool's user, so pass the service role's pool.
//
// A session advisory lock derived from the schema name is held while migrating: N replicas
// starting at once wait for each other and the migrations run exactly once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, opts ...MigrateOption) (applied int, err error) {
	p, closeProvider, err := newProvider(ctx, pool, schema, fsys, opts)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := closeProvider(); cerr != nil && err == nil {
			err = fmt.Errorf("postgres: migrate %s: close: %w", schema, cerr)
		}
	}()
	results, err := p.Up(ctx)
	if err != nil {
		// Each migration runs in its own transaction: those before the failing one stay applied.
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			return len(partial.Applied), fmt.Errorf("postgres: migrate %s: %w", schema, err)
		}
		return len(results), fmt.Errorf("postgres: migrate %s: %w", schema, err)
	}
	return len(results), nil
}

// Version returns the schema's current migration version and the latest version in fsys; they
// are equal when the schema is up to date.
func Version(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, opts ...MigrateOption) (current, latest int64, err error) {
	p, closeProvider, err := newProvider(ctx, pool, schema, fsys, opts)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if cerr := closeProvider(); cerr != nil && err == nil {
			err = fmt.Errorf("postgres: migration version %s: close: %w", schema, cerr)
		}
	}()
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: migration version %s: %w", schema, err)
	}
	return current, latest, nil
}

// newProvider builds a goose provider over a small pool cloned from pool's configuration with
// search_path pinned to schema. The clone keeps pool's credentials, TLS and tracer.
func newProvider(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, opts []MigrateOption) (*goose.Provider, func() error, error) {
	if err := ValidateIdentifier(schema); err != nil {
		return nil, nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	if fsys == nil {
		return nil, nil, fmt.Errorf("postgres: migrate %s: no migrations", schema)
	}
	cfg := migrateConfig{}
	for _, o := range opts {
		o(&cfg)
	}

	pcfg := pool.Config()
	pcfg.ConnConfig.RuntimeParams["search_path"] = schema
	pcfg.MinConns = 0
	pcfg.MaxConns = 2 // one holds the advisory lock and runs the migrations; goose may open another.
	mpool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: migrate %s: pool: %w", schema, err)
	}
	db := stdlib.OpenDBFromPool(mpool)
	closeAll := func() error {
		err := db.Close()
		mpool.Close()
		return err
	}

	gopts := []goose.ProviderOption{
		goose.WithTableName(schema + "." + VersionTable),
		goose.WithSessionLocker(&advisoryLocker{key: lockKey("hashinsight/migrate/" + schema)}),
		goose.WithDisableGlobalRegistry(true),
	}
	if cfg.logger != nil {
		gopts = append(gopts, goose.WithSlog(cfg.logger.With("schema", schema)))
	} else {
		gopts = append(gopts, goose.WithLogger(goose.NopLogger()))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, gopts...)
	if err != nil {
		_ = closeAll()
		if errors.Is(err, goose.ErrNoMigrations) {
			return nil, nil, fmt.Errorf("postgres: migrate %s: no migration files at the root of the file system: %w", schema, err)
		}
		return nil, nil, fmt.Errorf("postgres: migrate %s: %w", schema, err)
	}
	return p, closeAll, nil
}

// advisoryLocker is a goose session locker that blocks in pg_advisory_lock until the lock is
// free or the context ends. goose's own locker polls pg_try_advisory_lock every few seconds,
// which would make every replica but the first wait at least one poll interval.
type advisoryLocker struct {
	key int64
}

var _ lock.SessionLocker = (*advisoryLocker)(nil)

// SessionLock implements lock.SessionLocker.
func (l *advisoryLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", l.key); err != nil {
		return fmt.Errorf("acquire migration lock: %w", err)
	}
	return nil
}

// SessionUnlock implements lock.SessionLocker.
func (l *advisoryLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.key).Scan(&released); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	if !released {
		return errors.New("release migration lock: lock was not held")
	}
	return nil
}

// lockKey maps a name to a 64-bit advisory lock key (FNV-1a).
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// LockKey returns the advisory lock key this package derives from name. Background jobs that
// must run once across replicas can use it with pg_try_advisory_lock.
func LockKey(name string) int64 { return lockKey(name) }
