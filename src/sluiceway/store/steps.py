"""The steps of pipeline jobs: planned once per job, then updated as each step runs.

A step's row is the scheduler's record of it: a restarted scheduler finds the steps that
completed (their outputs are committed) and runs only the others again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from sluiceway.clock import as_utc, utcnow
from sluiceway.schemas.jobs import StepStatus
from sluiceway.store.db import Database
from sluiceway.store.tables import JobStepRow


@dataclass(frozen=True)
class StepRecord:
    job_name: str
    name: str
    index: int
    status: StepStatus
    exit_code: int | None
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    error: dict[str, Any] | None


def _record(row: JobStepRow) -> StepRecord:
    return StepRecord(
        job_name=row.job_name,
        name=row.name,
        index=row.index,
        status=StepStatus(row.status),
        exit_code=row.exit_code,
        attempts=row.attempts,
        started_at=as_utc(row.started_at) if row.started_at else None,
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
        error=row.error,
    )


class StepStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def plan(self, job: str, steps: Sequence[str]) -> None:
        """Store the job's steps in dependency order, unless an earlier scheduler did."""
        with self._db.session() as s:
            if s.scalar(select(func.count()).where(JobStepRow.job_name == job)):
                return
            s.add_all(
                JobStepRow(
                    job_name=job,
                    name=name,
                    index=i,
                    status=StepStatus.NOT_STARTED.value,
                    exit_code=None,
                    attempts=0,
                )
                for i, name in enumerate(steps)
            )

    def steps(self, job: str) -> list[StepRecord]:
        with self._db.reading() as s:
            rows = s.scalars(
                select(JobStepRow).where(JobStepRow.job_name == job).order_by(JobStepRow.index)
            )
            return [_record(r) for r in rows]

    def reset_unfinished(self, job: str) -> int:
        """Steps left running by a scheduler that stopped start again from the beginning."""
        with self._db.session() as s:
            result = s.execute(
                update(JobStepRow)
                .where(
                    JobStepRow.job_name == job,
                    JobStepRow.status == StepStatus.RUNNING.value,
                )
                .values(status=StepStatus.NOT_STARTED.value, started_at=None, exit_code=None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def start(self, job: str, name: str) -> None:
        with self._db.session() as s:
            row = s.get(JobStepRow, (job, name))
            if row is not None:
                row.status = StepStatus.RUNNING.value
                row.attempts += 1
                row.started_at = utcnow()
                row.ended_at = None
                row.exit_code = None
                row.error = None

    def finish(
        self,
        job: str,
        name: str,
        status: StepStatus,
        *,
        exit_code: int | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Record how a step ended (``Skipped`` for one that never ran)."""
        with self._db.session() as s:
            row = s.get(JobStepRow, (job, name))
            if row is not None:
                row.status = status.value
                row.exit_code = exit_code
                row.error = error
                row.ended_at = utcnow() if row.started_at is not None else None
