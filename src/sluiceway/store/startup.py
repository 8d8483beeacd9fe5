"""Bringing a database up to date when any number of processes start at once.

One process at a time does it, under a lock every process of the workspace shares: a
PostgreSQL advisory lock, or a lock on a file beside a SQLite database. Under it a process

1. refuses a database at a migration its code does not know (a newer Sluiceway migrated it);
2. refuses another key than the one the workspace was created with (its fingerprint is in
   the database), before anything is written;
3. migrates, and records the key's fingerprint on first start;

and then, still under the lock, the caller creates what must exist once (the owner, the
default datastore), so that ten processes started together create each thing once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, inspect, select, text

from sluiceway.errors import StartupRefused
from sluiceway.store.db import MIGRATIONS, Database, upgrade
from sluiceway.store.tables import WorkspaceMetaRow

# Any fixed 64-bit number, the same in every process: pg_advisory_lock's key for start-up.
ADVISORY_LOCK_KEY = 0x5155_1CE0_57A7
KEY_FINGERPRINT = "key_fingerprint"


def known_revisions() -> set[str]:
    """Every migration this code has."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    """The database's migration, or None for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return str(row[0]) if row else None


def stored_fingerprint(conn: Connection) -> str | None:
    if not inspect(conn).has_table(WorkspaceMetaRow.__tablename__):
        return None
    query = select(WorkspaceMetaRow.value).where(WorkspaceMetaRow.name == KEY_FINGERPRINT)
    value = conn.execute(query).scalar()
    return str(value) if value is not None else None


@contextmanager
def startup_lock(db: Database) -> Iterator[None]:
    """Held by one process of the workspace at a time."""
    if db.is_postgres:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()
        return
    database = db.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(database + ".startup-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def prepare(db: Database, key_fingerprint: str) -> None:
    """Check the database against this code and this key, then migrate it; call under
    :func:`startup_lock`.

    Raises:
        StartupRefused: the database is at a migration this code does not know, or the
            workspace was created with another key.
    """
    with db.engine.connect() as conn:
        revision = current_revision(conn)
        if revision is not None and revision not in known_revisions():
            raise StartupRefused(
                f"The database {db.engine.url.render_as_string(hide_password=True)} is at "
                f"migration {revision!r}, which this Sluiceway does not know (its newest is "
                f"{head_revision()!r}): a newer Sluiceway migrated it. Run that version, or "
                "upgrade this one."
            )
        stored = stored_fingerprint(conn)
    if stored is not None and stored != key_fingerprint:
        raise StartupRefused(
            "This process was given another key than the one the workspace was created with "
            "(the fingerprints differ), so its tokens and stored credentials would not work: "
            "give it the workspace's key (SLUICEWAY_SECRET_KEY_FILE or SLUICEWAY_SECRET_KEY)."
        )
    upgrade(db.engine)
    if stored is None:
        with db.session() as s:
            if s.get(WorkspaceMetaRow, KEY_FINGERPRINT) is None:
                s.add(WorkspaceMetaRow(name=KEY_FINGERPRINT, value=key_fingerprint))
