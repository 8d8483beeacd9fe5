# Shared by scripts/quickstart.sh and scripts/test.sh: install uv (into .tools/) and the venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ensure_uv() {
    if command -v uv >/dev/null 2>&1; then
        UV="$(command -v uv)"
    else
        UV="$ROOT/.tools/uv/bin/uv"
        if [ ! -x "$UV" ]; then
            echo "Installing uv into .tools/uv ..." >&2
            python3 -m venv "$ROOT/.tools/uv"
            "$ROOT/.tools/uv/bin/pip" install --quiet uv
        fi
    fi
    export UV
}

# sync_env EXTRA...: the project venv (.venv) with the given extras, from uv.lock exactly.
# Bytecode is compiled at install (about 40 s once): with PYTHONDONTWRITEBYTECODE set, as it is
# on some machines, every worker process would otherwise compile mlflow, pandas and sklearn
# again when it starts (import mlflow.pyfunc: 6.9 s without .pyc files, 3.4 s with).
sync_env() {
    ensure_uv
    local args=()
    for extra in "$@"; do args+=(--extra "$extra"); done
    "$UV" sync --frozen --quiet --compile-bytecode "${args[@]}"
}
