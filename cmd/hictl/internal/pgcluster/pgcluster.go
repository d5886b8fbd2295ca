// Package pgcluster runs a private, development-only PostgreSQL cluster in a
// directory: initdb once, start with pg_ctl, reuse a cluster that is already
// running, stop it again. When the caller is root, every PostgreSQL binary runs
// as the unprivileged `postgres` OS user (PostgreSQL refuses to run as root),
// through `runuser -u postgres --`, and the cluster directory is owned by it.
//
// The cluster listens on 127.0.0.1 only and trusts every connection on its
// unix socket and the superuser `postgres` on loopback (no password), while the
// services' roles authenticate with their passwords (SCRAM). Anyone on the
// machine can therefore become the superuser: acceptable for a developer
// machine and nowhere else.
package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the name of the cluster's superuser, whatever OS user runs it.
const Superuser = "postgres"

// DefaultPort is the port of the private cluster when nothing else is asked:
// 5432 is often taken by a system PostgreSQL.
const DefaultPort = 5433

// confFile is the file in the data directory holding our settings; postgresql.conf includes it.
const confFile = "hashinsight.conf"

// includeLine is appended to postgresql.conf once initdb has succeeded.
const includeLine = "include_if_exists '" + confFile + "'"

// maxSocketPath is the longest unix socket path the kernel accepts (sun_path minus NUL).
const maxSocketPath = 107

// ErrNoBinaries reports that no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found.
var ErrNoBinaries = errors.New("pgcluster: PostgreSQL server binaries (initdb, pg_ctl) not found; install PostgreSQL or set HASHINSIGHT_PG_BIN")

// Cluster is a private PostgreSQL cluster kept under Dir:
//
//	Dir/data          the data directory (PGDATA)
//	Dir/run           the unix socket directory
//	Dir/postgres.log  the server log
type Cluster struct {
	// Dir holds the whole cluster. It is created (mode 0700) when missing.
	Dir string
	// Port is the TCP port on 127.0.0.1 the server listens on when we start it.
	Port int
	// BinDir holds initdb, pg_ctl and postgres.
	BinDir string
	// RunAs, when set, is the OS user every PostgreSQL binary runs as (through
	// runuser) and who owns Dir. Nil runs them as the current user.
	RunAs *user.User
	// ChmodOK lists directories (parents of Dir) whose mode Prepare may widen
	// with o+x so that RunAs can reach Dir. Other parents are never changed:
	// when RunAs cannot traverse them Prepare fails with a hint.
	ChmodOK []string
	// Output receives the output of initdb and pg_ctl. Nil discards it.
	Output io.Writer
}

// New returns a cluster under dir on port. It finds the binaries with
// FindBinDir and, when the current process is root, runs them as the
// `postgres` OS user.
func New(dir string, port int, lookupEnv func(string) (string, bool)) (*Cluster, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	bin, err := FindBinDir(lookupEnv)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: abs, Port: port, BinDir: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgcluster: running as root, PostgreSQL must run as the OS user postgres: %w", err)
		}
		c.RunAs = u
	}
	return c, nil
}

// PortFromEnv returns HASHINSIGHT_PG_PORT, or DefaultPort when it is unset.
func PortFromEnv(lookupEnv func(string) (string, bool)) (int, error) {
	v, ok := lookupEnv("HASHINSIGHT_PG_PORT")
	if !ok || v == "" {
		return DefaultPort, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("pgcluster: HASHINSIGHT_PG_PORT=%q is not a TCP port", v)
	}
	return p, nil
}

// FindBinDir locates the PostgreSQL server binaries: HASHINSIGHT_PG_BIN, then
// the directory of initdb on PATH (symlinks resolved, since pg_ctl needs the
// postgres binary beside it), then the newest /usr/lib/postgresql/<v>/bin.
func FindBinDir(lookupEnv func(string) (string, bool)) (string, error) {
	var candidates []string
	if v, ok := lookupEnv("HASHINSIGHT_PG_BIN"); ok && v != "" {
		candidates = append(candidates, v)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(r))
		}
	}
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(dirs) > 0 {
		sort.Slice(dirs, func(i, j int) bool { return pgVersionOf(dirs[i]) > pgVersionOf(dirs[j]) })
		candidates = append(candidates, dirs...)
	}
	for _, d := range candidates {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func pgVersionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// DataDir is the cluster's PGDATA.
func (c *Cluster) DataDir() string { return filepath.Join(c.Dir, "data") }

// SocketDir is the directory of the server's unix socket.
func (c *Cluster) SocketDir() string { return filepath.Join(c.Dir, "run") }

// LogFile is the server log written by pg_ctl.
func (c *Cluster) LogFile() string { return filepath.Join(c.Dir, "postgres.log") }

// Initialized reports whether initdb has completed in DataDir: our include
// line is appended to postgresql.conf only after initdb succeeded, so an
// initdb that was interrupted (Ctrl-C on the first run) is recognised and redone.
func (c *Cluster) Initialized() bool {
	b, err := os.ReadFile(filepath.Join(c.DataDir(), "postgresql.conf"))
	return err == nil && strings.Contains(string(b), includeLine)
}

// Prepare creates Dir (0700) and the socket directory, hands them to RunAs,
// and makes sure RunAs can reach Dir: every parent directory must be
// searchable by it. Parents listed in ChmodOK get o+x when needed; any other
// unreachable parent is an error that names it.
func (c *Cluster) Prepare() error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: create %s: %w", c.Dir, err)
	}
	if err := os.Chmod(c.Dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: chmod %s: %w", c.Dir, err)
	}
	if err := os.MkdirAll(c.SocketDir(), 0o700); err != nil {
		return fmt.Errorf("pgcluster: create %s: %w", c.SocketDir(), err)
	}
	if c.RunAs == nil {
		return nil
	}
	uid, gids, err := ids(c.RunAs)
	if err != nil {
		return err
	}
	for _, p := range []string{c.Dir, c.SocketDir()} {
		if err := os.Chown(p, uid, gids[0]); err != nil {
			return fmt.Errorf("pgcluster: chown %s to %s: %w", p, c.RunAs.Username, err)
		}
	}
	for _, p := range []string{c.LogFile(), c.DataDir()} {
		if err := os.Lchown(p, uid, gids[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pgcluster: chown %s to %s: %w", p, c.RunAs.Username, err)
		}
	}
	allowed := make(map[string]bool, len(c.ChmodOK))
	for _, d := range c.ChmodOK {
		if a, err := filepath.Abs(d); err == nil {
			allowed[a] = true
		}
	}
	for _, parent := range Parents(c.Dir) {
		st, err := os.Stat(parent)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		if Searchable(st.Mode(), int(sys.Uid), int(sys.Gid), uid, gids) {
			continue
		}
		if !allowed[parent] {
			return fmt.Errorf("pgcluster: the OS user %s cannot reach %s because %s is not searchable by it; "+
				"run `chmod o+x %s` or choose a data directory under a path it can traverse", c.RunAs.Username, c.Dir, parent, parent)
		}
		if err := os.Chmod(parent, st.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("pgcluster: chmod o+x %s: %w", parent, err)
		}
	}
	return nil
}

// Parents returns the parent directories of dir, nearest first, up to "/".
func Parents(dir string) []string {
	var out []string
	for p := filepath.Dir(filepath.Clean(dir)); ; p = filepath.Dir(p) {
		out = append(out, p)
		if p == filepath.Dir(p) {
			return out
		}
	}
}

// Searchable reports whether a user with uid and groups gids may traverse a
// directory with mode owned by ownerUID:ownerGID (the classic owner, group,
// other check; uid 0 always may).
func Searchable(mode os.FileMode, ownerUID, ownerGID, uid int, gids []int) bool {
	perm := mode.Perm()
	switch {
	case uid == 0:
		return true
	case uid == ownerUID:
		return perm&0o100 != 0
	case containsInt(gids, ownerGID):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// ids returns u's uid and group ids, primary group first.
func ids(u *user.User) (int, []int, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return 0, nil, fmt.Errorf("pgcluster: uid of %s: %w", u.Username, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return 0, nil, fmt.Errorf("pgcluster: gid of %s: %w", u.Username, err)
	}
	gids := []int{gid}
	if more, err := u.GroupIds(); err == nil {
		for _, g := range more {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				gids = append(gids, n)
			}
		}
	}
	return uid, gids, nil
}

// Init runs initdb when the data directory is not initialised yet, and writes
// the settings file. It reports whether it initialised a new cluster.
func (c *Cluster) Init(ctx context.Context) (bool, error) {
	if c.Initialized() {
		return false, c.writeConf()
	}
	// Without our include line, DataDir is what an interrupted initdb left behind (it
	// holds no data, and initdb refuses a non-empty directory).
	if err := os.RemoveAll(c.DataDir()); err != nil {
		return false, fmt.Errorf("pgcluster: remove incomplete %s: %w", c.DataDir(), err)
	}
	args := []string{
		"-D", c.DataDir(),
		"--username=" + Superuser,
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--locale=C",
		"--no-sync", "--no-instructions",
	}
	if out, err := c.pg(ctx, "initdb", args...); err != nil {
		return false, fmt.Errorf("pgcluster: initdb %s: %w\n%s", c.DataDir(), err, out)
	}
	conf := filepath.Join(c.DataDir(), "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return false, fmt.Errorf("pgcluster: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Settings of hictl dev up (local development only).\n%s\n", includeLine)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("pgcluster: append to %s: %w", conf, err)
	}
	return true, c.writeConf()
}

// Conf returns the content of the settings file for this cluster.
func (c *Cluster) Conf() string {
	sock := c.SocketDir()
	if len(sock)+len("/.s.PGSQL.65535") > maxSocketPath {
		sock = "" // path too long for a unix socket: TCP only
	}
	return fmt.Sprintf(`# Written by hictl dev up on every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 300
`, c.Port, strings.ReplaceAll(sock, "'", "''"))
}

// HBA is the cluster's pg_hba.conf: the superuser is trusted on the socket
// and on loopback (so the admin DSN needs no password), every other role
// must give its password (SCRAM), as in production, so a wrong role password
// fails here too.
const HBA = `# Written by hictl dev up on every start; edits are overwritten. Local development only.
# TYPE  DATABASE  USER      ADDRESS       METHOD
local   all       all                     trust
host    all       postgres  127.0.0.1/32  trust
host    all       postgres  ::1/128       trust
host    all       all       127.0.0.1/32  scram-sha-256
host    all       all       ::1/128       scram-sha-256
`

// writeConf writes our settings file and pg_hba.conf into the data directory.
func (c *Cluster) writeConf() error {
	for name, content := range map[string]string{confFile: c.Conf(), "pg_hba.conf": HBA} {
		p := filepath.Join(c.DataDir(), name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return fmt.Errorf("pgcluster: write %s: %w", p, err)
		}
		if c.RunAs != nil {
			uid, gids, err := ids(c.RunAs)
			if err != nil {
				return err
			}
			if err := os.Chown(p, uid, gids[0]); err != nil {
				return fmt.Errorf("pgcluster: chown %s: %w", p, err)
			}
		}
	}
	return nil
}

// Status is what pg_ctl status found.
type Status struct {
	// Running is true when a postmaster is alive for DataDir.
	Running bool
	// Port is the port of the running server, from postmaster.pid.
	Port int
}

// Status asks pg_ctl whether the cluster is running and, if so, on which port.
func (c *Cluster) Status(ctx context.Context) (Status, error) {
	if !c.Initialized() {
		return Status{}, nil
	}
	out, err := c.pg(ctx, "pg_ctl", "status", "-D", c.DataDir())
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && (ee.ExitCode() == 3 || ee.ExitCode() == 4) {
			return Status{}, nil // 3: not running, 4: no accessible data directory
		}
		return Status{}, fmt.Errorf("pgcluster: pg_ctl status: %w\n%s", err, out)
	}
	port, err := PidFilePort(filepath.Join(c.DataDir(), "postmaster.pid"))
	if err != nil {
		return Status{}, err
	}
	return Status{Running: true, Port: port}, nil
}

// PidFilePort reads the port from a postmaster.pid (its fourth line).
func PidFilePort(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for i := 1; s.Scan(); i++ {
		if i == 4 {
			p, err := strconv.Atoi(strings.TrimSpace(s.Text()))
			if err != nil {
				return 0, fmt.Errorf("pgcluster: port in %s: %w", path, err)
			}
			return p, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("pgcluster: read %s: %w", path, err)
	}
	return 0, fmt.Errorf("pgcluster: %s has no port line", path)
}

// Start starts the server with pg_ctl and waits until it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.writeConf(); err != nil {
		return err
	}
	out, err := c.pg(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.DataDir(), "-l", c.LogFile())
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start on port %d (set HASHINSIGHT_PG_PORT if it is taken): %w\n%s\n%s", c.Port, err, out, tail(c.LogFile(), 20))
	}
	return nil
}

// Stop stops a running server (fast mode: active sessions are rolled back).
func (c *Cluster) Stop(ctx context.Context) error {
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		return nil
	}
	if out, err := c.pg(ctx, "pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", c.DataDir()); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Up prepares, initialises and starts the cluster unless it already runs.
// It reports whether this call started the server; when the server was
// already running (left over from an earlier run) c.Port is set to its port.
func (c *Cluster) Up(ctx context.Context) (started bool, err error) {
	if err := c.Prepare(); err != nil {
		return false, err
	}
	if c.Initialized() {
		st, err := c.Status(ctx)
		if err != nil {
			return false, err
		}
		if st.Running {
			c.Port = st.Port
			return false, nil
		}
	}
	if _, err := c.Init(ctx); err != nil {
		return false, err
	}
	if err := c.Start(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// AdminDSN is the superuser DSN for database db over TCP on 127.0.0.1.
func (c *Cluster) AdminDSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     "127.0.0.1:" + strconv.Itoa(c.Port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// EnsureDatabase creates database name when it does not exist.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) error {
	return EnsureDatabase(ctx, c.AdminDSN("postgres"), name)
}

// EnsureDatabase connects with adminDSN (to any existing database) and creates
// database name when it does not exist.
func EnsureDatabase(ctx context.Context, adminDSN, name string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("pgcluster: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgcluster: create database %s: %w", name, err)
	}
	return nil
}

// pg runs a PostgreSQL binary from BinDir, as RunAs when set, and returns its
// combined output (also copied to Output). The output goes through a file, not
// a pipe: a server started by pg_ctl could inherit a pipe and hold it open.
func (c *Cluster) pg(ctx context.Context, name string, args ...string) ([]byte, error) {
	f, err := os.CreateTemp("", "hictl-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := c.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	runErr := cmd.Run()
	out, _ := os.ReadFile(f.Name())
	if c.Output != nil {
		_, _ = c.Output.Write(out)
	}
	return out, runErr
}

// Command builds the command that runs a PostgreSQL binary from BinDir, through
// `runuser -u <RunAs> --` when RunAs is set. Its working directory is Dir, which
// RunAs can read (the caller's may not be).
func (c *Cluster) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(c.BinDir, name)
	var cmd *exec.Cmd
	if c.RunAs != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.RunAs.Username, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Not in our process group: a Ctrl-C in the terminal must not hit pg_ctl mid-start.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On cancellation, ask the whole group (runuser and the binary) to stop, so
	// initdb cleans up after itself; SIGKILL follows after WaitDelay.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
