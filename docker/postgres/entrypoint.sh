#!/bin/sh
# Entrypoint of docker/postgres.Dockerfile: the official postgres image's contract, kept small.
#
# On the official image it hands over to docker-entrypoint.sh. On a Debian base it:
#   - as root: fixes the ownership of $PGDATA (named volume or bind mount) and re-runs itself as
#     the postgres user;
#   - on first start (no $PGDATA/PG_VERSION): initdb with POSTGRES_USER as superuser and
#     POSTGRES_PASSWORD, password auth (scram-sha-256) for network clients, trust on the unix
#     socket inside the container, then creates POSTGRES_DB in single-user mode (no server is
#     listening before initialisation is complete);
#   - runs postgres in the foreground (PID 1: SIGINT from `docker stop` is a fast shutdown).
# Not supported on the Debian path: /docker-entrypoint-initdb.d scripts (use the official base).
set -eu

if [ -x /usr/local/bin/docker-entrypoint.sh ]; then
  exec /usr/local/bin/docker-entrypoint.sh "$@"
fi

say() { echo "postgres-entrypoint: $*" >&2; }

# `docker run image -c shared_buffers=256MB` means postgres with those flags.
case "${1:-postgres}" in -*) set -- postgres "$@" ;; esac
[ "$#" -gt 0 ] || set -- postgres
if [ "$1" != postgres ]; then
  exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    say "error: the database is not initialised and POSTGRES_PASSWORD is empty."
    say "Set POSTGRES_PASSWORD (compose.team.yaml: MLCI_DB_PASSWORD), or POSTGRES_HOST_AUTH_METHOD=trust for a throwaway database."
    exit 2
  fi
  say "initialising $PGDATA (superuser $user, database $db)"
  pwfile="$(mktemp)"
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of flags, as in the official image.
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
    --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  trap - EXIT
  echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    quoted_db="$(printf '%s' "$db" | sed 's/"/""/g')"
    quoted_user="$(printf '%s' "$user" | sed 's/"/""/g')"
    echo "CREATE DATABASE \"$quoted_db\" OWNER \"$quoted_user\";" \
      | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  say "initialised"
fi

shift  # "postgres"
exec postgres -c listen_addresses='*' "$@"
