"""Engine and session factory: SQLite (WAL) by default, PostgreSQL by URL.

On SQLite a transaction that may write takes the database's write lock at ``BEGIN`` (``BEGIN
IMMEDIATE``), so a read followed by a write never fails on the lock upgrade. Threads of this
process queue for that lock on a Python lock first: SQLite's own wait polls with sleeps of up to
100 ms, which under many concurrent requests costs far more than the transactions themselves.
Transactions that only read (:meth:`Database.reading`) take no lock at all: in WAL mode they
read a snapshot while writers go on.

A request that reads several rows and then writes one (an invoke) runs inside
:meth:`Database.unit`: its stores' transactions become one. On PostgreSQL every read and write
of the block is one transaction on one connection (a failed write fails the whole unit); on
SQLite the reads share one snapshot and each write takes the writer lock on its own, as a read
transaction that later writes could fail on the lock upgrade.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
PING_AFTER_IDLE_SECONDS = 1.0  # a pooled PostgreSQL connection idle longer is pinged first
READ_ONLY = "sluiceway_read_only"  # execution option of the connections of Database.reading()


# The database file and the files SQLite keeps beside it: only the server's user reads them.
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")
PRIVATE_MODE = 0o600


def private_sqlite_files(database: str | None) -> None:
    """Create the SQLite database file ``database`` readable by its owner only, and take every
    other user's access away from it and its WAL, shared-memory and journal files.

    SQLite creates its ``-wal``, ``-shm`` and ``-journal`` files with the database file's own
    permissions, so a database file made private here keeps the files created later private too.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite refuses to open it; its own error says so
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_MODE))
    for suffix in SQLITE_FILE_SUFFIXES:
        existing = path.with_name(path.name + suffix)
        if existing.exists() and existing.stat().st_mode & 0o777 != PRIVATE_MODE:
            os.chmod(existing, PRIVATE_MODE)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout, and its files are
    private to the server's user."""
    if url.startswith("sqlite"):
        private_sqlite_files(make_url(url).database)
        pooling: dict[str, Any] = {}
        if ":memory:" not in url and url.rstrip("/") not in {"sqlite:", "sqlite+pysqlite:"}:
            # Request threads read concurrently; a connection closed for lack of room in the
            # pool costs its pragmas again on the next open.
            pooling = {"pool_size": 8, "max_overflow": 32}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pooling
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself so that "BEGIN IMMEDIATE" below takes effect.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # One writer at a time, taken at BEGIN: claims and updates never deadlock on upgrade.
            # A read-only transaction reads a snapshot and never waits.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=10)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout when it sat unused for ``PING_AFTER_IDLE_SECONDS``,
    and take another when it does not answer (a restarted server, a dropped connection).

    ``pool_pre_ping`` pings at every checkout: a round trip on every transaction, which under
    many requests a second costs more than some of them. A connection used within the last
    second is taken as alive; one that died within that second (the server restarted just
    then) fails its statement, and SQLAlchemy drops the pool's other connections with it, so
    that costs the request that met it.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("the database connection did not answer a ping")


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """The engine plus a session factory; passed to every store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        # SQLite has one writer at a time: this process's threads queue for it here.
        self._write_lock = threading.RLock() if self.engine.dialect.name == "sqlite" else None
        self._units = threading.local()  # this thread's open unit: its connection and session

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Make this thread's transactions inside the block one (see the module's docstring).

        Committed when the block ends, rolled back when it raises. Nested units join the outer
        one. Storage may be called inside the block: on PostgreSQL the connection is held
        meanwhile, on SQLite no lock is.
        """
        if getattr(self._units, "open", None) is not None:
            yield
            return
        reader = self.engine if self.is_postgres else self._reader
        with reader.connect() as conn:
            transaction = conn.begin()
            session = Session(bind=conn, expire_on_commit=False)
            self._units.open = (conn, session)
            try:
                yield
                session.flush()
            except BaseException:
                transaction.rollback()
                raise
            else:
                transaction.commit()
            finally:
                self._units.open = None
                session.close()

    def _unit(self) -> tuple[Connection, Session] | None:
        unit: tuple[Connection, Session] | None = getattr(self._units, "open", None)
        return unit

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction that may write: committed when the block ends, rolled back on error."""
        unit = self._unit()
        if unit is not None and self.is_postgres:
            yield unit[1]
            unit[1].flush()
            return
        with self._writer(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads: a consistent snapshot that waits for no writer."""
        unit = self._unit()
        if unit is not None:
            yield unit[1]
            return
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction that may write, on a plain connection (no ORM)."""
        unit = self._unit()
        if unit is not None and self.is_postgres:
            unit[1].flush()
            yield unit[0]
            return
        with self._writer(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A transaction that only reads, on a plain connection (no ORM)."""
        unit = self._unit()
        if unit is not None:
            unit[1].flush()
            yield unit[0]
            return
        with self._reader.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A connection for one statement that reads: on PostgreSQL outside any transaction
        (one statement reads one snapshot by itself), which spares the ``BEGIN`` and the
        ``COMMIT`` and their round trips; on SQLite, :meth:`read_connection`."""
        if self._unit() is not None or not self.is_postgres:
            with self.read_connection() as conn:
                yield conn
            return
        with self._autocommit.connect() as conn:
            yield conn

    def _writer(self) -> threading.RLock | nullcontext[None]:
        return self._write_lock if self._write_lock is not None else nullcontext()

    def dispose(self) -> None:
        self.engine.dispose()
