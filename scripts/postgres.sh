#!/usr/bin/env bash
# postgres.sh start DIR: start a throwaway PostgreSQL cluster in DIR and print its URL.
# postgres.sh stop DIR: stop it. Runs the server as the postgres user when invoked as root
# (initdb refuses root), as the current user otherwise.
set -euo pipefail
action="$1"; dir="$2"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
PATH="$PATH:/usr/local/bin:${bindir}"

as_owner() {
    if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
    command -v initdb >/dev/null || { echo "initdb not found" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" = "0" ] && chown postgres:postgres "$dir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner initdb -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1
    as_owner pg_ctl -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" \
        -l "$dir/pg.log" -w start >/dev/null
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    [ -d "$dir/data" ] && as_owner pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    ;;
esac
