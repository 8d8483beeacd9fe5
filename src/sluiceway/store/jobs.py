"""Jobs and their mini-batches. The jobs table is the scheduler's queue.

A scheduler claims a job with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite takes
the database's write lock at ``BEGIN``), renews it while it runs the job, and another scheduler
takes over a job whose lease expired. Mini-batches are planned once and stored, so a job that is
taken over resumes where it stopped: succeeded mini-batches are never run again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.exc import IntegrityError

from sluiceway.clock import as_utc, utcnow
from sluiceway.errors import ConflictError
from sluiceway.schemas.jobs import JobStatus, MiniBatchStatus
from sluiceway.store.db import Database
from sluiceway.store.notifications import notify_cancel, notify_queued
from sluiceway.store.tables import JobRow, MiniBatchRow

ACTIVE = (JobStatus.PREPARING, JobStatus.RUNNING, JobStatus.FINALIZING, JobStatus.CANCEL_REQUESTED)
WAITING = (JobStatus.NOT_STARTED, JobStatus.QUEUED)
JOB_SEQ = DbSequence("job_seq")  # PostgreSQL only (migration 0012): the jobs' queue numbers


@dataclass(frozen=True)
class JobRecord:
    name: str
    endpoint_name: str
    deployment_name: str
    status: JobStatus
    spec: dict[str, Any]
    invoker: str
    experiment_name: str | None
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    lease_owner: str | None
    invoker_id: str | None = None  # the identity that started it and owns it


@dataclass(frozen=True)
class JobVisibility:
    """The jobs one identity may see: those it started (by its id), and every job of
    ``endpoints``."""

    invoker_id: str
    endpoints: frozenset[str]


@dataclass(frozen=True)
class MiniBatchRecord:
    index: int
    files: tuple[str, ...]
    status: MiniBatchStatus
    attempts: int
    items_succeeded: int
    error: dict[str, Any] | None


@dataclass(frozen=True)
class MiniBatchSpan:
    """When and where a mini-batch's latest attempt ran, for a job's timeline."""

    index: int
    status: MiniBatchStatus
    attempts: int
    worker: str | None
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class MiniBatchStart:
    """A mini-batch handed to a worker for its ``attempt``-th try."""

    index: int
    attempt: int
    worker: str


@dataclass(frozen=True)
class MiniBatchEnd:
    """How an attempt at a mini-batch ended: succeeded, failed, or pending again (a retry)."""

    index: int
    status: MiniBatchStatus
    items_succeeded: int = 0
    error: dict[str, Any] | None = None
    worker: str | None = None  # the worker the attempt ran on, when known


_MINI_BATCHES: Table = MiniBatchRow.__table__  # type: ignore[assignment]
_END = (
    update(_MINI_BATCHES)
    .where(
        _MINI_BATCHES.c.job_name == bindparam("b_job"),
        _MINI_BATCHES.c.index == bindparam("b_index"),
    )
    .values(
        status=bindparam("b_status"),
        items_succeeded=bindparam("b_items"),
        error=bindparam("b_error"),
        ended_at=bindparam("b_at"),
        worker=func.coalesce(bindparam("b_worker"), _MINI_BATCHES.c.worker),
    )
)
_START = (
    update(_MINI_BATCHES)
    .where(
        _MINI_BATCHES.c.job_name == bindparam("b_job"),
        _MINI_BATCHES.c.index == bindparam("b_index"),
    )
    .values(
        status=MiniBatchStatus.RUNNING.value,
        attempts=bindparam("b_attempt"),
        worker=bindparam("b_worker"),
        started_at=bindparam("b_at"),
        ended_at=None,
    )
)
_PLANNED_FILES_CACHE = 1024  # jobs whose file count is remembered (a plan never changes)


@dataclass(frozen=True)
class MiniBatchCounts:
    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0  # attempts beyond the first, over all mini-batches
    items_total: int = 0
    items_succeeded: int = 0
    items_failed: int = 0


def _job(row: JobRow) -> JobRecord:
    return JobRecord(
        name=row.name,
        endpoint_name=row.endpoint_name,
        deployment_name=row.deployment_name,
        status=JobStatus(row.status),
        spec=dict(row.spec),
        invoker=row.invoker,
        invoker_id=row.invoker_id,
        experiment_name=row.experiment_name,
        error=row.error,
        created_at=as_utc(row.created_at),
        started_at=as_utc(row.started_at) if row.started_at else None,
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
        lease_owner=row.lease_owner,
    )


def lease_holder(owner: str, epoch: int) -> str:
    """The holder of a job's ``epoch``-th lease, taken by scheduler ``owner``."""
    return f"{owner}#{epoch}"


def lease_scheduler(holder: str) -> str:
    """The scheduler that holds a lease (the holder without its claim's number)."""
    return holder.rpartition("#")[0] or holder


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._planned_files: OrderedDict[str, int] = OrderedDict()
        self._planned_lock = threading.Lock()

    # -- jobs -------------------------------------------------------------------------------

    def unit(self) -> AbstractContextManager[None]:
        """One transaction for a whole invocation: its reads in every store of this database
        and the job's insert (see :meth:`Database.unit`)."""
        return self._db.unit()

    def create(
        self,
        name: str,
        *,
        endpoint_name: str,
        deployment_name: str,
        spec: dict[str, Any],
        invoker: str,
        experiment_name: str | None,
        invoker_id: str | None = None,
    ) -> JobRecord:
        """Queue a job; ``invoker`` is the name of the identity ``invoker_id`` that starts it."""
        record = JobRecord(
            name=name,
            endpoint_name=endpoint_name,
            deployment_name=deployment_name,
            status=JobStatus.QUEUED,
            spec=dict(spec),
            invoker=invoker,
            experiment_name=experiment_name,
            error=None,
            created_at=utcnow(),
            started_at=None,
            ended_at=None,
            lease_owner=None,
            invoker_id=invoker_id,
        )
        # The next number in the queue, taken while the row goes in: from a sequence on
        # PostgreSQL, where API servers insert at once; on SQLite max + 1 is safe, as the
        # database's one writer lock is held from BEGIN. A unique index guards both.
        next_seq = (
            JOB_SEQ.next_value()
            if self._db.is_postgres
            else select(func.coalesce(func.max(JobRow.seq), 0) + 1).scalar_subquery()
        )
        try:
            with self._db.writing() as conn:
                self._insert(conn, record, next_seq)
        except IntegrityError:
            # The name is the only key the insert can collide on: ``seq`` is unique by how
            # it is taken (a look-up here could miss the other row inside a unit's snapshot).
            raise ConflictError(
                f"A job named {name!r} already exists; job names are unique.", target="name"
            ) from None
        return record

    def _insert(self, conn: Connection, record: JobRecord, seq: Any) -> None:
        conn.execute(
            insert(JobRow).values(
                name=record.name,
                endpoint_name=record.endpoint_name,
                deployment_name=record.deployment_name,
                status=JobStatus.QUEUED.value,
                spec=record.spec,
                invoker=record.invoker,
                invoker_id=record.invoker_id,
                experiment_name=record.experiment_name,
                created_at=record.created_at,
                seq=seq,
            )
        )
        if self._db.is_postgres:
            notify_queued(conn)

    def exists(self, name: str) -> bool:
        with self._db.reading() as s:
            return s.get(JobRow, name) is not None

    def get(self, name: str) -> JobRecord | None:
        with self._db.reading() as s:
            row = s.get(JobRow, name)
            return _job(row) if row else None

    def list_all(
        self,
        *,
        endpoint_name: str | None = None,
        deployment_name: str | None = None,
        status: str | None = None,
        limit: int = 100,
        visible: JobVisibility | None = None,
    ) -> list[JobRecord]:
        """The newest jobs first; ``visible`` None means every job."""
        query = select(JobRow).order_by(JobRow.seq.desc()).limit(limit)
        if visible is not None:
            mine = JobRow.invoker_id == visible.invoker_id
            if visible.endpoints:
                mine = or_(mine, JobRow.endpoint_name.in_(sorted(visible.endpoints)))
            query = query.where(mine)
        if endpoint_name:
            query = query.where(JobRow.endpoint_name == endpoint_name)
        if deployment_name:
            query = query.where(JobRow.deployment_name == deployment_name)
        if status:
            query = query.where(JobRow.status == status)
        with self._db.reading() as s:
            return [_job(r) for r in s.scalars(query)]

    def claim(
        self, owner: str, lease: timedelta, *, dead_owners: Sequence[str] = ()
    ) -> JobRecord | None:
        """Take the oldest queued job, or an active one whose lease expired.

        The job that is returned names its lease's holder in ``lease_owner``: ``owner`` and the
        claim's number (:func:`lease_holder`), a fencing token that the runner writes with.

        Args:
            owner: the claiming scheduler.
            lease: how long the claim holds without a renewal.
            dead_owners: lease owners known to be gone (a crashed process of this machine);
                their jobs are taken over without waiting for the lease to expire.
        """
        now = utcnow()
        reclaimable = or_(JobRow.lease_expires_at.is_(None), JobRow.lease_expires_at < now)
        if dead_owners:
            reclaimable = or_(reclaimable, JobRow.lease_owner.in_(list(dead_owners)))
        query = (
            select(JobRow)
            .where(
                or_(
                    JobRow.status == JobStatus.QUEUED.value,
                    and_(JobRow.status.in_([s.value for s in ACTIVE]), reclaimable),
                )
            )
            .order_by(JobRow.seq)
            .limit(1)
        )
        if self._db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        with self._db.session() as s:
            row = s.scalars(query).first()
            if row is None:
                return None
            # Each claim is a new lease: its holder is named with the claim's number, so the
            # runner of an earlier claim (even of this scheduler) can write nothing more.
            row.lease_epoch = (row.lease_epoch or 0) + 1
            row.lease_owner = lease_holder(owner, row.lease_epoch)
            row.lease_expires_at = now + lease
            if row.status == JobStatus.QUEUED.value:
                row.status = JobStatus.PREPARING.value
                row.started_at = now
            s.flush()
            return _job(row)

    def counts_by_status(self) -> dict[str, int]:
        """How many jobs of the workspace are in each status."""
        query = select(JobRow.status, func.count()).group_by(JobRow.status)
        with self._db.read_connection() as conn:
            return {str(status): int(n) for status, n in conn.execute(query)}

    def lease_owners(self) -> list[str]:
        """The schedulers that hold a lease on an active job now."""
        query = (
            select(JobRow.lease_owner)
            .where(
                JobRow.status.in_([s.value for s in ACTIVE]),
                JobRow.lease_owner.is_not(None),
                JobRow.lease_expires_at >= utcnow(),
            )
            .distinct()
        )
        with self._db.reading() as s:
            return [owner for owner in s.scalars(query) if owner]

    def status(self, name: str, owner: str) -> JobStatus | None:
        """The job's status while ``owner`` holds its lease, else None (a cheap read)."""
        query = select(JobRow.status, JobRow.lease_owner).where(JobRow.name == name)
        with self._db.reading() as s:
            row = s.execute(query).first()
        if row is None or row.lease_owner != owner:
            return None
        return JobStatus(row.status)

    def renew(self, name: str, owner: str, lease: timedelta) -> JobStatus | None:
        """Extend the lease; returns the job's status, or None if the lease was lost."""
        with self._db.session() as s:
            row = s.get(JobRow, name)
            if row is None or row.lease_owner != owner:
                return None
            row.lease_expires_at = utcnow() + lease
            return JobStatus(row.status)

    def set_status(
        self,
        name: str,
        status: JobStatus,
        *,
        owner: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Move a job to ``status``; a terminal status ends it and drops its lease.

        With ``owner`` the change only happens while that scheduler holds the lease, and a
        job whose cancel was requested moves on only to a terminal status.
        """
        values: dict[str, Any] = {"status": status.value}
        if error is not None:
            values["error"] = error
        if status.is_terminal:
            values.update(ended_at=utcnow(), lease_owner=None, lease_expires_at=None)
        query = update(JobRow).where(JobRow.name == name).values(**values)
        if owner is not None:
            query = query.where(JobRow.lease_owner == owner)
            if not status.is_terminal:
                query = query.where(JobRow.status != JobStatus.CANCEL_REQUESTED.value)
        with self._db.session() as s:
            return bool(s.execute(query).rowcount)  # type: ignore[attr-defined]

    def request_cancel(self, name: str) -> JobRecord | None:
        """Cancel a job: a waiting one ends ``Canceled`` at once, an active one goes to
        ``CancelRequested`` for its scheduler to stop. A job that ended stays as it is.

        Returns:
            The job as it is afterwards, or None if there is no such job.
        """
        now = utcnow()
        with self._db.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.name == name, JobRow.status.in_([w.value for w in WAITING]))
                .values(
                    status=JobStatus.CANCELED.value,
                    ended_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            s.execute(
                update(JobRow)
                .where(
                    JobRow.name == name,
                    JobRow.status.in_(
                        [a.value for a in ACTIVE if a is not JobStatus.CANCEL_REQUESTED]
                    ),
                )
                .values(status=JobStatus.CANCEL_REQUESTED.value)
            )
            row = s.get(JobRow, name)
            requested = row is not None and row.status == JobStatus.CANCEL_REQUESTED.value
            if requested and self._db.is_postgres:
                notify_cancel(s.connection(), name)
            return _job(row) if row else None

    def release(self, name: str, owner: str) -> None:
        """Hand a job back (graceful stop): another scheduler may claim it at once."""
        with self._db.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.name == name, JobRow.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    # -- mini-batches -----------------------------------------------------------------------

    def plan(self, job: str, batches: Sequence[Sequence[str]]) -> None:
        """Store the job's mini-batches, unless an earlier scheduler already did."""
        with self._db.session() as s:
            if s.scalar(select(func.count()).where(MiniBatchRow.job_name == job)):
                return
            s.add_all(
                MiniBatchRow(
                    job_name=job,
                    index=i,
                    files=list(files),
                    status=MiniBatchStatus.PENDING.value,
                    attempts=0,
                    items_succeeded=0,
                )
                for i, files in enumerate(batches)
            )

    def reset_running(self, job: str) -> int:
        """Mini-batches left running by a scheduler that stopped go back to pending.

        The attempt they were on is given back: the scheduler stopped, not the mini-batch.

        Returns:
            How many mini-batches went back.
        """
        with self._db.session() as s:
            result = s.execute(
                update(MiniBatchRow)
                .where(
                    MiniBatchRow.job_name == job,
                    MiniBatchRow.status == MiniBatchStatus.RUNNING.value,
                )
                .values(
                    status=MiniBatchStatus.PENDING.value,
                    attempts=case((MiniBatchRow.attempts > 0, MiniBatchRow.attempts - 1), else_=0),
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def mini_batches(
        self, job: str, status: MiniBatchStatus | None = None
    ) -> list[MiniBatchRecord]:
        query = (
            select(MiniBatchRow).where(MiniBatchRow.job_name == job).order_by(MiniBatchRow.index)
        )
        if status is not None:
            query = query.where(MiniBatchRow.status == status.value)
        with self._db.reading() as s:
            return [
                MiniBatchRecord(
                    r.index,
                    tuple(r.files),
                    MiniBatchStatus(r.status),
                    r.attempts,
                    r.items_succeeded,
                    r.error,
                )
                for r in s.scalars(query)
            ]

    def update_mini_batches(
        self,
        job: str,
        *,
        ended: Sequence[MiniBatchEnd] = (),
        started: Sequence[MiniBatchStart] = (),
        owner: str | None = None,
    ) -> bool:
        """Record attempts that ended, then mark mini-batches running, in one transaction;
        with ``owner``, only while that scheduler holds the lease, so a scheduler that lost its
        job never writes into it.

        Returns:
            False when ``owner`` does not hold the lease (nothing was written), else True.
        """
        now = utcnow()
        with self._db.writing() as conn:
            if owner is not None and not self._holds_lease(conn, job, owner):
                return False
            if ended:
                conn.execute(
                    _END,
                    [
                        {
                            "b_job": job,
                            "b_index": end.index,
                            "b_status": end.status.value,
                            "b_items": end.items_succeeded,
                            "b_error": end.error,
                            "b_at": now,
                            "b_worker": end.worker,
                        }
                        for end in ended
                    ],
                )
            if started:
                conn.execute(
                    _START,
                    [
                        {
                            "b_job": job,
                            "b_index": start.index,
                            "b_attempt": start.attempt,
                            "b_worker": start.worker,
                            "b_at": now,
                        }
                        for start in started
                    ],
                )
        return True

    def start_mini_batch(
        self, job: str, index: int, attempt: int, worker: str, *, owner: str | None = None
    ) -> bool:
        """Mark a mini-batch running; with ``owner``, only while that scheduler holds the lease.

        Returns:
            Whether it was written (False: the lease is lost).
        """
        return self.update_mini_batches(
            job, started=[MiniBatchStart(index, attempt, worker)], owner=owner
        )

    def finish_mini_batch(
        self,
        job: str,
        index: int,
        *,
        status: MiniBatchStatus,
        items_succeeded: int = 0,
        error: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> bool:
        """Record a mini-batch's result; with ``owner``, only while that scheduler holds the
        lease.

        Returns:
            Whether it was written (False: the lease is lost).
        """
        end = MiniBatchEnd(index, status, items_succeeded, error)
        return self.update_mini_batches(job, ended=[end], owner=owner)

    def _holds_lease(self, conn: Connection, job: str, owner: str) -> bool:
        query = select(JobRow.name).where(JobRow.name == job, JobRow.lease_owner == owner)
        if self._db.is_postgres:
            query = query.with_for_update()  # no renew or claim changes it before we commit
        return conn.execute(query).first() is not None

    def counts(self, job: str) -> MiniBatchCounts:
        """Progress, derived from the mini-batch rows.

        Counting the files of every mini-batch means reading each one's list; the plan never
        changes, so that total is counted once per job and remembered. Only failed
        mini-batches' lists are read on every call.
        """
        status, attempts = MiniBatchRow.status, MiniBatchRow.attempts
        by_status = (
            select(
                status,
                func.count(),
                func.sum(case((attempts > 1, attempts - 1), else_=0)),
                func.sum(MiniBatchRow.items_succeeded),
            )
            .where(MiniBatchRow.job_name == job)
            .group_by(status)
        )
        failed_files = select(func.sum(func.json_array_length(MiniBatchRow.files))).where(
            MiniBatchRow.job_name == job, status == MiniBatchStatus.FAILED.value
        )
        with self._db.read_connection() as conn:
            rows = conn.execute(by_status).all()
            items_failed = (
                int(conn.execute(failed_files).scalar() or 0)
                if any(r[0] == MiniBatchStatus.FAILED.value for r in rows)
                else 0
            )
            items_total = self._planned_file_count(conn, job) if rows else 0
        per_status = {r[0]: int(r[1]) for r in rows}
        return MiniBatchCounts(
            total=sum(per_status.values()),
            pending=per_status.get(MiniBatchStatus.PENDING.value, 0),
            running=per_status.get(MiniBatchStatus.RUNNING.value, 0),
            succeeded=per_status.get(MiniBatchStatus.SUCCEEDED.value, 0),
            failed=per_status.get(MiniBatchStatus.FAILED.value, 0),
            retried=sum(int(r[2] or 0) for r in rows),
            items_total=items_total,
            items_succeeded=sum(int(r[3] or 0) for r in rows),
            items_failed=items_failed,
        )

    def _planned_file_count(self, conn: Connection, job: str) -> int:
        with self._planned_lock:
            if job in self._planned_files:
                self._planned_files.move_to_end(job)
                return self._planned_files[job]
        query = select(func.sum(func.json_array_length(MiniBatchRow.files))).where(
            MiniBatchRow.job_name == job
        )
        total = int(conn.execute(query).scalar() or 0)
        with self._planned_lock:
            self._planned_files[job] = total
            while len(self._planned_files) > _PLANNED_FILES_CACHE:
                self._planned_files.popitem(last=False)
        return total

    def spans(self, job: str, limit: int = 2000) -> list[MiniBatchSpan]:
        """The first ``limit`` mini-batches of ``job``: status, worker and times of their
        latest attempt."""
        query = (
            select(
                MiniBatchRow.index,
                MiniBatchRow.status,
                MiniBatchRow.attempts,
                MiniBatchRow.worker,
                MiniBatchRow.started_at,
                MiniBatchRow.ended_at,
            )
            .where(MiniBatchRow.job_name == job)
            .order_by(MiniBatchRow.index)
            .limit(limit)
        )
        with self._db.read_connection() as conn:
            return [
                MiniBatchSpan(
                    int(r[0]),
                    MiniBatchStatus(r[1]),
                    int(r[2] or 0),
                    r[3],
                    as_utc(r[4]) if r[4] is not None else None,
                    as_utc(r[5]) if r[5] is not None else None,
                )
                for r in conn.execute(query).all()
            ]
