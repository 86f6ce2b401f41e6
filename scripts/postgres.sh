#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests (and the queue benchmark), in a temporary folder.
#   scripts/postgres.sh start          prints two lines: the cluster folder, then its URL
#   scripts/postgres.sh stop DIR       stops it and deletes DIR
#   scripts/postgres.sh restart DIR    pg_ctl restart (the restart test uses it)
#   scripts/postgres.sh down|up DIR    stop or start the server, keeping its data (outage tests)
# Debian's `postgresql` package is installed when initdb is missing (apt-get; CI machines).
# initdb and pg_ctl refuse to run as root, so as root the cluster runs as the `postgres` user.
# It listens on a unix socket only (no TCP port to collide with), trust auth, fsync off: the
# data is thrown away, so only an OS crash could hurt it.
set -euo pipefail

bindir() {
    if ! command -v pg_config >/dev/null && ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
        echo "postgres.sh: installing Debian's postgresql package" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$dir" ] || dir=$(pg_config --bindir)
    echo "$dir"
}

as_owner() {  # run a PostgreSQL tool as the cluster's owner
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

server_start() {  # DIR
    as_owner "$(bindir)/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 30 \
        -o "-k $1 -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null || { cat "$1/server.log" >&2; exit 1; }
}

case "${1:-}" in
start)
    bin=$(bindir)
    dir=$(mktemp -d /tmp/disco-pg.XXXXXX)  # short: a socket path over 107 bytes is fatal
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" --auth=trust --username=postgres --no-sync \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # One role that must give a password, for the wrong-password test (every other login: trust).
    sed -i '1i local all disco_pw scram-sha-256' "$dir/data/pg_hba.conf"
    server_start "$dir"
    as_owner "$(dirname "$bin")/bin/psql" -q -h "$dir" -U postgres -d postgres \
        -c "CREATE ROLE disco_pw LOGIN PASSWORD 'disco-test'" >/dev/null
    echo "$dir"
    echo "postgresql://postgres@/postgres?host=$dir"
    ;;
stop)
    dir=${2:?usage: postgres.sh stop DIR}
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
restart)
    dir=${2:?usage: postgres.sh restart DIR}
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w -t 30 restart >/dev/null
    ;;
down)
    as_owner "$(bindir)/pg_ctl" -D "${2:?usage: postgres.sh down DIR}/data" -m fast -w -t 30 stop >/dev/null
    ;;
up)
    server_start "${2:?usage: postgres.sh up DIR}"
    ;;
*)
    echo "usage: scripts/postgres.sh start | stop DIR | restart DIR | down DIR | up DIR" >&2
    exit 2
    ;;
esac
