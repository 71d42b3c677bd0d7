#!/usr/bin/env bash
# Make PostgreSQL and Redis reachable for the test suite and publish their URLs:
#   LIVEBASE_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/livebase_test
#   LIVEBASE_TEST_REDIS_URL=redis://127.0.0.1:6379/15
#
#   source scripts/services.sh          exports them into the current shell
#   bash scripts/services.sh            prints `export ...` lines; eval "$(bash scripts/services.sh)"
#
# Idempotent. A URL already set in the environment is used as given. Otherwise the
# server is probed; when it is not reachable and this runs as root, it is installed with
# apt-get (packages postgresql, redis-server) and started without systemd. When a server
# cannot be had, a warning says so and its variable is left unset, so the tests that need
# it are skipped (under CI=true that is an error instead).
#
# Overrides: LIVEBASE_TEST_PG_HOST / LIVEBASE_TEST_PG_PORT (default 127.0.0.1 / 5432),
# LIVEBASE_TEST_REDIS_HOST / LIVEBASE_TEST_REDIS_PORT (default 127.0.0.1 / 6379),
# LIVEBASE_TEST_AUTOSTART=0 never installs or starts anything, even as root.
# (Only LIVEBASE_TEST_* names are used: livebase rejects other unknown LIVEBASE_* variables.)

if [[ "${BASH_SOURCE[0]}" != "${0}" ]]; then
  # Sourced: run the real work in a child bash, then export what it printed.
  __livebase_services_out="$(bash "${BASH_SOURCE[0]}")" || {
    echo "ERROR: scripts/services.sh failed" >&2
    unset __livebase_services_out
    return 1
  }
  eval "$__livebase_services_out"
  unset __livebase_services_out
  return 0
fi

set -euo pipefail

ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PG_HOST="${LIVEBASE_TEST_PG_HOST:-127.0.0.1}"
PG_PORT="${LIVEBASE_TEST_PG_PORT:-5432}"
PG_USER="postgres"
PG_DB="livebase_test"
REDIS_HOST="${LIVEBASE_TEST_REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${LIVEBASE_TEST_REDIS_PORT:-6379}"
REDIS_DB="15"
AUTOSTART="${LIVEBASE_TEST_AUTOSTART:-1}"
APT_STAMP="${TMPDIR:-/tmp}/livebase-apt-updated"
WAIT_SECONDS=30

# Messages go to stderr: stdout carries only the export lines.
step() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" -eq 0 ]; }
is_local() { case "$1" in 127.0.0.1 | localhost | ::1) return 0 ;; *) return 1 ;; esac }
url_host() { case "$1" in *:*) printf '[%s]' "$1" ;; *) printf '%s' "$1" ;; esac }
in_ci() { case "${CI:-}" in true | 1 | yes) return 0 ;; *) return 1 ;; esac }

# A server we tried to provide is still unusable: fatal in CI, a skip elsewhere.
give_up() { # what, message
  if in_ci; then
    printf 'ERROR: %s\n' "$2" >&2
    exit 1
  fi
  warn "$2"
  warn "the $1 variants of the tests will be SKIPPED."
  return 1
}

can_autostart() { # host
  [ "$AUTOSTART" != 0 ] && is_root && command -v apt-get >/dev/null 2>&1 && is_local "$1"
}

# Why can_autostart said no, for the warning.
no_autostart_reason() { # host
  if [ "$AUTOSTART" = 0 ]; then
    echo "LIVEBASE_TEST_AUTOSTART=0"
  elif ! is_root; then
    echo "it is only installed/started automatically when this runs as root"
  elif ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get is not available to install it"
  else
    echo "$1 is not a local address, so nothing is started for it"
  fi
}

# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

tcp_open() { # host port
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

wait_for() { # seconds command...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1
  else
    tcp_open "$PG_HOST" "$PG_PORT"
  fi
}

# Run one SQL statement as $PG_USER (no password) in a database; prints rows as a|b.
pg_sql() { # database sql
  if command -v psql >/dev/null 2>&1; then
    PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" \
      -U "$PG_USER" -d "$1" -Atc "$2" </dev/null
  elif [ -x .venv/bin/python ] && .venv/bin/python -c 'import asyncpg' 2>/dev/null; then
    .venv/bin/python - "$PG_HOST" "$PG_PORT" "$PG_USER" "$1" "$2" <<'EOF'
import asyncio
import sys

import asyncpg


async def main() -> None:
    host, port, user, database, sql = sys.argv[1:]
    conn = await asyncpg.connect(host=host, port=int(port), user=user, database=database,
                                 timeout=5)
    try:
        for row in await conn.fetch(sql):
            print("|".join(str(v) for v in row))
    finally:
        await conn.close()


try:
    asyncio.run(main())
except Exception as exc:  # report like psql does, without a traceback
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
EOF
  else
    echo "neither psql nor .venv with asyncpg is available (run scripts/setup.sh first)" >&2
    return 127
  fi
}

pg_cluster_version() {
  # The newest configured Debian cluster version, if any.
  local d
  d="$(find /etc/postgresql -mindepth 2 -maxdepth 2 -name main -type d 2>/dev/null | sort -V |
    tail -n 1)"
  [ -n "$d" ] && basename "$(dirname "$d")"
}

pg_started_here=0
pg_start() {
  pg_started_here=1
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(pg_cluster_version)" ]; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /usr/lib/postgresql ]; then
      apt_install postgresql || return 1
    fi
    if [ -z "$(pg_cluster_version)" ]; then
      local v
      v="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V |
        tail -n 1)"
      [ -n "$v" ] || return 1
      step "creating PostgreSQL cluster $v/main"
      pg_createcluster "$v" main >&2 || return 1
    fi
  fi
  local ver
  ver="$(pg_cluster_version)"
  if pg_ready; then # the package's own scripts may have started it already
    return 0
  fi
  step "starting PostgreSQL $ver/main (pg_ctlcluster, without systemd)"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 ||
    warn "pg_ctlcluster $ver main start failed (it may already be running on another port)"
  step "waiting for PostgreSQL on $PG_HOST:$PG_PORT"
  wait_for "$WAIT_SECONDS" pg_ready
}

# Let $PG_USER in over loopback without a password (only for a cluster we started).
pg_trust_loopback() {
  local ver hba tmp
  ver="$(pg_cluster_version)"
  [ -n "$ver" ] || return 1
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  [ -f "$hba" ] || return 1
  if ! grep -q 'livebase-test-trust' "$hba"; then
    step "allowing passwordless '$PG_USER' logins over loopback in $hba"
    tmp="$(mktemp)"
    {
      echo "# livebase-test-trust: the test suite logs in as $PG_USER over loopback"
      echo "host    all    $PG_USER    127.0.0.1/32    trust"
      echo "host    all    $PG_USER    ::1/128         trust"
      cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba" # keeps the file's owner and mode
    rm -f "$tmp"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >&2
  sleep 1
}

ensure_postgres() {
  local where="$PG_HOST:$PG_PORT"
  if pg_ready; then
    step "PostgreSQL is reachable on $where"
  elif tcp_open "$PG_HOST" "$PG_PORT"; then
    step "something listens on $where; waiting for PostgreSQL to accept connections"
    wait_for "$WAIT_SECONDS" pg_ready ||
      give_up PostgreSQL "$where is open but PostgreSQL does not accept connections there" ||
      return 1
  elif can_autostart "$PG_HOST"; then
    step "PostgreSQL is not reachable on $where; installing/starting it (root)"
    pg_start || give_up PostgreSQL "could not install or start PostgreSQL on $where" || return 1
  else
    warn "PostgreSQL is not reachable on $where ($(no_autostart_reason "$PG_HOST"))."
    warn "Start it, or set LIVEBASE_TEST_POSTGRES_URL=postgresql+asyncpg://USER[:PASS]@HOST:PORT/DB"
    warn "the PostgreSQL variants of the tests will be SKIPPED."
    return 1
  fi

  local err
  if ! err="$(pg_sql postgres 'SELECT 1' 2>&1 >/dev/null)"; then
    if [ "$pg_started_here" -eq 1 ] && is_root && pg_trust_loopback &&
      err="$(pg_sql postgres 'SELECT 1' 2>&1 >/dev/null)"; then
      :
    else
      give_up PostgreSQL "cannot log in to PostgreSQL on $where as '$PG_USER' without a password:
         $err
         Allow it (trust auth for 127.0.0.1 in pg_hba.conf), or set
         LIVEBASE_TEST_POSTGRES_URL=postgresql+asyncpg://USER:PASS@HOST:PORT/DB" || return 1
    fi
  fi

  local exists
  exists="$(pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" || exists=""
  if [ "$exists" = 1 ]; then
    step "database $PG_DB exists"
  else
    step "creating database $PG_DB"
    if ! err="$(pg_sql postgres "CREATE DATABASE $PG_DB" 2>&1 >/dev/null)"; then
      # A concurrent run may have created it meanwhile.
      exists="$(pg_sql postgres "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" || true
      [ "$exists" = 1 ] ||
        give_up PostgreSQL "could not create database $PG_DB on $where: $err" || return 1
    fi
  fi
}

# --------------------------------------------------------------------- Redis

redis_ready() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
  else
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 3 bash -c '
      exec 3<>"/dev/tcp/$0/$1" || exit 1
      printf "PING\r\n" >&3
      IFS= read -r line <&3
      [[ $line == +PONG* ]]' "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
  fi
}

redis_start() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server || return 1
    # The package's own scripts may have started one already.
    if wait_for 5 redis_ready; then
      return 0
    fi
  fi
  local bind="$REDIS_HOST"
  [ "$bind" != localhost ] || bind=127.0.0.1
  step "starting redis-server on $bind:$REDIS_PORT (no persistence)"
  (cd / && redis-server --daemonize yes --bind "$bind" --port "$REDIS_PORT" \
    --save "" --appendonly no >&2) || return 1
  step "waiting for Redis on $REDIS_HOST:$REDIS_PORT"
  wait_for "$WAIT_SECONDS" redis_ready
}

ensure_redis() {
  local where="$REDIS_HOST:$REDIS_PORT"
  if redis_ready; then
    step "Redis is reachable on $where"
  elif tcp_open "$REDIS_HOST" "$REDIS_PORT"; then
    give_up Redis "$where is open but does not answer PING without a password;
         set LIVEBASE_TEST_REDIS_URL=redis://[:PASSWORD@]HOST:PORT/15" || return 1
  elif can_autostart "$REDIS_HOST"; then
    step "Redis is not reachable on $where; installing/starting it (root)"
    redis_start || give_up Redis "could not install or start Redis on $where" || return 1
  else
    warn "Redis is not reachable on $where ($(no_autostart_reason "$REDIS_HOST"))."
    warn "Start it, or set LIVEBASE_TEST_REDIS_URL=redis://HOST:PORT/DB"
    warn "the Redis variants of the tests will be SKIPPED."
    return 1
  fi
}

# ---------------------------------------------------------------------- main

pg_url="${LIVEBASE_TEST_POSTGRES_URL:-}"
if [ -n "$pg_url" ]; then
  step "PostgreSQL: using LIVEBASE_TEST_POSTGRES_URL from the environment"
elif ensure_postgres; then
  pg_url="postgresql+asyncpg://$PG_USER@$(url_host "$PG_HOST"):$PG_PORT/$PG_DB"
fi

redis_url="${LIVEBASE_TEST_REDIS_URL:-}"
if [ -n "$redis_url" ]; then
  step "Redis: using LIVEBASE_TEST_REDIS_URL from the environment"
elif ensure_redis; then
  redis_url="redis://$(url_host "$REDIS_HOST"):$REDIS_PORT/$REDIS_DB"
fi

[ -z "$pg_url" ] || printf 'export LIVEBASE_TEST_POSTGRES_URL=%q\n' "$pg_url"
[ -z "$redis_url" ] || printf 'export LIVEBASE_TEST_REDIS_URL=%q\n' "$redis_url"
step "services: PostgreSQL ${pg_url:-SKIPPED}; Redis ${redis_url:-SKIPPED}"
