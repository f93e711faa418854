#!/usr/bin/env bash
# Starts, unless it is already running, the throwaway Postgres cluster the tests use
# (Debian's binaries; as root, run as the `postgres` user; loopback only; fsync on), and
# prints its URL. Each test creates a database of its own on it.
set -euo pipefail
dir="${TEST_PG_DIR:-/tmp/ingrid-test-pg}"
port="${TEST_PG_PORT:-55432}"
bin=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

mkdir -p "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
if [ ! -f "$dir/PG_VERSION" ]; then
  as_pg "$bin/initdb" -D "$dir" -A trust -U postgres -E UTF8 --no-instructions >/dev/null
fi
if ! as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$port/postgres"
