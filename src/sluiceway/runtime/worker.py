"""The main of one worker process.

The pool starts :func:`main` (through :mod:`sluiceway.runtime.launch`) and talks to it over
one socket. Its first message is an :class:`Assignment` (serve this job), or a
:class:`Preload` (a spare worker; see below). The pool then sends
:class:`~sluiceway.executors.base.MiniBatchTask` s, a
:class:`~sluiceway.executors.base.JobContext` when the worker moves on to another job (a pool
kept warm), and ``None`` to stop. The worker sends one :class:`WorkerReady` once its scorer's
``init()`` has returned (or failed), then one :class:`~sluiceway.executors.base.MiniBatchResult`
per task, in order. A worker whose ``init()`` failed stays up and answers every task with that
failure, so each mini-batch it is given is reported as an ``init_error``.

Before it scores a task the worker sends :class:`Started`, which starts the task's timeout
clock, and :class:`Scored` once it has scored it. The pool may send a task before the worker
has answered the one before (it queues ahead for a worker whose mini-batches are short). When
several tasks are waiting and the scorer can score them in one go (the built-in MLflow scorer,
on small CSV files), the worker takes them together (one :class:`Started` for all, whose
timeouts add up), scores them at once and answers each with its own result and part file. If
scoring them together fails, each is scored again alone, so every error is its own
mini-batch's.

A mini-batch's part file is on disk (``fsync``ed, with its folder) before its result is sent.
A thread of the worker's own does that, and sends the results in order, while the worker
scores the next mini-batches (:class:`_Answers`), so it never waits for the disk: a
:class:`Started` may reach the pool before the results of the tasks before it, and the pool
sends more to a worker whose held tasks are scored but not yet answered.

A spare worker is started before any job needs it: it imports the modules its
:class:`Preload` names and waits for an :class:`Assignment`, after which it serves as any
worker does.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import io
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

from sluiceway.executors.base import (
    FailureKind,
    JobContext,
    MiniBatchResult,
    MiniBatchTask,
    ScorerKind,
    WorkerSpec,
)
from sluiceway.executors.threads import limit_loaded_libraries
from sluiceway.runtime import scoring
from sluiceway.runtime.output_formats import ByteSink, row_writer
from sluiceway.runtime.parts import PartFile, make_durable
from sluiceway.runtime.scoring import Scorer, load_scorer

logger = logging.getLogger("sluiceway.worker")

ORPHAN_CHECK_SECONDS = 0.2
JOINT_BYTES = 4 << 20
"""At most this many bytes of input are scored in one go (see :func:`take_joinable`)."""
JOINT_TASKS = 32
"""At most this many mini-batches are scored in one go."""

# Frames of the worker itself, skipped at the top of a traceback so it starts at the user's code.
_OWN_FILES = frozenset({__file__, scoring.__file__})


@dataclass(frozen=True)
class ErrorReport:
    """An exception raised in a worker, as text that crosses the pipe."""

    type: str
    message: str
    traceback: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorReport:
        """Describe ``exc``; its traceback starts at the first frame outside the worker."""
        tb = exc.__traceback__
        while tb is not None and _is_own_frame(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        return cls(type=type(exc).__name__, message=str(exc), traceback=text)


@dataclass(frozen=True)
class WorkerReady:
    """Sent once, when the scorer's ``init()`` has returned or failed."""

    worker: str
    pid: int
    init_seconds: float
    init_error: ErrorReport | None = None


def stdout_log_path(log_dir: str, worker: str) -> Path:
    """Where a worker's stdout and stderr go: ``<log_dir>/user/stdout/<worker>.txt``."""
    return Path(log_dir) / "user" / "stdout" / f"{worker}.txt"


@dataclass(frozen=True)
class Assignment:
    """What a worker serves: its pool's spec, the first job and the worker's name
    (``worker-<i>``, which names its stdout log)."""

    spec: WorkerSpec
    job: JobContext
    worker: str


@dataclass(frozen=True)
class Scored:
    """Sent when the worker has scored the ``count`` tasks it started last: their results
    follow once their parts are on disk, and it can be given more meanwhile."""

    count: int


@dataclass(frozen=True)
class Started:
    """Sent when the worker starts the next ``count`` tasks it was sent (in one go when there
    are several): what it scored before is done, its results are sent or on their way."""

    count: int


@dataclass(frozen=True)
class Preload:
    """A spare worker's first message: the modules to import while it waits."""

    modules: tuple[str, ...]


def main(conn: Connection) -> None:
    """Run one worker until the pool sends ``None`` or closes the socket.

    The first message is an :class:`Assignment`, or a :class:`Preload`: then the modules are
    imported (one that cannot be is skipped: the job's own import reports it) and the worker
    waits for its assignment.
    """
    _own_process_group()
    try:
        message = conn.recv()
        if isinstance(message, Preload):
            for name in message.modules:
                try:
                    importlib.import_module(name)
                except Exception as exc:  # not installed, or broken
                    print(f"spare worker: {name} not preloaded: {exc}", file=sys.stderr, flush=True)
            message = conn.recv()
    except (EOFError, OSError):
        return
    if isinstance(message, Assignment):
        _serve(conn, message.spec, message.job, message.worker)


def _own_process_group() -> None:
    # A process group of its own lets the pool kill the worker together with any process the
    # script started, and keeps a terminal's Ctrl-C for the server to handle.
    os.setpgrp()
    _exit_with_parent(os.getppid())


def _serve(conn: Connection, spec: WorkerSpec, job: JobContext, worker: str) -> None:
    redirect_output(stdout_log_path(job.log_dir, worker))
    # A crash in C code (a segfault, an abort) then leaves its Python stack in the log, which
    # is all a "worker died" report can point to.
    faulthandler.enable()
    _set_environment(spec, job)
    _configure_logging(spec.logging_level)
    _set_arguments(spec)
    logger.info(
        "%s started (pid %d, Python %s: %s)",
        worker,
        os.getpid(),
        sys.version.split()[0],
        sys.executable,
    )

    started = time.monotonic()
    scorer: Scorer | None = None
    init_error: ErrorReport | None = None
    try:
        scorer = load_scorer(spec)
    except (Exception, SystemExit) as exc:
        init_error = ErrorReport.from_exception(exc)
        logger.error("init() failed:\n%s", init_error.traceback)
    else:
        logger.info("init() done in %.2f s", time.monotonic() - started)
    _flush_output()
    ready = WorkerReady(worker, os.getpid(), time.monotonic() - started, init_error)
    if not _send(conn, ready):
        return

    answers = _Answers(conn)
    waiting: deque[MiniBatchTask | JobContext | None] = deque()
    while not answers.gone.is_set():
        try:
            if not waiting:
                waiting.append(conn.recv())
            while conn.poll():  # what else has come, to be scored together if it can
                waiting.append(conn.recv())
        except (EOFError, OSError):
            return  # the pool is gone
        message = waiting.popleft()
        if message is None:
            answers.close()  # what was scored is answered before the worker exits
            return
        if isinstance(message, JobContext):
            job = message
            _attach(job, worker)
            continue
        if scorer is None:
            assert init_error is not None
            answers.started(1)
            answers.scored(1)
            answers.send(
                [
                    MiniBatchResult.failed(
                        message,
                        worker,
                        FailureKind.INIT_ERROR,
                        init_error.type,
                        init_error.message,
                        traceback=init_error.traceback,
                    )
                ]
            )
            continue
        tasks = [message, *take_joinable(scorer, message, waiting)]
        answers.started(len(tasks))
        results = run_tasks(scorer, tasks, job, worker, durable=False)
        answers.scored(len(tasks))
        _flush_output()
        answers.send(results)


class _Answers:
    """The worker's messages to the pool: :class:`Started` at once, results in order by a
    thread of their own once the part files they name are durable
    (:func:`~sluiceway.runtime.parts.make_durable`), while the worker scores on. A result whose
    part cannot be made durable is sent as a failure."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # one message at a time on the socket
        self._queue: queue.SimpleQueue[list[MiniBatchResult] | None] = queue.SimpleQueue()
        self.gone = threading.Event()  # the pool closed the socket
        self._thread = threading.Thread(target=self._run, name="sluiceway-answers", daemon=True)
        self._thread.start()

    def started(self, count: int) -> None:
        """Say that the worker starts its next ``count`` tasks."""
        self._send(Started(count))

    def scored(self, count: int) -> None:
        """Say that the worker has scored the ``count`` tasks it started last."""
        self._send(Scored(count))

    def send(self, results: Sequence[MiniBatchResult]) -> None:
        """Send ``results`` after those before, once their parts are durable."""
        self._queue.put(list(results))

    def _send(self, message: Started | Scored | MiniBatchResult) -> None:
        if self.gone.is_set():
            return
        try:
            with self._lock:
                self._conn.send(message)
        except OSError:
            self.gone.set()  # the pool is gone

    def close(self) -> None:
        """Send what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (results := self._queue.get()) is not None:
            if not self.gone.is_set():
                for result in _durable(results):
                    self._send(result)


def _durable(results: list[MiniBatchResult]) -> list[MiniBatchResult]:
    """``results`` once their parts are durable; if that fails, each of them with a part
    becomes a failure (and its part is removed)."""
    parts = [result.part_path for result in results if result.part_path]
    if not parts:
        return results
    try:
        make_durable(parts)
    except OSError as exc:
        logger.error("the part files %s could not be written to disk: %s", parts, exc)
        failed: list[MiniBatchResult] = []
        for result in results:
            if result.part_path:
                with contextlib.suppress(OSError):
                    os.unlink(result.part_path)
                result = replace(
                    result,
                    ok=False,
                    items_succeeded=0,
                    part_path=None,
                    failure=FailureKind.RUN_ERROR,
                    error_type=type(exc).__name__,
                    error_message=f"The mini-batch's part file could not be written: {exc}",
                )
            failed.append(result)
        return failed
    return results


def take_joinable(
    scorer: Scorer, first: MiniBatchTask, waiting: deque[MiniBatchTask | JobContext | None]
) -> list[MiniBatchTask]:
    """The tasks at the head of ``waiting`` that can be scored together with ``first``,
    taken off it."""
    if not waiting or not isinstance(waiting[0], MiniBatchTask):
        return []
    size = scorer.joinable(first.files)
    if size is None:
        return []
    taken: list[MiniBatchTask] = []
    while waiting and len(taken) + 1 < JOINT_TASKS:
        task = waiting[0]
        if not isinstance(task, MiniBatchTask):
            break
        more = scorer.joinable(task.files)
        if more is None or size + more > JOINT_BYTES:
            break
        size += more
        taken.append(task)
        waiting.popleft()
    return taken


def run_tasks(
    scorer: Scorer,
    tasks: list[MiniBatchTask],
    job: JobContext,
    worker: str,
    *,
    durable: bool = True,
) -> list[MiniBatchResult]:
    """Score ``tasks`` in one go (see :meth:`Scorer.score_together`), each with its own part
    file and result; each alone (:func:`run_task`) when there is one, or when scoring them
    together raised. ``durable``: see :func:`run_task`."""
    if len(tasks) == 1:
        return [run_task(scorer, tasks[0], job, worker, durable=durable)]
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            parts = [
                stack.enter_context(PartFile(job.parts_dir, task.index, durable=False))
                for task in tasks
                if job.append_rows
            ]
            writers = [row_writer(job.output_format, part) for part in parts]
            items = scorer.score_together(
                [task.files for task in tasks],
                writers if job.append_rows else None,
                input_columns=job.input_columns,
            )
            for writer in writers:
                writer.close()
        if parts and durable:
            make_durable([str(part.path) for part in parts])
    except (Exception, SystemExit) as exc:
        logger.info(
            "mini-batches %s scored together failed (%s: %s); scoring each alone",
            ", ".join(str(task.index) for task in tasks),
            type(exc).__name__,
            exc,
        )
        return [run_task(scorer, task, job, worker, durable=durable) for task in tasks]
    share = (time.monotonic() - started) / len(tasks)
    logger.debug(
        "mini-batches %s scored together, %.3f s each",
        ", ".join(str(task.index) for task in tasks),
        share,
    )
    return [
        MiniBatchResult(
            index=task.index,
            attempt=task.attempt,
            worker=worker,
            ok=True,
            items_succeeded=count,
            part_path=str(parts[n].path) if parts else None,
            duration=share,
        )
        for n, (task, count) in enumerate(zip(tasks, items, strict=True))
    ]


def run_task(
    scorer: Scorer,
    task: MiniBatchTask,
    job: JobContext,
    worker: str,
    rows: ByteSink | None = None,
    *,
    durable: bool = True,
) -> MiniBatchResult:
    """Score one mini-batch and, for ``append_row``, commit its rows as a part file.

    Args:
        scorer: the loaded scorer.
        task: the mini-batch.
        job: the job it belongs to (where parts go, whether rows are written).
        worker: this worker's name, copied into the result.
        rows: for ``append_row``, where the part's bytes go instead of a part file (a worker
            that sends them to the server, which writes the part); its contents count only
            when the result succeeded.
        durable: the part file is on disk when this returns; False leaves that to the caller
            (:func:`~sluiceway.runtime.parts.make_durable`), before the result is sent.

    Returns:
        A succeeded result with the item count and part path, or a ``run_error`` result with
        the error's type, message and traceback.
    """
    started = time.monotonic()
    part = None
    try:
        if job.append_rows and rows is not None:
            items = _score_rows(scorer, task, job, rows)
        elif job.append_rows:
            # The rows go to the part file as they are scored; it is committed only if the
            # whole mini-batch succeeds.
            with PartFile(job.parts_dir, task.index, durable=durable) as part_file:
                items = _score_rows(scorer, task, job, part_file)
            part = str(part_file.path)
        else:
            items = scorer.score(task.files)
    except (Exception, SystemExit) as exc:
        error = ErrorReport.from_exception(exc)
        logger.error("mini-batch %d failed:\n%s", task.index, error.traceback)
        return MiniBatchResult.failed(
            task,
            worker,
            FailureKind.RUN_ERROR,
            error.type,
            error.message,
            duration=time.monotonic() - started,
            traceback=error.traceback,
        )
    duration = time.monotonic() - started
    logger.debug("mini-batch %d: %d items in %.2f s", task.index, items, duration)
    return MiniBatchResult(
        index=task.index,
        attempt=task.attempt,
        worker=worker,
        ok=True,
        items_succeeded=items,
        part_path=part,
        duration=duration,
    )


def _score_rows(scorer: Scorer, task: MiniBatchTask, job: JobContext, sink: ByteSink) -> int:
    writer = row_writer(job.output_format, sink)
    items = scorer.score(task.files, writer, input_columns=job.input_columns)
    writer.close()
    return items


def redirect_output(path: Path) -> None:
    """Send file descriptors 1 and 2 to ``path`` (appending), so output of C code and of
    child processes lands there too, and make ``sys.stdout`` line-buffered."""
    _flush_output()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Line buffering keeps the log current even when the worker is killed mid-batch.
            stream.reconfigure(line_buffering=True)


def _exit_with_parent(parent: int) -> None:
    """Kill this worker, with whatever its script started, as soon as the process that started
    it is gone (a server killed with SIGKILL cannot stop its workers): an orphan must not go on
    scoring, or write parts, for a job that another scheduler now runs."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="sluiceway-orphan-watch", daemon=True).start()


def _attach(job: JobContext, worker: str) -> None:
    """Serve another job: output from now on goes to its log."""
    _flush_output()
    redirect_output(stdout_log_path(job.log_dir, worker))
    os.environ["AZUREML_BI_OUTPUT_PATH"] = job.output_dir
    logger.info(
        "%s (pid %d, %s) kept warm from an earlier job of an equal deployment: init() does "
        "not run again; this log starts with job %s",
        worker,
        os.getpid(),
        sys.executable,
        job.job_name,
    )
    _flush_output()


def _set_environment(spec: WorkerSpec, job: JobContext) -> None:
    os.environ.update(spec.environment_variables)
    # A spare imported NumPy (and its BLAS) before it knew its thread budget.
    limit_loaded_libraries(spec.environment_variables)
    # The job's own locations win over the deployment's variables: outputs must land where the
    # job commits them from.
    os.environ["AZUREML_BI_OUTPUT_PATH"] = job.output_dir
    Path(job.output_dir).mkdir(parents=True, exist_ok=True)
    if spec.model_dir is not None:
        os.environ["AZUREML_MODEL_DIR"] = spec.model_dir


def _configure_logging(level_name: str) -> None:
    level = logging.getLevelNamesMapping().get(level_name.upper(), logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def _set_arguments(spec: WorkerSpec) -> None:
    # Scripts read their logging level the Azure way: parse_known_args() on --logging_level.
    if spec.scorer is ScorerKind.SCORING_SCRIPT and spec.code_dir and spec.scoring_script:
        script = str(Path(spec.code_dir) / spec.scoring_script)
    else:
        script = scoring.MLFLOW_SCORER_MODULE
    sys.argv = [script, "--logging_level", spec.logging_level]


def _send(conn: Connection, message: object) -> bool:
    try:
        conn.send(message)
    except OSError:
        return False  # the pool is gone
    return True


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()


def _is_own_frame(filename: str) -> bool:
    return filename in _OWN_FILES or filename.startswith("<frozen importlib")
