// Package devmesh is the engine of `hictl dev up`: it lays out the .data
// directory, generates and reuses local secrets and certificates, provides a
// PostgreSQL (private cluster or DATABASE_URL) and a cache, bootstraps every
// service's schema and role, builds and starts the five services and the
// gateway with the environment they need, waits for them to be healthy and
// stops everything cleanly.
//
// It is for local development only: the private cluster trusts local
// connections and the secrets are kept in plain files under .data/.
package devmesh

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Layout names the files and directories under the data directory (.data):
//
//	.data/             0700 (0711 when a private cluster runs as another OS user)
//	  certs/           dev CA, service and operator certificates
//	  secrets.env      0600, generated once: SESSION_SECRET, ENCRYPTION_PASSWORD, DB role passwords
//	  pg/              private PostgreSQL cluster (data/, run/, postgres.log)
//	  logs/            <name>.log per process, audit.jsonl
//	  bin/             built service binaries
//	  owner.txt        0600, the bootstrap owner's login
//	  owner.created    marker: the owner exists in auth
type Layout struct {
	Root    string
	Certs   string
	Secrets string
	PG      string
	Logs    string
	Bin     string
	Owner   string
	// OwnerCreated marks that auth has stored the bootstrap owner.
	OwnerCreated string
}

// NewLayout returns the layout rooted at root, made absolute.
func NewLayout(root string) (Layout, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Layout{}, fmt.Errorf("data directory %s: %w", root, err)
	}
	return Layout{
		Root:         abs,
		Certs:        filepath.Join(abs, "certs"),
		Secrets:      filepath.Join(abs, "secrets.env"),
		PG:           filepath.Join(abs, "pg"),
		Logs:         filepath.Join(abs, "logs"),
		Bin:          filepath.Join(abs, "bin"),
		Owner:        filepath.Join(abs, "owner.txt"),
		OwnerCreated: filepath.Join(abs, "owner.created"),
	}, nil
}

// AuditLog is the audit log file the services append to.
func (l Layout) AuditLog() string { return filepath.Join(l.Logs, "audit.jsonl") }

// LogFile is the log file of the named process.
func (l Layout) LogFile(name string) string { return filepath.Join(l.Logs, name+".log") }

// Prepare creates the directories (0700). An existing root keeps only its
// owner's permissions plus any search (x) bits, which a private cluster run as
// another OS user needs; group and other never get read or write.
func (l Layout) Prepare() error {
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", l.Root, err)
	}
	st, err := os.Stat(l.Root)
	if err != nil {
		return fmt.Errorf("stat %s: %w", l.Root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", l.Root)
	}
	if want := (st.Mode().Perm() &^ 0o066) | 0o700; want != st.Mode().Perm() {
		if err := os.Chmod(l.Root, want); err != nil {
			return fmt.Errorf("chmod %s: %w", l.Root, err)
		}
	}
	for _, d := range []string{l.Certs, l.Logs, l.Bin} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", d, err)
		}
	}
	return nil
}

// FindRepoRoot walks up from dir to the directory holding go.work.
func FindRepoRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("find repository root: no go.work in %s or any parent", abs)
		}
	}
}
