"""Start-up of processes that share a workspace on PostgreSQL: one key, given to each; a
process with another key, or code older than the database, refuses before it writes."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import text

from sluiceway.config import Settings
from sluiceway.errors import StartupRefused
from sluiceway.server.workspace import Workspace
from sluiceway.store.db import make_engine
from tests.integration.databases import postgres_database

pytestmark = pytest.mark.postgres


def settings(home: Path, url: str, **more: object) -> Settings:
    return Settings(home=home, database_url=url, role="api", **more)  # type: ignore[arg-type]


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


def test_a_shared_database_needs_a_key_and_keeps_its_fingerprint(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    with postgres_database() as url:
        with pytest.raises(StartupRefused, match="SLUICEWAY_SECRET_KEY_FILE"):
            Workspace(settings(tmp_path / "a", url), "http://x")
        assert not (tmp_path / "a" / "secret.key").exists()

        key_file = tmp_path / "key"
        key_file.write_text(key)
        first = Workspace(settings(tmp_path / "a", url, secret_key_file=key_file), "http://x")
        # The same key given as a value: the same workspace; a token of one works on the other.
        second = Workspace(settings(tmp_path / "b", url, secret_key=key), "http://x")
        token = (tmp_path / "a" / "token").read_text().strip()
        assert second.authenticate(f"Bearer {token}").name == "owner"
        first.close()
        second.close()

        other = secrets.token_hex(32)
        with pytest.raises(StartupRefused, match="another key"):
            Workspace(settings(tmp_path / "c", url, secret_key=other), "http://x")
        assert not (tmp_path / "c" / "token").exists()  # refused before anything was written
        assert rows(url, "SELECT name FROM identities") == [("owner",)]


def test_a_malformed_or_missing_key_is_refused(tmp_path: Path) -> None:
    with postgres_database() as url:
        with pytest.raises(StartupRefused, match="not hexadecimal"):
            Workspace(settings(tmp_path, url, secret_key="not a key"), "http://x")
        with pytest.raises(StartupRefused, match="at least 32 bytes"):
            Workspace(settings(tmp_path, url, secret_key="abcd"), "http://x")
        with pytest.raises(StartupRefused, match="cannot be read"):
            Workspace(settings(tmp_path, url, secret_key_file=tmp_path / "none"), "http://x")
        assert rows(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_a_database_of_a_newer_migration_is_refused(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    with postgres_database() as url:
        Workspace(settings(tmp_path / "a", url, secret_key=key), "http://x").close()
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
        engine.dispose()
        with pytest.raises(StartupRefused, match=r"migration '0999'.*does not know"):
            Workspace(settings(tmp_path / "b", url, secret_key=key), "http://x")
