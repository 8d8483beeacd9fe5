#!/usr/bin/env bash
# Install what the tests need, start the services they use (a throwaway PostgreSQL cluster),
# then run ruff, mypy --strict and the whole pytest suite. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh"
sync_env server mlflow dev

SERVICES="$(mktemp -d /tmp/sluiceway-test.XXXXXX)"
chmod 755 "$SERVICES"
cleanup() {
    bash "$ROOT/scripts/postgres.sh" stop "$SERVICES/pg" || true
    rm -rf "$SERVICES"
}
trap cleanup EXIT

if url="$(bash "$ROOT/scripts/postgres.sh" start "$SERVICES/pg")"; then
    export SLUICEWAY_TEST_POSTGRES_URL="$url"
    echo "PostgreSQL: $url"
else
    echo "PostgreSQL could not be started: its tests skip (and fail when CI=true)." >&2
fi

echo "== ruff" && "$ROOT/.venv/bin/ruff" check src tests benchmarks
"$ROOT/.venv/bin/ruff" format --check src tests benchmarks
echo "== mypy --strict" && "$ROOT/.venv/bin/mypy" src/sluiceway
echo "== pytest" && "$ROOT/.venv/bin/pytest" "$@"
