#!/usr/bin/env bash
# testdb.sh — a throwaway PostgreSQL cluster for tests, shared by every package of a `make test` run.
#
#   scripts/testdb.sh start DIR   start a cluster for DIR (idempotent); prints `export TEST_DATABASE_URL=...`
#   scripts/testdb.sh env DIR     print the export line of DIR's running cluster
#   scripts/testdb.sh status DIR  exit 0 when DIR's cluster is running
#   scripts/testdb.sh stop DIR    stop the cluster and delete its files (idempotent)
#
# Typical use: eval "$(scripts/testdb.sh start /tmp/testdb)"; go test ./...; scripts/testdb.sh stop /tmp/testdb
#
# The cluster listens on 127.0.0.1 only (a free port) with its socket in its own directory; durability is
# off (fsync, full_page_writes, synchronous_commit) because the data is thrown away. The superuser
# `postgres` is trusted from 127.0.0.1; every other role must log in with its SCRAM password, so
# role passwords set by postgres.Bootstrap are really checked. The data directory lives in /dev/shm
# when it is a usable tmpfs (cloning test databases is several times faster in memory; set
# TESTDB_TMPFS=0 to keep it in DIR). Running as root, initdb and postgres run as the postgres user.
# Only stdout carries the export line; everything else goes to stderr.
set -euo pipefail

readonly MARKER=.hashinsight-testdb
readonly SHM_PREFIX=/dev/shm/hashinsight-testdb.

die() { echo "testdb: $*" >&2; exit 1; }

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# as_pg runs a command as the postgres user when we are root (initdb and postgres refuse root).
as_pg() {
  if [[ $(id -u) -ne 0 ]]; then
    "$@"
  elif command -v runuser >/dev/null; then
    runuser -u postgres -- "$@"
  else
    local q; printf -v q '%q ' "$@"
    su postgres -s /bin/sh -c "$q"
  fi
}

bindir() {
  local d
  if [[ -n ${PG_BINDIR:-} && -x $PG_BINDIR/initdb ]]; then echo "$PG_BINDIR"; return; fi
  if d=$(pg_config --bindir 2>/dev/null) && [[ -x $d/initdb ]]; then echo "$d"; return; fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [[ -n $d && -x $d/initdb ]]; then echo "$d"; return; fi
  if d=$(command -v initdb 2>/dev/null); then dirname "$d"; return; fi
  die "PostgreSQL server binaries (initdb, pg_ctl) not found; install them (apt-get install postgresql) or set PG_BINDIR"
}

# datadir prints DIR's data directory, if DIR has one.
datadir() { [[ -f $1/datadir ]] && cat "$1/datadir"; }

is_running() {
  local data
  data=$(datadir "$1") || return 1
  [[ -f $data/PG_VERSION ]] || return 1
  as_pg "$(bindir)/pg_ctl" -D "$data" status >/dev/null 2>&1
}

print_env() {
  [[ -f $1/port ]] || die "no cluster in $1"
  echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$(cat "$1/port")/postgres?sslmode=disable"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# sweep deletes /dev/shm clusters older than an hour whose server is gone (a run killed before stop).
sweep() {
  local d
  for d in "$SHM_PREFIX"*; do
    [[ -d $d && -z $(find "$d" -maxdepth 0 -mmin -60) ]] || continue
    if [[ ! -f $d/data/postmaster.pid ]] || ! kill -0 "$(head -n1 "$d/data/postmaster.pid")" 2>/dev/null; then
      rm -rf -- "$d"
    fi
  done
}

abspath() { mkdir -p "$1" && (cd "$1" && pwd); }

cmd_start() {
  local dir base data bin port log
  dir=$(abspath "$1")
  if is_running "$dir"; then print_env "$dir"; return; fi
  if [[ -n $(ls -A "$dir") && ! -f $dir/$MARKER ]]; then
    die "$dir is not empty and not a testdb directory; refusing to use it"
  fi
  cmd_stop "$dir" >/dev/null # leftovers of a run that was killed
  mkdir -p "$dir"
  touch "$dir/$MARKER"
  sweep

  bin=$(bindir)
  base=$dir
  if [[ ${TESTDB_TMPFS:-1} != 0 && -d /dev/shm && -w /dev/shm ]] &&
     (( $(df -Pk /dev/shm | awk 'NR==2 {print $4}') > 1048576 )); then
    base=$(mktemp -d "${SHM_PREFIX}XXXXXX")
  fi
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a postgres user to run initdb"
    chown postgres: "$base"
    chmod 0700 "$base"
    as_pg test -x "$base" || die "the postgres user cannot reach $base; use a directory under /tmp"
  fi
  data=$base/data
  log=$base/postgres.log
  echo "$data" >"$dir/datadir"

  if ! as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed"
  fi
  as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# testdb.sh: throwaway cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$base'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
autovacuum = off
dynamic_shared_memory_type = mmap
log_min_messages = warning
EOF
  as_pg tee "$data/pg_hba.conf" >/dev/null <<'EOF'
# testdb.sh: throwaway cluster
local all all                trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
EOF

  for _ in 1 2 3 4 5; do
    port=$(( 20000 + RANDOM % 40000 ))
    port_in_use "$port" && continue
    if as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port" start >"$dir/pg_ctl.log" 2>&1; then
      echo "$port" >"$dir/port"
      echo "testdb: PostgreSQL $(cat "$data/PG_VERSION") running on 127.0.0.1:$port (data $data)" >&2
      print_env "$dir"
      return
    fi
    grep -qE 'could not bind|already in use' "$log" 2>/dev/null || break
  done
  cat "$dir/pg_ctl.log" >&2
  tail -n 20 "$log" >&2 2>/dev/null || true
  die "could not start PostgreSQL"
}

cmd_stop() {
  local dir data base
  [[ -d $1 ]] || return 0
  dir=$(cd "$1" && pwd)
  if [[ ! -f $dir/$MARKER ]]; then
    [[ -z $(ls -A "$dir") ]] && return 0
    die "$dir is not a testdb directory; refusing to delete anything in it"
  fi
  if data=$(datadir "$dir") && [[ -f $data/PG_VERSION ]]; then
    as_pg "$(bindir)/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  if [[ -n ${data:-} ]]; then
    base=$(dirname "$data")
    if [[ $base == "$SHM_PREFIX"* ]]; then
      rm -rf -- "$base"
    fi
  fi
  rm -rf -- "$dir/data" "$dir/postgres.log" "$dir/initdb.log" "$dir/pg_ctl.log" "$dir/port" "$dir/datadir" "$dir/$MARKER"
  rmdir -- "$dir" 2>/dev/null || true
}

[[ $# -eq 2 ]] || usage
case $1 in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  env) [[ -d $2 ]] && is_running "$(abspath "$2")" || die "no cluster running in $2"; print_env "$(abspath "$2")" ;;
  status) [[ -d $2 ]] && is_running "$(abspath "$2")" ;;
  *) usage ;;
esac
