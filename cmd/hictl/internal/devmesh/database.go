package devmesh

import (
	"context"
	"fmt"
	"io"

	"github.com/hashinsight/platform/cmd/hictl/internal/pgcluster"
	"github.com/hashinsight/platform/pkg/postgres"
)

// Database is the PostgreSQL the mesh uses.
type Database struct {
	// AdminDSN is the administrator's DSN (DATABASE_URL for the services).
	AdminDSN string `secret:"true"`
	// Cluster is the private cluster, nil when DATABASE_URL was given.
	Cluster *pgcluster.Cluster
	// Started is true when this run started the private cluster, so it must stop it.
	Started bool
}

// Describe says where the database is, without secrets.
func (d Database) Describe() string {
	if d.Cluster == nil {
		return RedactDSN(d.AdminDSN) + " (DATABASE_URL)"
	}
	how := "reused, already running"
	if d.Started {
		how = "started"
	}
	return fmt.Sprintf("%s (private cluster in %s, %s; trusts local connections)", RedactDSN(d.AdminDSN), d.Cluster.Dir, how)
}

// ProvideDatabase returns DATABASE_URL when it is set. Otherwise it brings up
// the private cluster under l.PG on HASHINSIGHT_PG_PORT (default 5433):
// initdb when absent, start unless already running (then it is reused on
// whatever port it runs), and create the database `hashinsight`. pgOutput
// receives the output of initdb and pg_ctl.
func ProvideDatabase(ctx context.Context, l Layout, lookupEnv func(string) (string, bool), pgOutput io.Writer) (Database, error) {
	if dsn, ok := lookupEnv("DATABASE_URL"); ok && dsn != "" {
		return Database{AdminDSN: dsn}, nil
	}
	port, err := pgcluster.PortFromEnv(lookupEnv)
	if err != nil {
		return Database{}, err
	}
	c, err := pgcluster.New(l.PG, port, lookupEnv)
	if err != nil {
		return Database{}, err
	}
	// .data is ours: the postgres OS user may be given search (x) permission on it.
	c.ChmodOK = []string{l.Root}
	c.Output = pgOutput
	started, err := c.Up(ctx)
	if err != nil {
		return Database{}, err
	}
	db := Database{Cluster: c, Started: started, AdminDSN: c.AdminDSN(DatabaseName)}
	if err := c.EnsureDatabase(ctx, DatabaseName); err != nil {
		if started {
			_ = c.Stop(context.WithoutCancel(ctx))
		}
		return Database{}, err
	}
	return db, nil
}

// BootstrapSchemas creates (idempotently) each service's schema and role
// hashinsight_<svc> with its password from secrets, and returns the DSN of
// each role (same server and database, search_path pinned to the schema),
// which the service connects with (<SVC>_DATABASE_URL).
func BootstrapSchemas(ctx context.Context, adminDSN string, services []string, s Secrets) (map[string]string, error) {
	dsns := make(map[string]string, len(services))
	for _, svc := range services {
		pw := s.DBPasswords[svc]
		if pw == "" {
			return nil, fmt.Errorf("bootstrap %s: no password for role %s", svc, RoleName(svc))
		}
		spec := postgres.Service{Schema: svc, Role: RoleName(svc), Password: pw}
		if err := postgres.Bootstrap(ctx, adminDSN, spec); err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", svc, err)
		}
		// The role's DSN, with search_path pinned to its schema.
		dsn, err := spec.DSN(adminDSN)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", svc, err)
		}
		dsns[svc] = dsn
	}
	return dsns, nil
}
