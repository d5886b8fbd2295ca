// Package postgres is the platform's PostgreSQL kit: a pgx connection pool instrumented with
// OpenTelemetry traces and the manual's Prometheus metrics, the bootstrap step that gives every
// service its own schema and login role (with no rights on any other schema), DSN helpers for
// those roles, goose migrations that run once across replicas, and helpers that classify
// PostgreSQL errors so stores can map them to domain sentinels.
//
// A service's start-up typically is:
//
//	pool, err := postgres.Connect(ctx, dsn, postgres.Options{Service: "mining", Registerer: reg})
//	applied, err := postgres.Migrate(ctx, pool, "mining", migrations)
//
// where dsn points at the service's own role (see [RoleDSN]) and migrations is the service's
// embedded directory of zero-padded goose files (00001_init.sql, ...). [Bootstrap] runs before
// that, once per environment, with an administrator's DSN.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Defaults applied by [Connect] when the corresponding [Options] field is zero.
const (
	DefaultStatementTimeout = 30 * time.Second
	DefaultPingTimeout      = 5 * time.Second
)

// Options configures [Connect].
type Options struct {
	// Service names the owning service. It is the `service` label of every metric and the
	// connection's application_name (unless the DSN sets one). Required when Registerer is set.
	Service string
	// Registerer receives the query-duration histogram and the pool gauges. Nil disables
	// Prometheus metrics (traces are still recorded).
	Registerer prometheus.Registerer
	// MaxConns caps the pool; 0 keeps the DSN's pool_max_conns or pgxpool's default.
	MaxConns int32
	// MinConns is the number of idle connections kept open; 0 keeps the DSN's or pgxpool's default.
	MinConns int32
	// StatementTimeout bounds every statement on the server. 0 means the DSN's statement_timeout
	// if it sets one, else DefaultStatementTimeout; a negative value disables the timeout.
	StatementTimeout time.Duration
	// PingTimeout bounds the connectivity check Connect makes before returning; 0 means
	// DefaultPingTimeout.
	PingTimeout time.Duration
	// TracerProvider records the query spans; nil uses the OpenTelemetry global provider.
	TracerProvider trace.TracerProvider
}

// Connect opens a pgx pool for dsn, instruments it and checks the server answers.
//
// Every query is traced (otelpgx) and, when opts.Registerer is set, observed in
// hashinsight_db_query_duration_seconds{service,query_type}; the pool's size, active, idle and
// max connection counts are exported as hashinsight_db_connection_pool_*{service}. Connecting a
// second pool for the same service to the same registry is allowed: the histogram is shared and
// the gauges follow the newest pool.
func Connect(ctx context.Context, dsn string, opts Options) (*pgxpool.Pool, error) {
	if opts.Registerer != nil && opts.Service == "" {
		return nil, errors.New("postgres: connect: Options.Service is required when Registerer is set")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn redacts the password in its parse errors.
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	switch {
	case opts.StatementTimeout < 0:
		params["statement_timeout"] = "0"
	case opts.StatementTimeout > 0:
		params["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	case params["statement_timeout"] == "":
		params["statement_timeout"] = strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10)
	}
	if params["application_name"] == "" && opts.Service != "" {
		params["application_name"] = opts.Service
	}

	var otelOpts []otelpgx.Option
	if opts.TracerProvider != nil {
		otelOpts = append(otelOpts, otelpgx.WithTracerProvider(opts.TracerProvider))
	}
	var m *metrics
	if opts.Registerer != nil {
		if m, err = newMetrics(opts.Registerer, opts.Service); err != nil {
			return nil, err
		}
		cfg.ConnConfig.Tracer = multitracer.New(otelpgx.NewTracer(otelOpts...), m.tracer())
	} else {
		cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelOpts...)
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	pingTimeout := opts.PingTimeout
	if pingTimeout <= 0 {
		pingTimeout = DefaultPingTimeout
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping %s:%d/%s: %w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if m != nil {
		if err := m.registerPool(opts.Registerer, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}
