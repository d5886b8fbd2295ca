package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cluster is a throwaway PostgreSQL cluster in a temporary directory, listening on 127.0.0.1.
//
// Its lifetime is tied to the test process by a lifeline pipe: a watchdog shell started with the
// pipe's read end as stdin blocks in `read` until the write end, held only by this process, is
// closed — by stop, or by the kernel when the process exits for any reason (even SIGKILL or a
// test timeout). The watchdog then stops the server and deletes the directory. It runs in its
// own process group so a Ctrl-C in the terminal does not kill it before it has cleaned up.
type cluster struct {
	dir      string // temporary root: data/, the unix socket, postgres.log
	port     int
	lifeline *os.File  // write end of the lifeline pipe
	watchdog *exec.Cmd // waits for the lifeline to close, then stops and deletes the cluster
}

// startCluster runs initdb and starts the server. It honours PG_BINDIR, then `pg_config
// --bindir`, then /usr/lib/postgresql/<newest>/bin, then PATH. When running as root the server
// binaries run as the postgres user, which must exist.
func startCluster(ctx context.Context) (_ *cluster, err error) {
	bindir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	run, err := newRunner()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempBase(), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: temp dir: %w", err)
	}
	c := &cluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
			_ = os.RemoveAll(dir) // in case the watchdog was never started
		}
	}()
	if err := run.own(dir); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	pgctl := filepath.Join(bindir, "pg_ctl")

	// Start the watchdog before the server, so no failure after this point can leak a server.
	if err := c.startWatchdog(run.command(pgctl, "-D", data, "-m", "immediate", "-w", "stop")); err != nil {
		return nil, err
	}

	if out, err := run.output(ctx, dir, filepath.Join(bindir, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if err := configure(data, dir); err != nil {
		return nil, err
	}

	logFile := filepath.Join(dir, "postgres.log")
	var lastErr error
	for range 3 { // a free port can be taken by someone else before the server binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		out, err := run.output(ctx, dir, pgctl, "-D", data, "-l", logFile, "-w", "-t", "60",
			"-o", "-p "+strconv.Itoa(port), "start")
		if err == nil {
			c.port = port
			return c, nil
		}
		log, _ := os.ReadFile(logFile)
		lastErr = fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, tail(log, 2000))
		if !strings.Contains(string(log), "could not bind") && !strings.Contains(string(log), "already in use") {
			break
		}
	}
	return nil, lastErr
}

// adminDSN is the superuser DSN of the cluster's maintenance database.
func (c *cluster) adminDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// startWatchdog starts `sh` waiting on the lifeline; stopCmd is run (as argv) when it closes.
func (c *cluster) startWatchdog(stopCmd []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pgtest: lifeline pipe: %w", err)
	}
	const script = `read _ ; dir=$1; shift; "$@" >/dev/null 2>&1; rm -rf "$dir"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "pgtest-watchdog", c.dir}, stopCmd...)...)
	cmd.Stdin = r // Stdout and Stderr stay nil (/dev/null): go test must not wait on them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return fmt.Errorf("pgtest: start watchdog: %w", err)
	}
	_ = r.Close()
	c.lifeline, c.watchdog = w, cmd
	return nil
}

// stop closes the lifeline and waits (bounded) for the watchdog to stop the server and delete
// the directory. Safe to call more than once.
func (c *cluster) stop() {
	if c.lifeline == nil {
		return
	}
	_ = c.lifeline.Close()
	c.lifeline = nil
	done := make(chan struct{})
	go func() {
		_ = c.watchdog.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

// configure writes the server settings and pg_hba.conf: 127.0.0.1 only, the unix socket inside
// dir, durability off (the data is thrown away), the postgres superuser trusted and every other
// role authenticated with SCRAM, so role passwords set by Bootstrap are really checked.
func configure(data, dir string) error {
	conf := fmt.Sprintf(`
# pgtest: throwaway cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
autovacuum = off
dynamic_shared_memory_type = mmap
log_min_messages = warning
`, dir)
	if err := appendFile(filepath.Join(data, "postgresql.conf"), conf); err != nil {
		return err
	}
	hba := `# pgtest: throwaway cluster
local all all                trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
`
	// Truncate in place so the file keeps its owner (postgres when running as root).
	f, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("pgtest: write pg_hba.conf: %w", err)
	}
	_, err = f.WriteString(hba)
	return errors.Join(err, f.Close())
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}

// runner runs the server binaries, as the postgres user when this process is root (initdb and
// postgres refuse to run as root).
type runner struct {
	asPostgres bool
	prefix     []string // runuser/su invocation, when asPostgres
	uid, gid   int
}

func newRunner() (runner, error) {
	if os.Geteuid() != 0 {
		return runner{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runner{}, fmt.Errorf("pgtest: running as root needs a postgres user for initdb: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	r := runner{asPostgres: true, uid: uid, gid: gid}
	if p, err := exec.LookPath("runuser"); err == nil {
		r.prefix = []string{p, "-u", "postgres", "--"}
	} else if p, err := exec.LookPath("su"); err == nil {
		// su needs one shell command line: quoteArgs builds it.
		r.prefix = []string{p, "postgres", "-s", "/bin/sh", "-c"}
	} else {
		return runner{}, errors.New("pgtest: running as root needs runuser or su to start PostgreSQL as postgres")
	}
	return r, nil
}

// command returns the argv that runs name with args (as postgres when needed).
func (r runner) command(name string, args ...string) []string {
	argv := append([]string{name}, args...)
	if !r.asPostgres {
		return argv
	}
	if filepath.Base(r.prefix[0]) == "su" {
		return append(slices.Clone(r.prefix), quoteArgs(argv))
	}
	return append(slices.Clone(r.prefix), argv...)
}

// output runs the command in dir and returns its combined output. The output goes to a file,
// not a pipe: pg_ctl's server inherits its descriptors and would keep a pipe open forever.
func (r runner) output(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	out, err := os.CreateTemp("", "pgtest-cmd-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	argv := r.command(name, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the server must not get the terminal's SIGINT
	runErr := cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return b, runErr
}

// own hands dir to the postgres user when needed.
func (r runner) own(dir string) error {
	if !r.asPostgres {
		return nil
	}
	if err := os.Chown(dir, r.uid, r.gid); err != nil {
		return fmt.Errorf("pgtest: chown %s: %w", dir, err)
	}
	return nil
}

// findBinDir locates the directory holding initdb and pg_ctl.
func findBinDir() (string, error) {
	has := func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "initdb"))
		return d != "" && err == nil
	}
	if d := os.Getenv("PG_BINDIR"); has(d) {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgtest: PostgreSQL server binaries (initdb, pg_ctl) not found: install them " +
		"(e.g. apt-get install postgresql), set PG_BINDIR, or set TEST_DATABASE_URL to an existing cluster")
}

// versionOf extracts the major version from /usr/lib/postgresql/<v>/bin.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// tempBase is where the cluster directory goes: /dev/shm when it is a writable tmpfs with room
// (a cluster in memory clones databases several times faster), else os.TempDir — or /tmp when
// running as root and the postgres user could not reach os.TempDir (e.g. TMPDIR under /root).
func tempBase() string {
	const shm = "/dev/shm"
	var st syscall.Statfs_t
	if fi, err := os.Stat(shm); err == nil && fi.IsDir() && fi.Mode().Perm()&0o003 == 0o003 &&
		syscall.Statfs(shm, &st) == nil && st.Bavail*uint64(st.Bsize) >= 1<<30 {
		return shm
	}
	base := os.TempDir()
	if os.Geteuid() != 0 {
		return base
	}
	for d := base; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return base
		}
	}
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// quoteArgs joins argv into one POSIX shell command line.
func quoteArgs(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
