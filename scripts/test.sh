#!/usr/bin/env bash
# Install what the tests need, start the services they use (a throwaway PostgreSQL cluster,
# Azurite for Azure Blob, moto's S3 server and a two-node Ray cluster), then run ruff, mypy
# --strict and the whole pytest suite. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh"
sync_env server mlflow dev azure s3 azureml-sdk ray

# The studio's browser tests drive Debian's Chromium through Playwright (never
# `playwright install`): install it when it is missing and we may (root, apt-get).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Chromium for the browser tests ..." >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
            >/dev/null 2>&1 || echo "Chromium could not be installed." >&2
    fi
    [ -x /usr/bin/chromium ] ||
        echo "No /usr/bin/chromium: the browser tests skip (and fail when CI=true)." >&2
fi

SERVICES="$(mktemp -d /tmp/sluiceway-test.XXXXXX)"
chmod 755 "$SERVICES"
cleanup() {
    bash "$ROOT/scripts/ray.sh" stop "$SERVICES/ray" || true
    bash "$ROOT/scripts/postgres.sh" stop "$SERVICES/pg" || true
    bash "$ROOT/scripts/storage.sh" stop "$SERVICES/storage" || true
    rm -rf "$SERVICES"
}
trap cleanup EXIT

if url="$(bash "$ROOT/scripts/postgres.sh" start "$SERVICES/pg")"; then
    export SLUICEWAY_TEST_POSTGRES_URL="$url"
    echo "PostgreSQL: $url"
else
    echo "PostgreSQL could not be started: its tests skip (and fail when CI=true)." >&2
fi

# Never ask a cloud metadata service for credentials: tests reach only loopback.
export AWS_EC2_METADATA_DISABLED=true
while IFS='=' read -r key value; do
    [ -n "$key" ] && export "$key=$value" && echo "$key: $value"
done < <(bash "$ROOT/scripts/storage.sh" start "$SERVICES/storage" || true)
[ -n "${SLUICEWAY_TEST_AZURITE_URL:-}" ] && [ -n "${SLUICEWAY_TEST_S3_URL:-}" ] ||
    echo "Azurite or the S3 server could not be started: their tests skip (and fail when CI=true)." >&2

# A Ray cluster of two nodes for the ray executor's tests; its addresses (the GCS's, and the
# head's Ray Client server's, ray://) and auth token are exported for them (and for the servers
# they start).
while IFS='=' read -r key value; do
    [ -n "$key" ] && export "$key=$value" && echo "$key: $value"
done < <(bash "$ROOT/scripts/ray.sh" start "$SERVICES/ray" || true)
[ -n "${SLUICEWAY_TEST_RAY_ADDRESS:-}" ] && [ -n "${SLUICEWAY_TEST_RAY_CLIENT_ADDRESS:-}" ] ||
    echo "The Ray cluster could not be started: its tests skip (and fail when CI=true)." >&2

echo "== ruff" && "$ROOT/.venv/bin/ruff" check src tests benchmarks
"$ROOT/.venv/bin/ruff" format --check src tests benchmarks
echo "== mypy --strict" && "$ROOT/.venv/bin/mypy" src/sluiceway
echo "== pytest" && "$ROOT/.venv/bin/pytest" "$@"
