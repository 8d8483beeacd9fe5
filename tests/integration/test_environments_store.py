"""Environment versions in the store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from sluiceway.store.db import Database
from sluiceway.store.environments import EnvironmentStore


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
