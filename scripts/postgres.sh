#!/usr/bin/env bash
# Source this file: starts a throwaway PostgreSQL cluster on a free loopback
# port and exports WAOPS_TEST_POSTGRES_URL, and WAOPS_TEST_POSTGRES_CTL (a script
# that stops or starts that cluster, for the restart test). The cluster stops when the shell
# that sourced it exits (call waops_pg_stop to stop it earlier).
# Installs PostgreSQL from Debian packages when initdb is missing.

waops_pg_bin() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

waops_pg_start() {
  local bin
  if ! bin=$(waops_pg_bin); then
    echo "postgres.sh: installing PostgreSQL from Debian packages" >&2
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bin=$(waops_pg_bin) || { echo "postgres.sh: no initdb after install" >&2; return 1; }
  fi
  WAOPS_PG_DIR=$(mktemp -d /tmp/waops-pg.XXXXXX)
  local port as=()
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$WAOPS_PG_DIR"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$WAOPS_PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$WAOPS_PG_DIR/initdb.log" 2>&1 \
    || { cat "$WAOPS_PG_DIR/initdb.log" >&2; return 1; }
  local opts="-p $port -k $WAOPS_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
  "${as[@]}" "$bin/pg_ctl" -D "$WAOPS_PG_DIR/data" -l "$WAOPS_PG_DIR/server.log" -w -t 60 \
    -o "$opts" start >/dev/null \
    || { cat "$WAOPS_PG_DIR/server.log" >&2; return 1; }
  WAOPS_PG_CTL=("${as[@]}" "$bin/pg_ctl")
  # `ctl stop` / `ctl start`: for the test that restarts the server mid-run.
  printf '#!/bin/sh\ncase "$1" in\n  stop) exec %s -D %s -w -t 60 -m fast stop ;;\n  start) exec %s -D %s -l %s -w -t 60 -o "%s" start ;;\n  *) echo "usage: ctl stop|start" >&2; exit 2 ;;\nesac\n' \
    "${WAOPS_PG_CTL[*]}" "$WAOPS_PG_DIR/data" "${WAOPS_PG_CTL[*]}" "$WAOPS_PG_DIR/data" "$WAOPS_PG_DIR/server.log" "$opts" \
    >"$WAOPS_PG_DIR/ctl"
  chmod +x "$WAOPS_PG_DIR/ctl"
  export WAOPS_TEST_POSTGRES_CTL="$WAOPS_PG_DIR/ctl"
  export WAOPS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  trap waops_pg_stop EXIT
  echo "postgres.sh: PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
}

waops_pg_stop() {
  if [ -n "${WAOPS_PG_DIR:-}" ] && [ -d "$WAOPS_PG_DIR/data" ]; then
    "${WAOPS_PG_CTL[@]}" -D "$WAOPS_PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$WAOPS_PG_DIR"
  fi
  WAOPS_PG_DIR=
}

waops_pg_start
