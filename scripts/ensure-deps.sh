#!/usr/bin/env bash
# Installs the Debian packages the tests and `make run` need when they are missing:
# a PostgreSQL server (initdb, pg_ctl) and redis-server. Never touches running services.
set -euo pipefail

need=()
pg_bin() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    [[ -x "$d/initdb" ]] && { echo "$d"; return 0; }
  fi
  for d in /usr/lib/postgresql/*/bin; do [[ -x "$d/initdb" ]] && { echo "$d"; return 0; }; done
  return 1
}
pg_bin >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)

if ((${#need[@]} == 0)); then exit 0; fi
echo "installing Debian packages: ${need[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
