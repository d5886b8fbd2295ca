package pgcluster

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestPortFromEnv(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    int
		wantErr bool
	}{
		{env: nil, want: DefaultPort},
		{env: map[string]string{"HASHINSIGHT_PG_PORT": ""}, want: DefaultPort},
		{env: map[string]string{"HASHINSIGHT_PG_PORT": "6543"}, want: 6543},
		{env: map[string]string{"HASHINSIGHT_PG_PORT": "0"}, wantErr: true},
		{env: map[string]string{"HASHINSIGHT_PG_PORT": "70000"}, wantErr: true},
		{env: map[string]string{"HASHINSIGHT_PG_PORT": "pg"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := PortFromEnv(lookup(tt.env))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("PortFromEnv(%v) = %d, %v; want %d, err %v", tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParents(t *testing.T) {
	got := Parents("/work/main/.data/pg")
	want := []string{"/work/main/.data", "/work/main", "/work", "/"}
	if !slices.Equal(got, want) {
		t.Errorf("Parents = %v, want %v", got, want)
	}
}

func TestSearchable(t *testing.T) {
	const pgUID, pgGID, other = 101, 104, 999
	tests := []struct {
		name             string
		mode             os.FileMode
		ownerUID, ownerG int
		uid              int
		gids             []int
		want             bool
	}{
		{"root may always", 0o700, 0, 0, 0, []int{0}, true},
		{"owner with x", 0o700, pgUID, other, pgUID, []int{pgGID}, true},
		{"owner without x", 0o600, pgUID, other, pgUID, []int{pgGID}, false},
		{"group member with g+x", 0o710, 0, pgGID, pgUID, []int{pgGID}, true},
		{"secondary group counts", 0o710, 0, 103, pgUID, []int{pgGID, 103}, true},
		{"group member without g+x ignores o+x", 0o701, 0, pgGID, pgUID, []int{pgGID}, false},
		{"other with o+x", 0o711, 0, 0, pgUID, []int{pgGID}, true},
		{"other without o+x", 0o700, 0, 0, pgUID, []int{pgGID}, false},
	}
	for _, tt := range tests {
		if got := Searchable(tt.mode, tt.ownerUID, tt.ownerG, tt.uid, tt.gids); got != tt.want {
			t.Errorf("%s: Searchable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPidFilePort(t *testing.T) {
	tests := []struct {
		content string
		want    int
		wantErr bool
	}{
		{content: "4242\n/x/data\n1700000000\n5433\n/x/run\n127.0.0.1\n  1234  5\nready   \n", want: 5433},
		{content: "4242\n/x/data\n", wantErr: true},
		{content: "4242\n/x/data\n1\nnot-a-port\n", wantErr: true},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "postmaster.pid")
		if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := PidFilePort(p)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("PidFilePort(%q) = %d, %v; want %d, err %v", tt.content, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestConfAndDSN(t *testing.T) {
	c := &Cluster{Dir: "/work/main/.data/pg", Port: 5433}
	conf := c.Conf()
	for _, want := range []string{"listen_addresses = '127.0.0.1'", "port = 5433", "unix_socket_directories = '/work/main/.data/pg/run'"} {
		if !strings.Contains(conf, want) {
			t.Errorf("conf lacks %q:\n%s", want, conf)
		}
	}
	long := &Cluster{Dir: "/" + strings.Repeat("d", 100), Port: 1}
	if !strings.Contains(long.Conf(), "unix_socket_directories = ''") {
		t.Errorf("a socket path over the kernel limit must disable the socket:\n%s", long.Conf())
	}
	if got, want := c.AdminDSN("hashinsight"), "postgres://postgres@127.0.0.1:5433/hashinsight?sslmode=disable"; got != want {
		t.Errorf("AdminDSN = %s, want %s", got, want)
	}
	for _, want := range []string{"local   all       all                     trust", "host    all       postgres  127.0.0.1/32  trust", "host    all       all       127.0.0.1/32  scram-sha-256"} {
		if !strings.Contains(HBA, want) {
			t.Errorf("pg_hba.conf lacks %q", want)
		}
	}
}

func TestFindBinDir(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := FindBinDir(lookup(map[string]string{"HASHINSIGHT_PG_BIN": dir}))
	if err != nil || got != dir {
		t.Errorf("FindBinDir = %q, %v; want the HASHINSIGHT_PG_BIN directory %q", got, err, dir)
	}
	// A directory missing a binary is passed over.
	incomplete := t.TempDir()
	if err := os.WriteFile(filepath.Join(incomplete, "initdb"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err = FindBinDir(lookup(map[string]string{"HASHINSIGHT_PG_BIN": incomplete}))
	if got == incomplete {
		t.Errorf("FindBinDir chose %s, which has no pg_ctl", incomplete)
	}
	if err != nil && !errors.Is(err, ErrNoBinaries) {
		t.Errorf("err = %v, want ErrNoBinaries", err)
	}
}

func TestPrepareAsCurrentUser(t *testing.T) {
	c := &Cluster{Dir: filepath.Join(t.TempDir(), "pg"), Port: 1}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c.Dir, c.SocketDir()} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, st.Mode().Perm())
		}
	}
}

// TestPrepareForAnotherUser checks, as root, that the cluster directory is
// handed to the postgres user and that only the allowed parent is opened up.
func TestPrepareForAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	base := t.TempDir()
	// t.TempDir's parents are private (0700); open them as a developer would.
	for _, p := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(base, ".data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: filepath.Join(data, "pg"), Port: 1, RunAs: u}

	err = c.Prepare()
	if err == nil || !strings.Contains(err.Error(), data) || !strings.Contains(err.Error(), "chmod o+x") {
		t.Fatalf("Prepare without permission to open .data: %v; want an error naming %s", err, data)
	}

	c.ChmodOK = []string{data}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o701 {
		t.Errorf(".data mode %v, want 0701 (o+x only)", st.Mode().Perm())
	}
	uid, _ := strconv.Atoi(u.Uid)
	for _, d := range []string{c.Dir, c.SocketDir()} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(st.Sys().(*syscall.Stat_t).Uid); got != uid || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: owner %d mode %v, want %d 0700", d, got, st.Mode().Perm(), uid)
		}
	}
}
