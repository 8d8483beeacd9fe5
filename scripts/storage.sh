#!/usr/bin/env bash
# storage.sh start DIR: start Azurite (blob) and moto's S3 server on free loopback ports, with
# their data and logs in DIR, and print the variables the tests read (KEY=VALUE lines).
# storage.sh stop DIR: stop both. Azurite comes from npm into .tools/node, moto from the venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
action="$1"; dir="$2"
AZURITE_VERSION="3.35.0"
NODE_DIR="$ROOT/.tools/node"

free_port() {
    "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {  # wait_port PORT PID NAME
    for _ in $(seq 1 100); do
        if ! kill -0 "$2" 2>/dev/null; then echo "$3 exited; see $dir/$3.log" >&2; return 1; fi
        if "$ROOT/.venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$3 did not listen on port $1" >&2; return 1
}

ensure_azurite() {
    [ -x "$NODE_DIR/node_modules/.bin/azurite-blob" ] && return 0
    command -v npm >/dev/null || { echo "npm not found: cannot install Azurite" >&2; return 1; }
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"name": "sluiceway-test-tools", "private": true}' >"$NODE_DIR/package.json"
    echo "Installing Azurite $AZURITE_VERSION into .tools/node ..." >&2
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >&2)
}

case "$action" in
start)
    mkdir -p "$dir/azurite"
    if ensure_azurite; then
        port="$(free_port)"
        "$NODE_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
            --location "$dir/azurite" --skipApiVersionCheck --disableTelemetry --silent \
            >"$dir/azurite.log" 2>&1 &
        echo $! >"$dir/azurite.pid"
        if wait_port "$port" "$(cat "$dir/azurite.pid")" azurite; then
            echo "SLUICEWAY_TEST_AZURITE_URL=http://127.0.0.1:$port"
        fi
    fi
    if [ -x "$ROOT/.venv/bin/moto_server" ]; then
        port="$(free_port)"
        "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
        echo $! >"$dir/moto.pid"
        if wait_port "$port" "$(cat "$dir/moto.pid")" moto; then
            echo "SLUICEWAY_TEST_S3_URL=http://127.0.0.1:$port"
        fi
    else
        echo "moto_server not found in .venv: install the dev extra" >&2
    fi
    ;;
stop)
    for name in azurite moto; do
        if [ -f "$dir/$name.pid" ]; then
            kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
            rm -f "$dir/$name.pid"
        fi
    done
    ;;
esac
