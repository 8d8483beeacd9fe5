"""Jobs: status, progress and the job resource."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from sluiceway.schemas.common import CreationContext, Open


class JobStatus(StrEnum):
    """Azure ML's job status names."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


class MiniBatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StepStatus(StrEnum):
    """A pipeline step's status; ``Skipped`` steps never ran (a step they need failed)."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"

    @property
    def is_done(self) -> bool:
        return self not in (StepStatus.NOT_STARTED, StepStatus.RUNNING)


class JobProgress(Open):
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


class JobError(Open):
    code: str
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class JobStep(Open):
    """One step of a pipeline job; its logs are ``logs`` paths under ``/jobs/{name}/logs/``."""

    name: str
    display_name: str | None = None
    component: str | None = None
    status: StepStatus
    exit_code: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration_seconds: float | None = None
    logs: dict[str, str] = Field(default_factory=dict)
    error: JobError | None = None


class JobIO(Open):
    """One input or output as ``az ml job show`` prints it."""

    type: str
    path: str | None = None
    value: Any = None
    mode: str | None = None


class JobOut(Open):
    """The job resource: ``az ml job show`` fields at the top, the REST ``properties`` below."""

    id: str
    name: str
    type: str = "batch"
    display_name: str | None = None
    experiment_name: str | None = None
    status: JobStatus
    status_detail: str | None = None  # failed files of a completed job, a cancel, an error
    endpoint_name: str
    deployment_name: str
    inputs: dict[str, JobIO] = Field(default_factory=dict)
    outputs: dict[str, JobIO] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    progress: JobProgress = Field(default_factory=JobProgress)
    steps: list[JobStep] = Field(default_factory=list)
    error: JobError | None = None
    creation_context: CreationContext | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    services: dict[str, dict[str, str]] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    compute: str | None = None  # the compute the deployment named when the job was queued
    runs_on: str | None = None  # where the job runs, in words


class JobFile(Open):
    path: str
    size: int


class JobOutputListing(Open):
    output_name: str
    uri: str
    files: list[JobFile]
