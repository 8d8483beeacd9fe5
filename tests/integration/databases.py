"""Workspace databases for tests: a SQLite file, or a PostgreSQL database of the test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from sluiceway.store.db import Database, make_engine
from tests.conftest import service_missing

POSTGRES_ENV = "SLUICEWAY_TEST_POSTGRES_URL"

# The ``params`` of a fixture that runs its tests on both databases.
DATABASES: list[Any] = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        service_missing(f"PostgreSQL (set {POSTGRES_ENV}; scripts/test.sh starts one)")
    assert admin_url is not None
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[Database]:
    """A new database with no schema yet (``kind`` is ``sqlite`` or ``postgres``), disposed
    of and, on PostgreSQL, dropped afterwards."""
    if kind == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'workspace.db'}")
        yield database
        database.dispose()
        return
    with postgres_database() as url:
        database = Database(url)
        yield database
        database.dispose()
