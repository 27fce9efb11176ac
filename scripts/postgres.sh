#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the @lockstep/postgres tests and benchmarks: a temp directory,
# a loopback port nobody uses, fsync off. Nothing is left behind once it is stopped.
#
#   eval "$(bash scripts/postgres.sh start)"   # prints `export LOCKSTEP_PG_URL=… LOCKSTEP_PG_DIR=…`
#   bash scripts/postgres.sh stop               # stops the cluster in $LOCKSTEP_PG_DIR and removes it
#   bash scripts/postgres.sh run pnpm test      # start, run the command with the variables, stop
#
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (runuser);
# as anyone else it runs as that user. Binaries: $LOCKSTEP_PG_BIN, else PostgreSQL 15's, else the
# newest under /usr/lib/postgresql. Logs go to stderr; only the export lines go to stdout.
set -euo pipefail

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

find_bin() {
  if [ -n "${LOCKSTEP_PG_BIN:-}" ]; then printf '%s\n' "$LOCKSTEP_PG_BIN"; return; fi
  if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then printf '%s\n' /usr/lib/postgresql/15/bin; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$newest" ] && [ -x "$newest/pg_ctl" ]; then printf '%s\n' "$newest"; return; fi
  log "no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin; set LOCKSTEP_PG_BIN)"
  exit 1
}

# Runs a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A TCP port on 127.0.0.1 that is free right now (the kernel picks it).
free_port() {
  node -e 'const s = require("node:net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

start() {
  local bin dir port attempt
  bin=$(find_bin)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-pg.XXXXXX")
  chmod 700 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
  (cd "$dir" && as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1) || {
    cat "$dir/initdb.log" >&2
    log "initdb failed"
    stop_dir "$dir" || true
    return 1
  }
  # Another process may take the port between picking it and binding it: try a few.
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
      -o "-F -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=300" \
      >"$dir/pg_ctl.log" 2>&1); then
      log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir"
      printf 'export LOCKSTEP_PG_URL=%q\n' "postgres://postgres@127.0.0.1:$port/postgres"
      printf 'export LOCKSTEP_PG_DIR=%q\n' "$dir"
      return 0
    fi
    log "start on port $port failed (attempt $attempt)"
  done
  cat "$dir/pg_ctl.log" "$dir/server.log" >&2 || true
  log "could not start PostgreSQL"
  stop_dir "$dir" || true
  return 1
}

stop_dir() {
  local dir=$1 bin
  [ -n "$dir" ] || return 0
  case "$dir" in
    */lockstep-pg.*) ;;
    *) log "refusing to remove $dir (not a directory this script made)"; return 1 ;;
  esac
  [ -d "$dir" ] || return 0
  bin=$(find_bin)
  if [ -f "$dir/data/postmaster.pid" ]; then
    (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 30 stop -m fast >/dev/null 2>&1) ||
      (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 10 stop -m immediate >/dev/null 2>&1) || true
  fi
  rm -rf "$dir"
  log "stopped and removed $dir"
}

case "${1:-}" in
  start)
    start
    ;;
  stop)
    stop_dir "${2:-${LOCKSTEP_PG_DIR:-}}"
    ;;
  run)
    shift
    [ $# -gt 0 ] || { log "usage: postgres.sh run COMMAND [ARG…]"; exit 2; }
    env_lines=$(start)
    eval "$env_lines"
    trap 'stop_dir "$LOCKSTEP_PG_DIR"' EXIT
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
  *)
    echo "usage: postgres.sh start | stop [DIR] | run COMMAND [ARG…]" >&2
    exit 2
    ;;
esac
