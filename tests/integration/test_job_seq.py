"""A job's place in the queue (``seq``) is unique when several API servers invoke at once, and
an invocation's reads and insert are one transaction on PostgreSQL (``Database.unit``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text

from sluiceway.errors import ConflictError
from sluiceway.store.db import MIGRATIONS, Database, upgrade
from sluiceway.store.endpoints import EndpointStore
from sluiceway.store.jobs import JobStore
from tests.integration.databases import DATABASES, empty_database


def _migrate(engine: Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _create(store: JobStore, name: str) -> None:
    store.create(
        name,
        endpoint_name="ep",
        deployment_name="dep",
        spec={"kind": "model"},
        invoker="alice",
        experiment_name=None,
    )


def _seqs(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(text("SELECT name, seq FROM jobs"))}


def test_jobs_invoked_at_once_through_two_servers_get_places_of_their_own(db: Database) -> None:
    """Two API servers (two engines on one database), four request threads each: every job
    read something, then was queued, all at once; no two share a place in the queue."""
    other = Database(db.url)
    servers = [JobStore(db), JobStore(other)]
    threads_per_server, jobs_per_thread = 4, 10
    start = threading.Barrier(threads_per_server * len(servers))
    failures: list[BaseException] = []

    def invoke(store: JobStore, prefix: str) -> None:
        start.wait()
        try:
            for i in range(jobs_per_thread):
                with store.unit():  # as InvokeService.invoke: reads, then the insert
                    assert not store.exists(f"{prefix}-{i}")
                    _create(store, f"{prefix}-{i}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [
        threading.Thread(target=invoke, args=(store, f"s{s}-t{t}"))
        for s, store in enumerate(servers)
        for t in range(threads_per_server)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert failures == []
    seqs = _seqs(db)
    assert len(seqs) == len(threads) * jobs_per_thread
    assert len(set(seqs.values())) == len(seqs)
    # The queue is in the order the jobs went in, one thread's jobs in its own order.
    for s in range(len(servers)):
        for t in range(threads_per_server):
            mine = [seqs[f"s{s}-t{t}-{i}"] for i in range(jobs_per_thread)]
            assert mine == sorted(mine)


def test_a_second_job_of_one_name_is_a_conflict(db: Database) -> None:
    store = JobStore(db)
    _create(store, "same")
    with pytest.raises(ConflictError, match="'same' already exists"), store.unit():
        _create(store, "same")
    assert list(_seqs(db)) == ["same"]


def test_an_invocation_is_one_transaction_on_postgresql(db: Database) -> None:
    """The reads of several stores and the insert: one transaction on PostgreSQL; on SQLite a
    read snapshot and the write (which takes the one writer lock at its BEGIN)."""
    began: list[object] = []
    event.listen(db.engine, "begin", lambda conn: began.append(conn))
    jobs, endpoints = JobStore(db), EndpointStore(db)
    with jobs.unit():
        assert endpoints.get("ep") is None
        assert endpoints.get_deployment("ep", "dep") is None
        assert not jobs.exists("one")
        _create(jobs, "one")
    assert len(began) == (1 if db.is_postgres else 2)
    assert jobs.get("one") is not None


@pytest.fixture(params=[p for p in DATABASES if not isinstance(p, str)])
def postgres_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A PostgreSQL workspace database at the newest schema, for what SQLite does not have
    (on SQLite an invocation's insert is committed alone; there is no connection to lose)."""
    with empty_database(request.param, tmp_path) as database:
        upgrade(database.engine)
        yield database


def test_a_failed_invocation_leaves_no_job_on_postgresql(postgres_db: Database) -> None:
    jobs = JobStore(postgres_db)
    with pytest.raises(RuntimeError), jobs.unit():
        _create(jobs, "one")
        raise RuntimeError("a check after the insert failed")
    assert jobs.get("one") is None


@pytest.fixture(params=DATABASES)
def db_at_0011(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with empty_database(request.param, tmp_path) as database:
        _migrate(database.engine, "0011")
        yield database


def test_places_tied_before_the_migration_are_told_apart_in_their_order(
    db_at_0011: Database,
) -> None:
    db = db_at_0011
    rows = [("a", 1, "2026-01-01 00:00:01"), ("c", 2, "2026-01-01 00:00:02")]
    rows += [("b", 2, "2026-01-01 00:00:02"), ("d", 2, "2026-01-01 00:00:01"), ("e", 5, None)]
    with db.engine.begin() as conn:
        for name, seq, created in rows:
            conn.execute(
                text(
                    "INSERT INTO jobs (name, endpoint_name, deployment_name, status, spec, "
                    "invoker, created_at, seq) VALUES (:name, 'ep', 'dep', 'Queued', "
                    "'{\"kind\": \"model\"}', 'alice', :created, :seq)"
                ),
                {"name": name, "seq": seq, "created": created or "2026-01-01 00:00:03"},
            )
    _migrate(db.engine, "head")
    assert _seqs(db) == {"a": 1, "d": 2, "b": 3, "c": 4, "e": 5}
    _create(JobStore(db), "f")
    assert _seqs(db)["f"] == 6


def test_a_pooled_connection_that_died_while_idle_is_replaced(
    postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection idle for ``PING_AFTER_IDLE_SECONDS`` is pinged at checkout; one that does
    not answer is replaced before the transaction starts."""
    db = postgres_db
    import sluiceway.store.db as database_module

    store = JobStore(db)
    with db.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    killer = Database(db.url)
    with killer.engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    monkeypatch.setattr(database_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    _create(store, "after-the-loss")
    assert store.get("after-the-loss") is not None
