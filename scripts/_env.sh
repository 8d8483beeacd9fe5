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
sync_env() {
    ensure_uv
    local args=()
    for extra in "$@"; do args+=(--extra "$extra"); done
    "$UV" sync --frozen --quiet "${args[@]}"
}
