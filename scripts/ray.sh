#!/usr/bin/env bash
# ray.sh start DIR: start a two-node Ray cluster on this machine (a head and one more node, one
# CPU each, small object stores) on free ports, with its sessions, logs and auth token in DIR,
# the head serving Ray Client too, and print the variables the tests read (KEY=VALUE lines):
# the GCS address, the Ray Client address (ray://) and the auth settings.
# ray.sh stop DIR: stop that cluster's processes, found by DIR in their command lines, or by
# its GCS address in those of the Ray Client servers (never `ray stop`, which would stop every
# Ray cluster of the machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
action="$1"; dir="$2"
RAY="$ROOT/.venv/bin/ray"
PY="$ROOT/.venv/bin/python"

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "$action" in
start)
    [ -x "$RAY" ] || { echo "ray not found in .venv: install the ray extra" >&2; exit 1; }
    mkdir -p "$dir"
    # Token authentication, with a token of this cluster's own (not ~/.ray/auth_token).
    "$PY" -c 'import secrets; print(secrets.token_hex(32))' >"$dir/token"
    chmod 600 "$dir/token"
    export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$dir/token"
    port="$(free_port)"
    client_port="$(free_port)"
    echo "$port" >"$dir/gcs_port"
    # The head's Ray Client server is told the runtime env agent's port as given to ray start,
    # so that port is chosen here (with the default, 0, no Ray Client session can start).
    common=(--num-cpus 1 --object-store-memory 200000000 --disable-usage-stats)
    "$RAY" start --head --port "$port" --temp-dir "$dir/t" "${common[@]}" \
        --ray-client-server-port "$client_port" --runtime-env-agent-port "$(free_port)" \
        --include-dashboard=false --dashboard-port "$(free_port)" \
        --dashboard-agent-listen-port "$(free_port)" >"$dir/head.log" 2>&1 ||
        { echo "the Ray head did not start; see $dir/head.log" >&2; exit 1; }
    "$RAY" start --address "127.0.0.1:$port" "${common[@]}" \
        --dashboard-agent-listen-port "$(free_port)" >"$dir/node.log" 2>&1 ||
        { echo "the second Ray node did not start; see $dir/node.log" >&2; exit 1; }
    echo "SLUICEWAY_TEST_RAY_ADDRESS=127.0.0.1:$port"
    echo "SLUICEWAY_TEST_RAY_CLIENT_ADDRESS=ray://127.0.0.1:$client_port"
    echo "RAY_AUTH_MODE=token"
    echo "RAY_AUTH_TOKEN_PATH=$dir/token"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    "$PY" - "$dir" <<'PYEOF'
import os, sys, psutil
folder = sys.argv[1].rstrip("/") + "/"
try:  # Ray's client servers name the cluster by its GCS address only (the node's IP:port)
    with open(folder + "gcs_port") as fh:
        gcs = ":" + fh.read().strip()
except FileNotFoundError:
    gcs = None
me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
found = []
for process in psutil.process_iter(["cmdline"]):
    if process.pid in me:
        continue
    parts = process.info["cmdline"] or []
    if any(folder in p or (gcs and p.startswith("--address=") and p.endswith(gcs)) for p in parts):
        found.append(process)
        found += process.children(recursive=True)
for process in found:
    try:
        process.terminate()
    except psutil.Error:
        pass
_, alive = psutil.wait_procs(found, timeout=5)
for process in alive:
    try:
        process.kill()
    except psutil.Error:
        pass
PYEOF
    ;;
esac
