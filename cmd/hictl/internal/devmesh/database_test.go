package devmesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hashinsight/platform/cmd/hictl/internal/pgcluster"
)

// TestPrivateClusterLifecycle runs the Postgres part of `dev up` for real:
// initdb and start a private cluster in a temporary data directory through
// ProvideDatabase, reuse it while it runs, bootstrap two services, check each
// role is confined to its schema and needs its password, and stop it.
func TestPrivateClusterLifecycle(t *testing.T) {
	if _, err := pgcluster.FindBinDir(os.LookupEnv); errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			t.Skip("running as root without a postgres OS user")
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Skip("running as root without runuser")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	base := t.TempDir()
	if os.Geteuid() == 0 {
		// t.TempDir's own directories are private (0700); a developer's
		// checkout is not. ProvideDatabase only ever opens up .data itself.
		for _, p := range []string{filepath.Dir(base), base} {
			if err := os.Chmod(p, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := NewLayout(filepath.Join(base, ".data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Prepare(); err != nil {
		t.Fatal(err)
	}
	// What an initdb interrupted on a first run leaves behind is redone.
	if err := os.MkdirAll(filepath.Join(l.PG, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.PG, "data", "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := lookupIn([]string{"HASHINSIGHT_PG_PORT=" + strconv.Itoa(freePort(t))})
	var pgOut bytes.Buffer

	db, err := ProvideDatabase(ctx, l, env, &pgOut)
	if err != nil {
		t.Fatalf("ProvideDatabase: %v\n%s", err, pgOut.String())
	}
	t.Cleanup(func() { _ = db.Cluster.Stop(context.Background()) })
	if !db.Started || db.Cluster == nil {
		t.Fatalf("first run: started=%v, want a private cluster started", db.Started)
	}
	if !strings.HasSuffix(db.AdminDSN, "/hashinsight?sslmode=disable") {
		t.Errorf("admin DSN %s does not point at the hashinsight database", db.AdminDSN)
	}

	// A second `dev up` while the cluster runs (after a crash) reuses it, even
	// when asked for another port, and initdb does not run again.
	version, _ := os.ReadFile(filepath.Join(l.PG, "data", "PG_VERSION"))
	again, err := ProvideDatabase(ctx, l, lookupIn([]string{"HASHINSIGHT_PG_PORT=1"}), &pgOut)
	if err != nil {
		t.Fatalf("second ProvideDatabase: %v", err)
	}
	if again.Started || again.AdminDSN != db.AdminDSN {
		t.Errorf("second run: started=%v dsn=%s; want the running cluster reused (%s)", again.Started, again.AdminDSN, db.AdminDSN)
	}
	if v, _ := os.ReadFile(filepath.Join(l.PG, "data", "PG_VERSION")); !bytes.Equal(v, version) {
		t.Error("cluster re-initialised")
	}

	secrets, _, err := LoadOrCreateSecrets(l.Secrets, []string{"auth", "mining"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dsns, err := BootstrapSchemas(ctx, db.AdminDSN, []string{"auth", "mining"}, secrets)
	if err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second `dev up` bootstraps again without complaint.
	if _, err := BootstrapSchemas(ctx, db.AdminDSN, []string{"auth", "mining"}, secrets); err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}

	mining := connect(ctx, t, dsns["mining"])
	var who, schema string
	if err := mining.QueryRow(ctx, "SELECT current_user, current_schema()").Scan(&who, &schema); err != nil {
		t.Fatal(err)
	}
	if who != "hashinsight_mining" || schema != "mining" {
		t.Errorf("mining connects as %s with schema %s", who, schema)
	}
	if _, err := mining.Exec(ctx, "CREATE TABLE miners (id int); INSERT INTO miners VALUES (1)"); err != nil {
		t.Fatalf("mining cannot use its own schema: %v", err)
	}
	auth := connect(ctx, t, dsns["auth"])
	_, err = auth.Exec(ctx, "SELECT * FROM mining.miners")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("auth reading mining.miners: %v; want insufficient_privilege (42501)", err)
	}

	// Roles authenticate with their passwords; a wrong one is refused.
	cfg, err := pgx.ParseConfig(dsns["auth"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = "wrong-password"
	if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		conn.Close(ctx)
		t.Error("connected as hashinsight_auth with a wrong password")
	}

	mining.Close(ctx)
	auth.Close(ctx)
	if err := db.Cluster.Stop(ctx); err != nil {
		t.Fatalf("stop: %v\n%s", err, pgOut.String())
	}
	st, err := db.Cluster.Status(ctx)
	if err != nil || st.Running {
		t.Errorf("after stop: %+v, %v; want not running", st, err)
	}
}

func connect(ctx context.Context, t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect as a service role: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
