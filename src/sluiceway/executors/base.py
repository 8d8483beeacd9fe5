"""The executor extension point.

A job's scheduler opens one :class:`WorkerPool` per job through an :class:`Executor`, submits
:class:`MiniBatchTask` s to it and polls for :class:`MiniBatchResult` s. The pool owns the worker
processes: each imports the scoring script and calls ``init()`` once, then ``run()`` on one
mini-batch at a time. A mini-batch that passes its timeout has its worker killed and replaced
(the replacement runs ``init()`` again); a worker that dies costs only its mini-batch an attempt.
Retrying is the scheduler's decision, not the pool's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ScorerKind(StrEnum):
    SCORING_SCRIPT = "scoring_script"
    MLFLOW = "mlflow"


class FailureKind(StrEnum):
    RUN_ERROR = "run_error"  # run() raised or returned something that is not a list/DataFrame
    INIT_ERROR = "init_error"  # importing the script or init() failed
    TIMEOUT = "timeout"  # the mini-batch passed its timeout; the worker was killed
    WORKER_DIED = "worker_died"  # the process exited (segfault, os._exit, OOM kill)


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker of one job needs; sent once when the worker starts."""

    job_name: str
    scorer: ScorerKind
    model_dir: str | None  # AZUREML_MODEL_DIR
    output_dir: str  # AZUREML_BI_OUTPUT_PATH: the output folder (summary_only scripts write here)
    parts_dir: str  # append_row: each mini-batch's rows go to <parts_dir>/<index:06d>.part
    log_dir: str  # the job's logs/ folder
    code_dir: str | None = None  # the deployment's code folder (on sys.path)
    scoring_script: str | None = None  # path of the script relative to code_dir
    append_rows: bool = True  # False for summary_only: results are only counted
    logging_level: str = "info"
    environment_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MiniBatchTask:
    index: int
    files: tuple[str, ...]  # local paths, in input order
    attempt: int  # 1 for the first try
    timeout: float  # seconds


@dataclass(frozen=True)
class MiniBatchResult:
    index: int
    attempt: int
    worker: str
    ok: bool
    items_succeeded: int = 0
    part_path: str | None = None  # written atomically; None for summary_only or on failure
    duration: float = 0.0
    failure: FailureKind | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None


class WorkerPool(Protocol):
    """The workers of one job."""

    @property
    def size(self) -> int:
        """How many workers the pool runs."""

    def idle(self) -> int:
        """How many workers can take a task now."""

    def submit(self, task: MiniBatchTask) -> None:
        """Give a task to an idle worker. Raises RuntimeError if none is idle."""

    def poll(self, timeout: float) -> list[MiniBatchResult]:
        """Wait up to ``timeout`` seconds; return the results that arrived (possibly none).

        Timed-out and dead workers show up here as failed results, and are replaced.
        """

    def running(self) -> list[int]:
        """Indexes of the mini-batches in flight."""

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker: let them exit after their current task, or kill them now."""


class Executor(Protocol):
    name: str

    def open_pool(self, spec: WorkerSpec, workers: int) -> WorkerPool:
        """Start ``workers`` worker processes for one job."""
