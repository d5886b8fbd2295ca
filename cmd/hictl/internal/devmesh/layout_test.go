package devmesh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayoutPrepare(t *testing.T) {
	tests := []struct {
		name     string
		existing os.FileMode // 0: root does not exist yet
		wantRoot os.FileMode
	}{
		{name: "fresh", wantRoot: 0o700},
		{name: "group and other lose read and write", existing: 0o777, wantRoot: 0o711},
		{name: "search bit given for postgres is kept", existing: 0o711, wantRoot: 0o711},
		{name: "owner always has full access", existing: 0o500, wantRoot: 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), ".data")
			if tt.existing != 0 {
				if err := os.Mkdir(root, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(root, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			l, err := NewLayout(root)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Prepare(); err != nil {
				t.Fatal(err)
			}
			if err := l.Prepare(); err != nil { // idempotent
				t.Fatal(err)
			}
			assertMode(t, l.Root, tt.wantRoot)
			for _, d := range []string{l.Certs, l.Logs, l.Bin} {
				assertMode(t, d, 0o700)
			}
			if got := l.LogFile("mining"); got != filepath.Join(root, "logs", "mining.log") {
				t.Errorf("LogFile = %s", got)
			}
			if got := l.AuditLog(); got != filepath.Join(root, "logs", "audit.jsonl") {
				t.Errorf("AuditLog = %s", got)
			}
		})
	}
}

func assertMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", p, got, want)
	}
}

func TestFindRepoRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "cmd", "hictl")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := FindRepoRoot(deep); err == nil {
		t.Fatal("found a root without go.work")
	}
	if err := os.WriteFile(filepath.Join(root, "go.work"), []byte("go 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{root, deep} {
		got, err := FindRepoRoot(from)
		if err != nil || got != root {
			t.Errorf("FindRepoRoot(%s) = %q, %v; want %q", from, got, err, root)
		}
	}
}

func TestLock(t *testing.T) {
	l, err := NewLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, held := LockHolder(l); held {
		t.Fatal("lock held before anyone took it")
	}
	unlock, err := Lock(l)
	if err != nil {
		t.Fatal(err)
	}
	if pid, held := LockHolder(l); !held || pid != os.Getpid() {
		t.Errorf("LockHolder = %d, %v; want our pid", pid, held)
	}
	if _, err := Lock(l); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Errorf("second Lock: %v, want ErrLocked naming the pid", err)
	}
	unlock()
	if _, held := LockHolder(l); held {
		t.Error("lock still held after unlock")
	}
	unlock2, err := Lock(l)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}
