"""The store on SQLite and on PostgreSQL (the throwaway cluster the test script starts)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import inspect

from sluiceway.clock import utcnow
from sluiceway.schemas.jobs import JobStatus, MiniBatchStatus
from sluiceway.store.assets import AssetRecord, AssetStore
from sluiceway.store.db import Database, upgrade
from sluiceway.store.endpoints import EndpointStore
from sluiceway.store.jobs import JobStore


def test_migrations_create_every_table_and_run_twice(db: Database) -> None:
    upgrade(db.engine)
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "jobs",
        "mini_batches",
        "batch_endpoints",
        "batch_deployments",
        "asset_versions",
        "identities",
        "datastores",
        "uploads",
        "alembic_version",
    } <= tables


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    database.dispose()


def _job(store: JobStore, name: str | None = None) -> str:
    name = name or uuid.uuid4().hex
    store.create(
        name,
        endpoint_name="ep",
        deployment_name="d",
        spec={"k": 1},
        invoker="owner",
        experiment_name=None,
    )
    return name


def test_claim_takes_the_oldest_queued_job_once(db: Database) -> None:
    store = JobStore(db)
    first, second = _job(store), _job(store)
    lease = timedelta(seconds=30)
    claimed = store.claim("a", lease)
    assert claimed is not None and claimed.name == first
    assert claimed.status is JobStatus.PREPARING
    other = store.claim("b", lease)
    assert other is not None and other.name == second
    assert store.claim("c", lease) is None


def test_an_expired_lease_is_taken_over_and_the_old_owner_loses_it(db: Database) -> None:
    store = JobStore(db)
    name = _job(store)
    assert store.claim("a", timedelta(milliseconds=50)) is not None
    assert store.claim("b", timedelta(seconds=30)) is None
    time.sleep(0.1)
    taken = store.claim("b", timedelta(seconds=30))
    assert taken is not None and taken.name == name and taken.lease_owner == "b#2"
    assert store.renew(name, "a#1", timedelta(seconds=30)) is None
    assert not store.set_status(name, JobStatus.RUNNING, owner="a#1")
    assert store.set_status(name, JobStatus.RUNNING, owner="b#2")
    assert store.set_status(name, JobStatus.COMPLETED, owner="b#2")
    done = store.get(name)
    assert done is not None and done.status is JobStatus.COMPLETED and done.lease_owner is None
    assert done.ended_at is not None


def test_concurrent_claims_never_share_a_job(db: Database) -> None:
    store = JobStore(db)
    names = {_job(store) for _ in range(12)}
    got: list[str] = []
    lock = threading.Lock()

    def worker(owner: str) -> None:
        while (job := store.claim(owner, timedelta(seconds=60))) is not None:
            with lock:
                got.append(job.name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(names)


def test_mini_batches_are_planned_once_and_resume_after_a_crash(db: Database) -> None:
    store = JobStore(db)
    name = _job(store)
    store.plan(name, [["a", "b"], ["c", "d"], ["e"]])
    store.plan(name, [["x"]])  # a second scheduler does not re-plan
    assert [m.files for m in store.mini_batches(name)] == [("a", "b"), ("c", "d"), ("e",)]
    store.start_mini_batch(name, 0, 1, "w0")
    store.finish_mini_batch(name, 0, status=MiniBatchStatus.SUCCEEDED, items_succeeded=2)
    store.start_mini_batch(name, 1, 1, "w1")
    store.finish_mini_batch(name, 1, status=MiniBatchStatus.PENDING, error={"message": "x"})
    store.start_mini_batch(name, 1, 2, "w1")
    store.start_mini_batch(name, 2, 1, "w0")
    # The scheduler dies here; the next one puts running mini-batches back, giving back the
    # attempts they were on (the scheduler stopped, not the mini-batch).
    store.reset_running(name)
    pending = store.mini_batches(name, MiniBatchStatus.PENDING)
    assert [m.index for m in pending] == [1, 2]
    assert [m.attempts for m in pending] == [1, 0]
    counts = store.counts(name)
    assert (counts.total, counts.succeeded, counts.pending, counts.retried) == (3, 1, 2, 0)
    assert (counts.items_total, counts.items_succeeded) == (5, 2)


def test_asset_versions_auto_increment(db: Database) -> None:
    store = AssetStore(db)

    def record(path: str, version: str = "") -> AssetRecord:
        return AssetRecord(
            kind="data",
            name="heart",
            version=version,
            type="uri_folder",
            path=path,
            description=None,
            tags={},
            properties={},
            created_at=utcnow(),
            created_by="owner",
        )

    one, created = store.create(record("p1"), auto_version=True)
    assert (one.version, created) == ("1", True)
    two, _ = store.create(record("p2"), auto_version=True)
    assert two.version == "2"
    store.create(record("p3", "10"), auto_version=False)
    eleven, _ = store.create(record("p4"), auto_version=True)
    assert eleven.version == "11"
    latest = store.latest("data", "heart")
    assert latest is not None and latest.version == "11"
    same, created = store.create(record("p3", "10"), auto_version=False)
    assert not created and same.path == "p3"


def test_the_first_deployment_becomes_the_default(db: Database) -> None:
    store = EndpointStore(db)
    store.upsert(
        "ep",
        description=None,
        tags={},
        properties={},
        auth_mode="aad_token",
        default_deployment=None,
        created_by="owner",
    )
    store.upsert_deployment(
        "ep", "a", type="model", spec={}, created_by="owner", make_default=False
    )
    store.upsert_deployment(
        "ep", "b", type="model", spec={}, created_by="owner", make_default=False
    )
    endpoint = store.get("ep")
    assert endpoint is not None and endpoint.default_deployment == "a"
    store.upsert_deployment("ep", "c", type="model", spec={}, created_by="owner", make_default=True)
    endpoint = store.get("ep")
    assert endpoint is not None and endpoint.default_deployment == "c"


def test_migrations_match_the_tables(db: Database) -> None:
    """A change to store/tables.py without a migration fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sluiceway.store.tables import Base

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
