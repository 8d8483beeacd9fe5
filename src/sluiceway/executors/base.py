"""The executor extension point.

A job's scheduler opens a :class:`WorkerPool` for the job through an :class:`Executor`, submits
:class:`MiniBatchTask` s to it and polls for :class:`MiniBatchResult` s. The pool owns the worker
processes: each imports the scoring script and calls ``init()`` once, then ``run()`` on one
mini-batch at a time. A mini-batch that passes its timeout has its worker killed and replaced
(the replacement runs ``init()`` again); a worker that dies costs only its mini-batch an attempt.
Retrying is the scheduler's decision, not the pool's.

What workers share for their whole life (the deployment's scorer, model, code and settings) is a
:class:`WorkerSpec`; where one job's results, output and logs go is a :class:`JobContext`. A job
that ends with nothing in flight *releases* its pool, and an executor may keep it warm for the
next job of an equal spec, which then attaches its own context instead of starting workers and
running ``init()`` again.

A pipeline's command step runs through the same executor: :meth:`Executor.start_step` starts
it from a :class:`StepLaunch` (its command, its data as datastore locations, its outputs) and
gives back a :class:`StepRun` the scheduler polls and stops. An executor whose workers see the
server's disk makes the step's data local through the server's :class:`StepFiles`; one whose
workers run elsewhere fetches it on the node and sends the outputs back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sluiceway.runtime.output_formats import OutputFormat

if TYPE_CHECKING:
    from sluiceway.environments.cache import FileResolver
    from sluiceway.storage.locations import Location


class ScorerKind(StrEnum):
    SCORING_SCRIPT = "scoring_script"
    MLFLOW = "mlflow"


class FailureKind(StrEnum):
    RUN_ERROR = "run_error"  # run() raised or returned something that is not a list/DataFrame
    INIT_ERROR = "init_error"  # importing the script or init() failed
    TIMEOUT = "timeout"  # the mini-batch passed its timeout; the worker was killed
    WORKER_DIED = "worker_died"  # the process exited (segfault, os._exit, OOM kill)


@dataclass(frozen=True)
class Interpreter:
    """The Python a worker runs: a built environment's (see :mod:`sluiceway.environments`).

    Attributes:
        executable: the interpreter (a virtual environment's ``bin/python``).
        paths: the folders it needs to run, for a worker whose view is narrowed: the virtual
            environment, its base interpreter's prefix and the runtime code it reaches through
            a ``.pth`` file.
        environment: the content hash of the environment it belongs to.
    """

    executable: str
    paths: tuple[str, ...] = ()
    environment: str | None = None

    def activate(self, variables: dict[str, str]) -> dict[str, str]:
        """``variables`` as an activated virtual environment has them: its ``bin`` first on
        ``PATH`` (so ``python`` and its commands are its own), ``VIRTUAL_ENV`` set."""
        bin_dir = os.path.dirname(self.executable)
        path = variables.get("PATH") or os.defpath
        return {
            **variables,
            "PATH": f"{bin_dir}{os.pathsep}{path}",
            "VIRTUAL_ENV": os.path.dirname(bin_dir),
        }


@dataclass(frozen=True)
class WorkerSpec:
    """What the workers of a pool share for their whole life: ``init()`` ran with it.

    Nothing here names a job, so workers kept after one job can serve the next job of an equal
    spec (same scorer, model folder, code, logging level and environment variables).
    """

    scorer: ScorerKind
    model_dir: str | None  # AZUREML_MODEL_DIR
    code_dir: str | None = None  # the deployment's code folder (on sys.path)
    scoring_script: str | None = None  # path of the script relative to code_dir
    logging_level: str = "info"
    environment_variables: dict[str, str] = field(default_factory=dict)
    interpreter: Interpreter | None = None  # None: the server's own
    # How many of the deployment's workers may run at once (instance_count x
    # max_concurrency_per_instance, capped by the server): the local executor shares the
    # machine's cores out among them (see sluiceway.executors.threads). None: no share is
    # set, the libraries choose.
    concurrency: int | None = None
    # The content hash of an environment the executor built where its workers run (see
    # BuildsEnvironments); None: ``interpreter``, or the executor's own Python.
    environment: str | None = None


@dataclass(frozen=True)
class JobContext:
    """Where one job's workers put what they produce; a worker gets it when it starts, and
    again each time its pool moves on to another job."""

    job_name: str
    output_dir: str  # AZUREML_BI_OUTPUT_PATH: the output folder (summary_only scripts write here)
    parts_dir: str  # append_row: each mini-batch's rows go to <parts_dir>/<index:06d>.part
    log_dir: str  # the job's logs/ folder; workers write user/stdout/<worker>.txt under it
    append_rows: bool = True  # False for summary_only: results are only counted
    input_dir: str | None = None  # the folder the mini-batches' files are in
    output_format: OutputFormat = OutputFormat.TEXT  # what a part holds (append_row)
    input_columns: bool = False  # rows carry the input's columns (the MLflow scorer)

    def folders(self) -> list[str]:
        """The folders a worker of this job reads or writes."""
        found = [self.output_dir, self.parts_dir, self.log_dir]
        return found if self.input_dir is None else [*found, self.input_dir]


@dataclass(frozen=True)
class JobData:
    """A job's data as datastore locations, for an executor whose workers cannot see the
    server's disk (see :attr:`Executor.reads_datastores`): they fetch the model and code (and
    verify registered ones against the registry's manifests) and read the mini-batches' files
    themselves. It holds the datastores' credentials: an executor passes it to its workers only
    by reference, never in clear text in a task's arguments or a log.
    """

    input: Location  # a folder, or one file (``single_file``)
    model: Location | None
    code: Location | None
    single_file: bool = False


@dataclass(frozen=True)
class MiniBatchTask:
    index: int
    files: tuple[str, ...]  # local paths, in input order (empty when workers read the datastore)
    attempt: int  # 1 for the first try
    timeout: float  # seconds
    names: tuple[str, ...] = ()  # the files relative to the input (JobData.input), in order


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

    @classmethod
    def failed(
        cls,
        task: MiniBatchTask,
        worker: str,
        failure: FailureKind,
        error_type: str,
        message: str,
        *,
        duration: float = 0.0,
        traceback: str | None = None,
    ) -> MiniBatchResult:
        """The result of an attempt at ``task`` on ``worker`` that failed."""
        return cls(
            index=task.index,
            attempt=task.attempt,
            worker=worker,
            ok=False,
            duration=duration,
            failure=failure,
            error_type=error_type,
            error_message=message,
            traceback=traceback,
        )


class StepFailed(Exception):
    """A pipeline step could not start (its data could not be fetched, its command cannot be
    run) or its outputs could not be committed; the message says why."""


@dataclass(frozen=True)
class StepData:
    """A step's data input: where it is, and whether it is one file."""

    location: Location
    single: bool


@dataclass(frozen=True)
class StepLaunch:
    """What an executor needs to start one pipeline step.

    Its locations hold the datastores' credentials: an executor passes it to other machines
    only by reference, never in clear text in a task's arguments or a log.
    """

    job_name: str
    name: str
    command: str  # the component's command template (``runtime/command.py``)
    literals: dict[str, str]  # literal inputs, as command-line words
    data: dict[str, StepData]  # data inputs
    outputs: tuple[str, ...]  # output names
    code: Location | None  # the code folder, copied into the step's working folder
    environment_variables: dict[str, str]
    interpreter: Interpreter | None  # None: the executor's own Python
    work_dir: str  # the server's folder of the step: its outputs end in <work_dir>/outputs/<name>
    log_dir: str  # the server's logs/steps/<step>/: command.txt, stdout.txt, stderr.txt
    # The content hash of an environment the executor built where the step runs (see
    # BuildsEnvironments); None: ``interpreter``, or the executor's own Python.
    environment: str | None = None

    def output_folders(self) -> dict[str, Path]:
        """The server's folder of each output, committed once the step exits 0."""
        return {name: Path(self.work_dir) / "outputs" / name for name in self.outputs}


class StepFiles(Protocol):
    """The server's way to make a step's data local, for executors whose workers see its disk."""

    def input(self, step: str, name: str, data: StepData) -> Path:
        """A local path of input ``name`` (read in place, or fetched). Raises StepFailed."""

    def code(self, location: Location) -> Path:
        """A local copy of a code folder, checked if registered. Raises StepFailed."""

    def keep(self) -> None:
        """Called while a step's start takes time: the scheduler keeps its lease, and raises
        (``JobCanceled``, ``LeaseLost``) when the job was canceled or is not its own any more;
        the executor then stops what it started and lets it through."""


class StepRun(Protocol):
    """A started step."""

    @property
    def where(self) -> str:
        """Where it runs, for the job's log (a process id, a Ray actor and its node)."""

    def poll(self) -> int | None:
        """Its exit code once it ended (negative: the signal that killed it), else None. Its
        output folders (:meth:`StepLaunch.output_folders`) are complete once it returns 0."""

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM to its process group); see :meth:`kill`."""

    def kill(self, deadline: float) -> None:
        """Wait until ``deadline`` (``time.monotonic()``) for it to stop, then kill it with
        everything it started; nothing of it runs afterwards."""


class ExecutorUnavailable(Exception):
    """The executor cannot start workers now (its cluster cannot be reached, say); the message
    names the compute and its address and says why. The job fails at once with it."""


class WorkerPool(Protocol):
    """The workers serving one job."""

    @property
    def size(self) -> int:
        """How many workers the pool runs."""

    def idle(self) -> int:
        """How many tasks can be submitted now."""

    def submit(self, task: MiniBatchTask) -> None:
        """Give a task to an idle worker. Raises RuntimeError if none is idle."""

    def poll(self, timeout: float) -> list[MiniBatchResult]:
        """Wait up to ``timeout`` seconds; return the results that arrived (possibly none).

        Timed-out and dead workers show up here as failed results, and are replaced.
        """

    def running(self) -> list[int]:
        """Indexes of the mini-batches in flight."""

    def prefetch(self, task: MiniBatchTask) -> None:
        """A hint that ``task`` is submitted soon: a pool whose workers read the datastores
        fetches its files while they score the mini-batch before. Pools whose files the server
        stages ignore it."""

    def release(self) -> None:
        """The job is done with the pool: the executor may keep the workers warm for a later
        job of an equal spec, else they are stopped. A pool with mini-batches in flight is
        killed."""

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker: let them exit after their current task, or kill them now."""


@runtime_checkable
class BuildsEnvironments(Protocol):
    """An executor whose workers run where the server's built environments are not (a Ray
    cluster's nodes): it builds a job's environment there itself, before the job's pool, or
    a pipeline step's before the step starts."""

    def prepare_environment(self, content: Mapping[str, Any], files: FileResolver) -> Future[str]:
        """Start building the environment of ``content`` (a job spec's ``environment``) where
        the workers run; ``files`` gives the local file of each uploaded wheel it names.

        The future gives its content hash once it is ready everywhere it is needed (the
        :attr:`WorkerSpec.environment` of the job's pool, the :attr:`StepLaunch.environment`
        of a step), or raises
        :class:`~sluiceway.environments.cache.BuildFailed` with the failed build's log, or
        :class:`ExecutorUnavailable`.
        """


class Executor(Protocol):
    name: str
    #: True when workers read the job's files from the datastores themselves (they run where
    #: the server's disk is not): the scheduler then gives each task the files' ``names`` and
    #: the pool a :class:`JobData`, and stages no input on the server.
    reads_datastores: bool

    def open_pool(
        self, spec: WorkerSpec, job: JobContext, workers: int, data: JobData | None = None
    ) -> WorkerPool:
        """``workers`` workers for one job: warm ones a job of an equal spec released, or new
        ones. ``data`` is given when :attr:`reads_datastores` is True."""

    def describe(self, workers: int) -> str:
        """Where the pool's workers run, for the job's log (which machine or cluster)."""

    def start_step(self, launch: StepLaunch, files: StepFiles) -> StepRun:
        """Start a pipeline step: its data made local (through ``files``, or on the node that
        runs it), its command started without a shell, its stdout and stderr written to
        ``launch.log_dir``.

        Raises:
            StepFailed: it could not start; the message says why.
            ExecutorUnavailable: the executor cannot run anything now.
        """

    def close(self) -> None:
        """Stop the workers the executor keeps warm; pools released later are stopped too."""
