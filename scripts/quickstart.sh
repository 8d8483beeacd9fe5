#!/usr/bin/env bash
# Install Sluiceway and run the bundled heart-disease example end to end on the embedded
# default (SQLite, a local datastore, local worker processes). Extra arguments go to
# `sluice quickstart` (for example --home DIR).
source "$(dirname "$0")/_env.sh"
sync_env server mlflow
exec "$ROOT/.venv/bin/sluice" quickstart "$@"
