"""Batch jobs: one invocation of an endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluiceway.entities._resource import RestBacked, SystemData, parse_datetime, str_or_none
from sluiceway.entities.io import Input, Output
from sluiceway.schemas.jobs import TERMINAL_STATUSES


def _int(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _float(raw: Mapping[str, Any], key: str) -> float | None:
    value = raw.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class JobProgress:
    """Mini-batches and items done so far, and the server's estimate of what remains."""

    mini_batches_total: int = 0
    mini_batches_pending: int = 0
    mini_batches_running: int = 0
    mini_batches_succeeded: int = 0
    mini_batches_failed: int = 0
    mini_batches_retried: int = 0
    items_total: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    started_at: datetime | None = None
    elapsed_seconds: float | None = None
    items_per_second: float | None = None
    eta_seconds: float | None = None

    @classmethod
    def _from_rest(cls, raw: Any) -> JobProgress:
        if not isinstance(raw, Mapping):
            return cls()
        return cls(
            mini_batches_total=_int(raw, "mini_batches_total"),
            mini_batches_pending=_int(raw, "mini_batches_pending"),
            mini_batches_running=_int(raw, "mini_batches_running"),
            mini_batches_succeeded=_int(raw, "mini_batches_succeeded"),
            mini_batches_failed=_int(raw, "mini_batches_failed"),
            mini_batches_retried=_int(raw, "mini_batches_retried"),
            items_total=_int(raw, "items_total"),
            items_succeeded=_int(raw, "items_succeeded"),
            items_failed=_int(raw, "items_failed"),
            started_at=parse_datetime(raw.get("started_at")),
            elapsed_seconds=_float(raw, "elapsed_seconds"),
            items_per_second=_float(raw, "items_per_second"),
            eta_seconds=_float(raw, "eta_seconds"),
        )

    @property
    def mini_batches_done(self) -> int:
        return self.mini_batches_succeeded + self.mini_batches_failed

    def describe(self) -> str:
        """One line, such as ``mini-batches 3/10 (0 failed, 1 retried), items 30 ...``."""
        text = (
            f"mini-batches {self.mini_batches_done}/{self.mini_batches_total} "
            f"({self.mini_batches_failed} failed, {self.mini_batches_retried} retried), "
            f"items {self.items_succeeded} succeeded / {self.items_failed} failed"
        )
        if self.eta_seconds is not None:
            text += f", ETA {round(self.eta_seconds)}s"
        return text


@dataclass(frozen=True)
class JobError:
    """Why a job failed."""

    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def _from_rest(cls, raw: Any) -> JobError | None:
        if not isinstance(raw, Mapping):
            return None
        details = raw.get("details")
        return cls(
            code=str(raw.get("code", "")),
            message=str(raw.get("message", "")),
            details=[dict(d) for d in details if isinstance(d, Mapping)]
            if isinstance(details, list)
            else [],
        )


@dataclass(frozen=True)
class JobStep:
    """One step of a pipeline job: its status, exit code, times and log files."""

    name: str
    status: str
    display_name: str | None = None
    component: str | None = None
    exit_code: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration_seconds: float | None = None
    logs: dict[str, str] = field(default_factory=dict)
    error: JobError | None = None

    @classmethod
    def _from_rest(cls, raw: Any) -> JobStep | None:
        if not isinstance(raw, Mapping) or "name" not in raw:
            return None
        exit_code = raw.get("exit_code")
        logs = raw.get("logs")
        return cls(
            name=str(raw["name"]),
            status=str(raw.get("status", "")),
            display_name=str_or_none(raw.get("display_name")),
            component=str_or_none(raw.get("component")),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            start_time=parse_datetime(raw.get("start_time")),
            end_time=parse_datetime(raw.get("end_time")),
            duration_seconds=_float(raw, "duration_seconds"),
            logs={str(k): str(v) for k, v in logs.items()} if isinstance(logs, Mapping) else {},
            error=JobError._from_rest(raw.get("error")),
        )

    def describe(self) -> str:
        """One line, such as ``Step score: Failed (exit code 3, 1.2 s)``."""
        extra = []
        if self.exit_code is not None:
            extra.append(f"exit code {self.exit_code}")
        if self.duration_seconds is not None and self.status != "Running":
            extra.append(f"{self.duration_seconds:.1f} s")
        return f"Step {self.name}: {self.status}" + (f" ({', '.join(extra)})" if extra else "")


def _job_input(raw: Any) -> Input:
    spec = raw if isinstance(raw, Mapping) else {}
    if spec.get("path") is None and spec.get("value") is not None:
        return Input(type=str_or_none(spec.get("type")), default=spec.get("value"))
    return Input(
        type=str_or_none(spec.get("type")),
        path=str_or_none(spec.get("path")),
        mode=str_or_none(spec.get("mode")),
    )


def _job_output(raw: Any) -> Output:
    spec = raw if isinstance(raw, Mapping) else {}
    return Output(
        type=str_or_none(spec.get("type")),
        path=str_or_none(spec.get("path")),
        mode=str_or_none(spec.get("mode")),
    )


class BatchJob(RestBacked):
    """A batch job as the server describes it; jobs are created by ``invoke``, never built."""

    def __init__(self, *, name: str, status: str) -> None:
        self.name = name
        self.status = status
        self.status_detail: str | None = None
        self.id: str | None = None
        self.type = "batch"
        self.display_name: str | None = None
        self.experiment_name: str | None = None
        self.endpoint_name: str | None = None
        self.deployment_name: str | None = None
        self.inputs: dict[str, Input] = {}
        self.outputs: dict[str, Output] = {}
        self.settings: dict[str, Any] = {}
        self.progress = JobProgress()
        self.steps: list[JobStep] = []
        self.error: JobError | None = None
        self.creation_context: SystemData | None = None
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.services: dict[str, dict[str, str]] = {}
        self.properties: dict[str, Any] = {}

    @property
    def is_terminal(self) -> bool:
        return self.status in {s.value for s in TERMINAL_STATUSES}

    @property
    def studio_url(self) -> str | None:
        return self.services.get("Studio", {}).get("endpoint")

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> BatchJob:
        job = cls(name=str(raw.get("name", "")), status=str(raw.get("status", "")))
        job.id = str_or_none(raw.get("id"))
        job.status_detail = str_or_none(raw.get("status_detail"))
        job.type = str(raw.get("type") or "batch")
        job.display_name = str_or_none(raw.get("display_name"))
        job.experiment_name = str_or_none(raw.get("experiment_name"))
        job.endpoint_name = str_or_none(raw.get("endpoint_name"))
        job.deployment_name = str_or_none(raw.get("deployment_name"))
        inputs = raw.get("inputs")
        if isinstance(inputs, Mapping):
            job.inputs = {str(k): _job_input(v) for k, v in inputs.items()}
        outputs = raw.get("outputs")
        if isinstance(outputs, Mapping):
            job.outputs = {str(k): _job_output(v) for k, v in outputs.items()}
        settings = raw.get("settings")
        job.settings = dict(settings) if isinstance(settings, Mapping) else {}
        job.progress = JobProgress._from_rest(raw.get("progress"))
        steps = raw.get("steps")
        if isinstance(steps, list):
            job.steps = [s for s in (JobStep._from_rest(item) for item in steps) if s is not None]
        job.error = JobError._from_rest(raw.get("error"))
        job.creation_context = SystemData._from_rest(raw.get("creation_context"))
        job.start_time = parse_datetime(raw.get("start_time"))
        job.end_time = parse_datetime(raw.get("end_time"))
        services = raw.get("services")
        if isinstance(services, Mapping):
            job.services = {
                str(k): {str(a): str(b) for a, b in v.items()}
                for k, v in services.items()
                if isinstance(v, Mapping)
            }
        properties = raw.get("properties")
        job.properties = dict(properties) if isinstance(properties, Mapping) else {}
        job._keep(raw)
        return job

    def _local_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status}
