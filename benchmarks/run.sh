#!/usr/bin/env bash
# Run the benchmarks (benchmarks/README.md): install the server, MLflow, Ray Data and the
# profiler into the project venv from uv.lock, then run benchmarks/compare.py with the given
# flags, e.g. ./benchmarks/run.sh --workloads medium --files 20 --rows 500
#
# The sync adds what the benchmarks need and removes nothing (--inexact), so the venv keeps
# the extras the tests installed; it compiles the packages' bytecode (once), as a deployment
# would, so that no contender spends its start-up compiling sources (PYTHONDONTWRITEBYTECODE
# would otherwise make every process do that again). UV_PROJECT_ENVIRONMENT=DIR selects
# another venv.
source "$(dirname "$0")/../scripts/_env.sh"
ensure_uv
"$UV" sync --frozen --inexact --compile-bytecode --quiet --extra bench
VENV="${UV_PROJECT_ENVIRONMENT:-$ROOT/.venv}"
exec "$VENV/bin/python" -m benchmarks.compare "$@"
