"""The job store's part in cancel and crash recovery, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from sluiceway.schemas.jobs import JobStatus, MiniBatchStatus
from sluiceway.store.db import Database
from sluiceway.store.jobs import JobStore

LEASE = timedelta(seconds=60)


@pytest.fixture
def store(db: Database) -> JobStore:
    """A job store on each database (``db`` runs its tests on SQLite and PostgreSQL)."""
    return JobStore(db)


def queued(store: JobStore) -> str:
    name = uuid.uuid4().hex
    store.create(
        name, endpoint_name="ep", deployment_name="d", spec={}, invoker="me", experiment_name=None
    )
    return name


def test_a_queued_job_is_canceled_at_once_and_a_running_one_on_request(store: JobStore) -> None:
    waiting, running, done = queued(store), queued(store), queued(store)
    store.set_status(running, JobStatus.RUNNING)
    store.set_status(done, JobStatus.COMPLETED)

    canceled = store.request_cancel(waiting)
    assert canceled is not None and canceled.status is JobStatus.CANCELED
    assert canceled.ended_at is not None
    requested = store.request_cancel(running)
    assert requested is not None and requested.status is JobStatus.CANCEL_REQUESTED
    assert requested.ended_at is None
    ended = store.request_cancel(done)
    assert ended is not None and ended.status is JobStatus.COMPLETED
    assert store.request_cancel("nope") is None
    # Asking again changes nothing.
    again = store.request_cancel(running)
    assert again is not None and again.status is JobStatus.CANCEL_REQUESTED
    # A scheduler never claims a canceled job; it does claim one whose cancel it must finish.
    claimed = store.claim("b", LEASE)
    assert claimed is not None and claimed.name == running
    assert claimed.status is JobStatus.CANCEL_REQUESTED
    assert store.claim("c", LEASE) is None


def test_a_cancel_request_is_not_overwritten_by_the_scheduler(store: JobStore) -> None:
    name = queued(store)
    claimed = store.claim("a", LEASE)
    assert claimed is not None and claimed.lease_owner == "a#1"
    a = claimed.lease_owner
    store.request_cancel(name)
    assert store.status(name, a) is JobStatus.CANCEL_REQUESTED
    assert not store.set_status(name, JobStatus.RUNNING, owner=a)
    assert not store.set_status(name, JobStatus.FINALIZING, owner=a)
    assert store.set_status(name, JobStatus.CANCELED, owner=a)
    record = store.get(name)
    assert record is not None and record.status is JobStatus.CANCELED
    assert record.lease_owner is None
    assert store.status(name, a) is None


def test_a_dead_owners_job_is_taken_over_before_its_lease_expires(store: JobStore) -> None:
    name = queued(store)
    claimed = store.claim("host:1:dead", timedelta(hours=1))
    assert claimed is not None and claimed.lease_owner is not None
    dead = claimed.lease_owner
    store.set_status(name, JobStatus.RUNNING, owner=dead)
    assert store.lease_owners() == [dead]
    assert store.claim("b", LEASE) is None
    assert store.claim("b", LEASE, dead_owners=["host:2:other#1"]) is None
    taken = store.claim("b", LEASE, dead_owners=[dead])
    assert taken is not None and taken.name == name
    assert taken.status is JobStatus.RUNNING and taken.lease_owner == "b#2"
    assert store.lease_owners() == ["b#2"]


def test_only_the_lease_holder_records_mini_batches(store: JobStore) -> None:
    name = queued(store)
    store.plan(name, [["a"], ["b"]])
    claimed = store.claim("old", timedelta(milliseconds=1))
    assert claimed is not None and claimed.lease_owner is not None
    old = claimed.lease_owner
    assert store.start_mini_batch(name, 0, 1, "w", owner=old)
    taken = store.claim("new", LEASE, dead_owners=[old])
    assert taken is not None and taken.lease_owner is not None
    new = taken.lease_owner
    # The old scheduler's late result is refused; the new one's is kept.
    assert not store.finish_mini_batch(
        name, 0, status=MiniBatchStatus.SUCCEEDED, items_succeeded=1, owner=old
    )
    assert not store.start_mini_batch(name, 1, 1, "w", owner=old)
    assert store.reset_running(name) == 1
    (first, second) = store.mini_batches(name)
    assert (first.status, first.attempts) == (MiniBatchStatus.PENDING, 0)
    assert store.start_mini_batch(name, 0, 1, "w", owner=new)
    assert store.finish_mini_batch(
        name, 0, status=MiniBatchStatus.SUCCEEDED, items_succeeded=1, owner=new
    )
    assert store.mini_batches(name, MiniBatchStatus.SUCCEEDED)[0].index == 0
    assert second.status is MiniBatchStatus.PENDING


def test_a_scheduler_that_claims_its_own_job_again_fences_off_its_earlier_runner(
    store: JobStore,
) -> None:
    """The lease holder names the claim: a runner of an earlier claim by the same scheduler
    (its lease expired while it was stalled) can neither record nor end the job."""
    name = queued(store)
    store.plan(name, [["a"]])
    first = store.claim("me", timedelta(milliseconds=1))
    assert first is not None and first.lease_owner == "me#1"
    time.sleep(0.01)
    again = store.claim("me", LEASE)
    assert again is not None and again.lease_owner == "me#2"
    assert store.renew(name, "me#1", LEASE) is None
    assert not store.start_mini_batch(name, 0, 1, "w", owner="me#1")
    assert not store.set_status(name, JobStatus.COMPLETED, owner="me#1")
    assert store.set_status(name, JobStatus.COMPLETED, owner="me#2")


def test_a_crash_gives_running_mini_batches_their_attempt_back(store: JobStore) -> None:
    name = queued(store)
    store.plan(name, [["a"], ["b"]])
    store.start_mini_batch(name, 0, 1, "w")
    store.finish_mini_batch(name, 0, status=MiniBatchStatus.PENDING, error={"message": "x"})
    store.start_mini_batch(name, 0, 2, "w")
    store.start_mini_batch(name, 1, 1, "w")
    assert store.reset_running(name) == 2
    assert [m.attempts for m in store.mini_batches(name)] == [1, 0]
    assert store.counts(name).retried == 0
    assert store.reset_running(name) == 0
