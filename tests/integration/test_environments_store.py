"""Environment versions in the store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluiceway.store.db import Database, upgrade
from sluiceway.store.environments import EnvironmentStore
from tests.integration.test_store import _postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'workspace.db'}"])
    else:
        urls = _postgres_database()
    database = Database(next(urls))
    upgrade(database.engine)
    yield database
    database.dispose()
    for _ in urls:  # runs the generator's clean-up
        pass


def test_versions_latest_archive_and_delete(db: Database) -> None:
    store = EnvironmentStore(db)
    spec = {"requirements": ["numpy"]}
    first, created = store.create("env", None, spec, {"pip": ["numpy"]}, "a" * 32, "me")
    assert (first.version, created) == ("1", True)
    assert store.create("env", None, spec, {"pip": ["numpy"]}, "a" * 32, "me")[1] is False
    second, _ = store.create("env", None, {"requirements": ["six"]}, {}, "b" * 32, "me")
    assert second.version == "2"
    store.create("other", "7", spec, {}, "a" * 32, "me")
    latest = store.latest("env")
    assert latest is not None and latest.version == "2"
    assert store.set_archived("env", "2", True) == 1
    latest = store.latest("env")
    assert latest is not None and latest.version == "1"
    assert [r.name for r in store.list_latest()] == ["env", "other"]
    assert {(r.name, r.version) for r in store.list_latest(archived=True)} == {
        ("env", "2"),
        ("other", "7"),
    }
    assert store.content_hashes() == {"a" * 32, "b" * 32}
    assert store.delete("env", None) == 2
    assert store.versions("env") == []
