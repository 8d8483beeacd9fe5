"""The steps of a pipeline job as users see them: status, exit code, times, logs and error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluiceway.clock import utcnow
from sluiceway.schemas.jobs import JobError, JobStep, StepStatus
from sluiceway.store.steps import StepRecord


def step_logs(name: str) -> dict[str, str]:
    """A step's log files, as paths under the job's ``logs`` folder."""
    return {
        "stdout": f"steps/{name}/stdout.txt",
        "stderr": f"steps/{name}/stderr.txt",
        "command": f"steps/{name}/command.txt",
    }


def describe_steps(spec: dict[str, Any], records: Sequence[StepRecord]) -> list[JobStep]:
    """Every step of a pipeline job, in dependency order, with what the scheduler recorded."""
    rows = {r.name: r for r in records}
    steps = []
    for step in spec.get("steps", []):
        name = str(step["name"])
        row = rows.get(name)
        duration = None
        if row is not None and row.started_at is not None:
            end = row.ended_at or (utcnow() if row.status is StepStatus.RUNNING else None)
            if end is not None:
                duration = max((end - row.started_at).total_seconds(), 0.0)
        error = None
        if row is not None and row.error:
            error = JobError(
                code=str(row.error.get("code", "UserError")),
                message=str(row.error.get("message", "")),
                details=[{"stderr_tail": row.error["stderr_tail"]}]
                if row.error.get("stderr_tail")
                else [],
            )
        steps.append(
            JobStep(
                name=name,
                display_name=step.get("display_name"),
                component=step.get("component"),
                status=row.status if row is not None else StepStatus.NOT_STARTED,
                exit_code=row.exit_code if row is not None else None,
                start_time=row.started_at if row is not None else None,
                end_time=row.ended_at if row is not None else None,
                duration_seconds=duration,
                logs=step_logs(name),
                error=error,
            )
        )
    return steps
