"""LISTEN/NOTIFY between processes: a queued job and a cancel reach a listener at once, and
a listener whose connection was cut reconnects (polling covers the gap)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from sluiceway.schemas.jobs import JobStatus
from sluiceway.store.db import Database, upgrade
from sluiceway.store.jobs import JobStore
from sluiceway.store.notifications import JobNotifications
from tests.integration.databases import postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def db() -> Iterator[Database]:
    with postgres_database() as url:
        database = Database(url)
        upgrade(database.engine)
        yield database
        database.dispose()


class Heard:
    def __init__(self) -> None:
        self.queued = threading.Event()
        self.canceled: list[str] = []
        self.cancel = threading.Event()

    def on_queued(self) -> None:
        self.queued.set()

    def on_cancel(self, job: str) -> None:
        self.canceled.append(job)
        self.cancel.set()


def queue(store: JobStore) -> str:
    name = uuid.uuid4().hex
    store.create(
        name,
        endpoint_name="e",
        deployment_name="d",
        spec={},
        invoker="owner",
        experiment_name=None,
    )
    return name


def test_a_queued_job_and_a_cancel_reach_the_listener_at_once(db: Database) -> None:
    heard = Heard()
    listener = JobNotifications(db.url, on_queued=heard.on_queued, on_cancel=heard.on_cancel)
    listener.start()
    try:
        assert listener.connected.wait(10)
        heard.queued.clear()
        store = JobStore(db)
        started = time.monotonic()
        name = queue(store)
        assert heard.queued.wait(2)
        assert time.monotonic() - started < 0.5

        claimed = store.claim("me", timedelta(seconds=30))
        assert claimed is not None and claimed.name == name
        store.request_cancel(name)
        assert heard.cancel.wait(2)
        assert heard.canceled == [name]
        assert store.get(name).status is JobStatus.CANCEL_REQUESTED  # type: ignore[union-attr]

        # A waiting job's cancel ends it at once: no scheduler needs to hear of it.
        heard.cancel.clear()
        store.request_cancel(queue(store))
        assert not heard.cancel.wait(0.5)
    finally:
        listener.stop()


def test_a_listener_whose_connection_was_cut_reconnects(db: Database) -> None:
    heard = Heard()
    listener = JobNotifications(db.url, on_queued=heard.on_queued, on_cancel=heard.on_cancel)
    listener.start()
    try:
        assert listener.connected.wait(10)
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            )
        deadline = time.monotonic() + 10
        while listener.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        # It comes back, and says so (the scheduler looks at the queue then).
        heard.queued.clear()
        assert heard.queued.wait(10)
        assert listener.connected.is_set()
        heard.queued.clear()
        queue(JobStore(db))
        assert heard.queued.wait(2)
    finally:
        listener.stop()
