#!/usr/bin/env bash
# Runs `go test` over the given packages with one throwaway PostgreSQL cluster shared by every
# package (unless TEST_DATABASE_URL is already set). Redis-backed tests start their own redis-server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
  dir=$(mktemp -d /tmp/hashinsight-testdb.XXXXXX)
  trap '"$root/scripts/testdb.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
  eval "$("$root/scripts/testdb.sh" start "$dir")"
  export TEST_DATABASE_URL
fi

start=$(date +%s)
status=0
go test "$@" || status=$?
echo "go test finished in $(( $(date +%s) - start ))s (exit $status)"
exit $status
