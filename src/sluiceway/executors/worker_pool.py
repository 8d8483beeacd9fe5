"""The worker pool of the ``local`` executor: worker processes serving one job at a time.

Each worker is a fresh process (see :mod:`~sluiceway.executors.processes`) that runs
:func:`sluiceway.runtime.worker.main` over one socket, as the pool's
:class:`~sluiceway.executors.isolation.WorkerIsolation` says (its user, environment and the
folders it can reach): it calls the scorer's ``init()``
once, says so with a :class:`~sluiceway.runtime.worker.WorkerReady`, then scores one mini-batch
at a time. The pool enforces each mini-batch's timeout. Its clock starts when the worker says
it starts the mini-batch (a :class:`~sluiceway.runtime.worker.Started` message), so a slow
``init()`` never costs a mini-batch its time; between two, the next mini-batch's clock runs from
when the worker was last known busy. A worker whose mini-batch times out is killed together
with its process group (anything the script started), and replaced; so is a worker that exits
without answering. The replacement keeps the slot's name, so its output is appended to the same
stdout log.

A worker whose last mini-batch was short is sent more before it answers, up to about
:data:`QUEUE_AHEAD_SECONDS` of work (at most :data:`QUEUE_DEPTH` mini-batches), so it never
waits for the scheduler between two; it may score several of them in one go (see
:mod:`sluiceway.runtime.worker`), and then their timeouts add up. A death or a timeout costs an
attempt only to the mini-batches the worker was scoring (or, between two, to the next one it
was to start); the others it held, not started or scored but not yet answered, go to its
replacement.

A pool kept warm after its job (see :mod:`~sluiceway.executors.idle_pools`) *attaches* to the
next job of an equal worker spec: each worker is sent the job's
:class:`~sluiceway.executors.base.JobContext` (its stdout moves to the new job's log), and the
pool's output folder is pointed at the job's. Workers see that folder as
``AZUREML_BI_OUTPUT_PATH`` through a symbolic link the pool owns, so a script that kept the path
from ``init()`` writes into the job it is running, whichever job that is.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path
from types import TracebackType
from typing import Self

from sluiceway.executors.base import (
    FailureKind,
    JobContext,
    MiniBatchResult,
    MiniBatchTask,
    WorkerSpec,
)
from sluiceway.executors.isolation import WorkerIsolation
from sluiceway.executors.processes import (
    WorkerConnection,
    WorkerProcess,
    describe_exit,
    log_tail,
    signal_group,
    start_process,
    stop_all,
    wait_for_exit,
)
from sluiceway.runtime.worker import (
    Assignment,
    ErrorReport,
    Scored,
    Started,
    WorkerReady,
    stdout_log_path,
)

logger = logging.getLogger("sluiceway.executors.local")

DEFAULT_GRACE_PERIOD = 5.0
"""Seconds :meth:`LocalWorkerPool.close` waits for workers to exit before terminating them."""

QUEUE_AHEAD_SECONDS = 0.1
"""A worker is sent mini-batches ahead while it holds less than this much work, judged by how
long its last one took."""
QUEUE_DEPTH = 32
"""The most mini-batches a worker holds at once."""

_TERMINATE_GRACE = 1.0  # between SIGTERM and SIGKILL for the stragglers of a graceful close
_EXIT_GRACE = 1.0  # for a worker whose pipe closed to finish exiting, so its exit code is its own


@dataclass(eq=False)
class _Worker(WorkerProcess):
    """One worker process of a pool and the mini-batches it holds, in the order it runs them."""

    ready: bool = False
    tasks: list[MiniBatchTask] = field(default_factory=list)  # sent, not answered, in order
    begun: int = 0  # how many of the first tasks it has started
    active: int = 0  # how many of those (the last begun) it is scoring; the others are done
    clock: float | None = None  # when what it does now began; None while not ready
    pace: float | None = None  # seconds its last mini-batch took to score, in this job
    orphans: list[MiniBatchTask] = field(default_factory=list)  # for its replacement

    @property
    def scoring(self) -> list[MiniBatchTask]:
        """The tasks it is scoring now (in one go when there are several)."""
        return self.tasks[self.begun - self.active : self.begun]

    def blamed(self) -> list[MiniBatchTask]:
        """What a death or a timeout costs an attempt: what it is scoring, or else the next
        task it was to start."""
        return self.scoring if self.active else self.tasks[self.begun : self.begun + 1]

    @property
    def deadline(self) -> float | None:
        blamed = self.blamed()
        if not blamed or self.clock is None:
            return None
        return self.clock + sum(task.timeout for task in blamed)

    @property
    def load(self) -> int:
        """How many of its tasks it has not scored yet (those scored wait only for their
        answers)."""
        return len(self.tasks) - (self.begun - self.active)

    @property
    def depth(self) -> int:
        """How many mini-batches not scored yet it may hold."""
        if self.pace is None or self.pace >= QUEUE_AHEAD_SECONDS:
            return 1
        return min(QUEUE_DEPTH, math.ceil(QUEUE_AHEAD_SECONDS / max(self.pace, 1e-3)))


class LocalWorkerPool:
    """The worker processes serving one job at a time; see the module's docstring.

    Not thread-safe: one scheduler thread submits, polls and closes (or releases) it. Usable as
    a context manager, which closes the pool on exit (killing the workers if the block raised).

    Args:
        spec: what every worker needs for its whole life.
        job: the job the workers serve first.
        workers: how many worker processes to run.
        grace_period: see :class:`LocalExecutor`.
        init_timeout: see :class:`LocalExecutor`.
        keep: called by :meth:`release` with the pool; True when it took the pool to keep it
            warm. None: a released pool is closed.
        run_dir: where the pool's folder (the link to the output folder) is made.
        take_spare: gives a spare worker process to use instead of starting one, if any.
        on_end: called once when the pool stops serving its job (released or closed).
        isolation: the user, environment and view its workers get.

    Raises:
        ValueError: ``workers`` is less than 1.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        job: JobContext,
        workers: int,
        *,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        init_timeout: float | None = None,
        keep: Callable[[LocalWorkerPool], bool] | None = None,
        run_dir: Path | None = None,
        take_spare: Callable[[], WorkerProcess | None] | None = None,
        on_end: Callable[[], None] | None = None,
        isolation: WorkerIsolation | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, got {workers}")
        self._isolation = isolation or WorkerIsolation()
        self._run_dir = run_dir
        self._spec = spec
        self._job = job
        self._limit = workers
        self._grace_period = grace_period
        self._init_timeout = init_timeout
        self._keep = keep
        self._take_spare = take_spare
        self._on_end = on_end
        self._workers: list[_Worker] = []
        self._init_errors: list[WorkerReady] = []
        self._closed = False
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=f"pool-{os.getpid()}-", dir=run_dir))
        self._isolation.open_to_workers(self._dir)  # workers follow its output link
        # Kills the workers if the pool is dropped or the interpreter exits without close().
        self._finalizer = weakref.finalize(self, _stop_all, self._workers, self._dir)
        try:
            self._point_output(job.output_dir)
            self._give_folders(job)
            for slot in range(workers):
                self._workers.append(self._start(f"worker-{slot}"))
        except BaseException:
            self.close(kill=True)
            raise

    @property
    def size(self) -> int:
        """How many workers the pool runs."""
        return len(self._workers)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def job(self) -> JobContext:
        """The job the pool serves now."""
        return self._job

    @property
    def output_link(self) -> Path:
        """What workers see as ``AZUREML_BI_OUTPUT_PATH``: a link to the job's output folder."""
        return self._dir / "output"

    def idle(self) -> int:
        """How many tasks can be submitted now: idle workers (a worker still in ``init()``
        counts) up to the job's worker count, and room ahead in busy workers whose
        mini-batches are short (see the module's docstring)."""
        if self._closed:
            return 0
        return sum(max(worker.depth - worker.load, 0) for worker in self._usable())

    def running(self) -> list[int]:
        """Indexes of the mini-batches in flight (sent and not answered), in worker order."""
        return [task.index for worker in self._workers for task in worker.tasks]

    def prefetch(self, task: MiniBatchTask) -> None:
        """Nothing to do: the server stages the files of local workers (see the scheduler)."""

    def init_errors(self) -> list[WorkerReady]:
        """What each worker whose ``init()`` failed (or passed ``init_timeout``) reported, in
        the order it happened; replacements that fail again add entries."""
        return list(self._init_errors)

    def pids(self) -> dict[str, int]:
        """The process id of each live worker, by worker name."""
        return {
            worker.name: worker.process.pid
            for worker in self._workers
            if not worker.stopped and worker.process.pid is not None
        }

    def submit(self, task: MiniBatchTask) -> None:
        """Give ``task`` to an idle worker, preferring one whose ``init()`` has finished.

        Raises:
            RuntimeError: the pool is closed, or no worker is idle.
            ValueError: a mini-batch with the same index is already in flight.
        """
        self._check_open()
        if task.index in self.running():
            raise ValueError(f"mini-batch {task.index} is already running in this pool")
        candidates = [w for w in self._usable() if w.load < w.depth]
        if not candidates:
            raise RuntimeError(
                f"no idle worker: the job's {self._limit} workers hold mini-batches "
                f"{self.running()}; poll() until one finishes"
            )
        self._send(min(candidates, key=lambda worker: worker.load), task)

    def _usable(self) -> list[_Worker]:
        """The workers this job may give tasks to: those holding some, then idle ones (those
        done with ``init()`` first) up to the job's worker count."""
        busy = [worker for worker in self._workers if worker.tasks]
        free = sorted(
            (worker for worker in self._workers if not worker.tasks),
            key=lambda worker: (not worker.ready, worker.started),
        )
        return busy + free[: max(self._limit - len(busy), 0)]

    def _send(self, worker: _Worker, task: MiniBatchTask) -> None:
        if not worker.tasks:
            worker.clock = time.monotonic() if worker.ready else None
        worker.tasks.append(task)
        try:
            worker.conn.send(task)
        except OSError as exc:
            # The worker is gone; the next poll() sees it exit and reports the task as failed.
            logger.warning("%s: sending mini-batch %d failed: %s", worker.name, task.index, exc)

    def poll(self, timeout: float) -> list[MiniBatchResult]:
        """Wait up to ``timeout`` seconds for results; return as soon as there is one.

        Timed-out and dead workers are reported here as failed results, and replaced.

        Raises:
            RuntimeError: the pool is closed.
        """
        self._check_open()
        end = time.monotonic() + max(timeout, 0.0)
        results: list[MiniBatchResult] = []
        while True:
            wake = min([end, *self._deadlines()])
            waitables: list[WorkerConnection | int] = []
            for worker in self._workers:
                waitables += [worker.conn, worker.process.sentinel]
            ready = set(wait(waitables, timeout=max(wake - time.monotonic(), 0.0)))
            for worker in self._workers:
                results.extend(self._service(worker, exited=worker.process.sentinel in ready))
            # Only now: starting a process reaps every exited child, and a worker must be
            # stopped (its process group killed) before it is reaped; see signal_group().
            for slot, worker in enumerate(self._workers):
                if worker.stopped:
                    self._workers[slot] = replacement = self._start(worker.name)
                    for task in worker.orphans:
                        self._send(replacement, task)
            if results or time.monotonic() >= end:
                return results

    def attach(
        self, job: JobContext, workers: int, *, on_end: Callable[[], None] | None = None
    ) -> None:
        """Serve ``job`` from now on, with up to ``workers`` workers at a time (a pool kept warm
        after an earlier job). Workers that died while idle are replaced, and more are started
        if the pool has fewer than ``workers``.

        Args:
            job: the job.
            workers: how many of its mini-batches may run at once.
            on_end: called once when the pool stops serving ``job``.

        Raises:
            RuntimeError: the pool is closed or still has mini-batches in flight.
            ValueError: ``workers`` is less than 1.
        """
        self._check_open()
        if workers < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, got {workers}")
        if self.running():
            raise RuntimeError(f"the pool still runs mini-batches {self.running()}")
        hidden = [w.name for w in self._workers if not self._isolation.sees(w.view, job.folders())]
        if hidden:
            raise RuntimeError(
                f"{', '.join(hidden)} cannot reach the folders of job {job.job_name!r}"
            )
        self._point_output(job.output_dir)
        self._give_folders(job)
        self._job = job
        self._limit = workers
        self._on_end = on_end
        for worker in self._workers:
            worker.pace = None  # another job's mini-batches
        message = self._worker_job()
        exited = set(wait([w.process.sentinel for w in self._workers], timeout=0))
        for worker in self._workers:
            if worker.process.sentinel in exited:
                self._on_exit(worker)
                continue
            try:
                worker.conn.send(message)
            except OSError:
                worker.stop()
        # As in poll(): every stopped worker is stopped before any process is started.
        for slot, worker in enumerate(self._workers):
            if worker.stopped:
                self._workers[slot] = self._start(worker.name)
        while len(self._workers) < workers:
            self._workers.append(self._start(f"worker-{len(self._workers)}"))

    def release(self) -> None:
        """The job is done with the pool: keep it warm if the executor does (and it has no
        mini-batch in flight and no failed ``init()``), else stop the workers (killing busy
        ones)."""
        if self._closed:
            return
        busy = bool(self.running())
        if not busy and not self._init_errors and self._keep is not None:
            self._end()  # before it is parked: another thread may take it at once
            if self._keep(self):
                logger.debug("%r kept warm", self)
                return
        self.close(kill=busy)

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker; calling it again does nothing.

        Args:
            kill: kill the workers now. Otherwise each is asked to exit after its current
                mini-batch and given the grace period to do so; stragglers are terminated,
                then killed. Results not yet polled are dropped either way.
        """
        if self._closed:
            return
        self._closed = True
        self._end()
        workers = [worker for worker in self._workers if not worker.stopped]
        if not kill:
            for worker in workers:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            stragglers = wait_for_exit(workers, self._grace_period)
            if stragglers:
                logger.warning(
                    "%s still running %.1f s after close(); terminating them",
                    ", ".join(worker.name for worker in stragglers),
                    self._grace_period,
                )
                for worker in stragglers:
                    signal_group(worker.process, signal.SIGTERM)
                    worker.process.terminate()
                wait_for_exit(stragglers, _TERMINATE_GRACE)
        # Kills what is left, including whatever the scripts started, and reaps every worker.
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(kill=exc_type is not None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"running={self.running()}"
        return f"<LocalWorkerPool job={self._job.job_name!r} size={self.size} {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the worker pool of job {self._job.job_name!r} is closed")

    def _end(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def _worker_job(self) -> JobContext:
        """The job as workers see it: the output folder through the pool's link."""
        return replace(self._job, output_dir=str(self.output_link))

    def _point_output(self, output_dir: str) -> None:
        """Point the pool's output link at ``output_dir`` (created if missing), atomically."""
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        temporary = self._dir / f".output-{uuid.uuid4().hex}"
        os.symlink(os.path.abspath(output_dir), temporary, target_is_directory=True)
        os.replace(temporary, self.output_link)

    def _needs(self) -> list[str]:
        """The folders a worker of this pool and its job reads or writes."""
        spec = [f for f in (self._spec.model_dir, self._spec.code_dir) if f is not None]
        return [*spec, str(self._dir), *self._job.folders()]

    def _give_folders(self, job: JobContext) -> None:
        """Let the workers' user write the job's output, parts and stdout logs."""
        stdout_dir = stdout_log_path(job.log_dir, "worker").parent
        self._isolation.give(job.output_dir, job.parts_dir, stdout_dir)

    def _start(self, name: str) -> _Worker:
        assignment = Assignment(self._spec, self._worker_job(), name)
        spare = self._take_spare() if self._take_spare is not None else None
        if spare is not None and not self._isolation.sees(spare.view, self._needs()):
            spare.stop()  # it cannot reach this job's folders
            spare = None
        if spare is not None:
            try:
                spare.conn.send(assignment)
            except OSError:
                spare.stop()  # it died meanwhile: start a process of our own
            else:
                logger.debug("%s is spare pid %s", name, spare.process.pid)
                return _Worker(
                    name,
                    spare.process,
                    spare.conn,
                    started=time.monotonic(),
                    view=spare.view,
                    scratch=spare.scratch,
                )
        started = start_process(
            self._isolation,
            assignment,
            name,
            needs=self._needs(),
            scratch_dir=self._run_dir,
            interpreter=self._spec.interpreter,
        )
        return _Worker(
            name=name,
            process=started.process,
            conn=started.conn,
            started=started.started,
            view=started.view,
            scratch=started.scratch,
        )

    def _deadlines(self) -> list[float]:
        deadlines = []
        for worker in self._workers:
            if worker.deadline is not None:
                deadlines.append(worker.deadline)
            elif not worker.ready and self._init_timeout is not None:
                deadlines.append(worker.started + self._init_timeout)
        return deadlines

    def _service(self, worker: _Worker, *, exited: bool) -> list[MiniBatchResult]:
        """Take a worker's messages, then deal with its exit or a passed deadline; a worker
        that exited or was killed is left stopped, for poll() to replace."""
        results, pipe_closed = self._receive(worker)
        if exited or pipe_closed:
            return [*results, *self._on_exit(worker)]
        now = time.monotonic()
        deadline = worker.deadline
        if deadline is not None and now >= deadline:
            results.extend(self._on_timeout(worker, now))
        elif (
            not worker.ready
            and self._init_timeout is not None
            and now >= worker.started + self._init_timeout
        ):
            init_failed = self._on_init_timeout(worker, now)
            if init_failed is not None:
                results.append(init_failed)
        return results

    def _receive(self, worker: _Worker) -> tuple[list[MiniBatchResult], bool]:
        """Every message waiting in the worker's pipe, without blocking; and whether the pipe
        is closed."""
        results = []
        try:
            while worker.conn.poll():
                result = self._on_message(worker, worker.conn.recv())
                if result is not None:
                    results.append(result)
        except (EOFError, OSError):
            return results, True
        return results, False

    def _on_message(self, worker: _Worker, message: object) -> MiniBatchResult | None:
        if isinstance(message, WorkerReady):
            worker.ready = True
            if worker.tasks and not worker.active:
                worker.clock = time.monotonic()
            if message.init_error is not None:
                self._init_errors.append(message)
                logger.warning(
                    "%s (pid %d): init() failed: %s: %s",
                    worker.name,
                    message.pid,
                    message.init_error.type,
                    message.init_error.message,
                )
            else:
                logger.info(
                    "%s (pid %d) ready after %.1f s", worker.name, message.pid, message.init_seconds
                )
            return None
        if isinstance(message, Started):
            if not 0 < message.count <= len(worker.tasks) - worker.begun:
                logger.warning("%s sent %r holding %d", worker.name, message, len(worker.tasks))
                return None
            # What it scored before is done; its answers are on their way.
            worker.begun += message.count
            worker.active = message.count
            worker.clock = time.monotonic()
            return None
        if isinstance(message, Scored):
            if message.count != worker.active:
                logger.warning("%s sent %r scoring %d", worker.name, message, worker.active)
                return None
            # Done: their results follow once their parts are on disk. The worker may be
            # sent more meanwhile, and the next task's clock runs from now.
            now = time.monotonic()
            if worker.clock is not None:
                worker.pace = (now - worker.clock) / message.count
            worker.active = 0
            worker.clock = now if worker.ready else None
            return None
        if isinstance(message, MiniBatchResult):
            # A result comes after the Scored that covers it: the first task it holds.
            task = worker.tasks[0] if worker.begun > worker.active else None
            if task is None or (message.index, message.attempt) != (task.index, task.attempt):
                logger.warning("%s sent a result it was not asked for: %r", worker.name, message)
                return None
            worker.tasks.pop(0)
            worker.begun -= 1
            return message
        logger.warning("%s sent an unexpected message: %r", worker.name, message)
        return None

    def _stop(self, worker: _Worker, *, exit_grace: float = 0.0) -> list[MiniBatchTask]:
        """Stop the worker; the tasks this costs an attempt (:meth:`_Worker.blamed`). The
        others it held are kept for its replacement."""
        blamed = worker.blamed()
        worker.orphans = [task for task in worker.tasks if task not in blamed]
        worker.tasks, worker.begun, worker.active = [], 0, 0
        worker.stop(exit_grace=exit_grace)
        return blamed

    def _on_exit(self, worker: _Worker) -> list[MiniBatchResult]:
        pid = worker.process.pid
        clock = worker.started if worker.clock is None else worker.clock
        tasks = self._stop(worker, exit_grace=_EXIT_GRACE)
        how = describe_exit(worker.exitcode)
        if not tasks:
            logger.warning("%s (pid %s) %s while idle; replacing it", worker.name, pid, how)
            return []
        indexes = ", ".join(str(task.index) for task in tasks)
        what = f"mini-batch {indexes}" if len(tasks) == 1 else f"mini-batches {indexes}"
        message = f"{worker.name} (pid {pid}) {how} while running {what}"
        logger.error("%s; replacing the worker", message)
        log = stdout_log_path(self._job.log_dir, worker.name)
        tail = log_tail(log)
        return [
            MiniBatchResult.failed(
                task,
                worker.name,
                FailureKind.WORKER_DIED,
                "WorkerDied",
                message,
                duration=time.monotonic() - clock,
                traceback=f"The last lines of {log}:\n{tail}" if tail else None,
            )
            for task in tasks
        ]

    def _on_timeout(self, worker: _Worker, now: float) -> list[MiniBatchResult]:
        clock, pid = worker.clock, worker.process.pid
        assert clock is not None
        tasks = self._stop(worker)
        timeout = sum(task.timeout for task in tasks)
        if len(tasks) == 1:
            message = f"mini-batch {tasks[0].index} timed out after {timeout:g} s"
        else:
            indexes = ", ".join(str(task.index) for task in tasks)
            message = (
                f"mini-batches {indexes}, scored together, timed out after {timeout:g} s "
                "(their timeouts added up)"
            )
        logger.error("%s; killed %s (pid %s) to replace it", message, worker.name, pid)
        return [
            MiniBatchResult.failed(
                task,
                worker.name,
                FailureKind.TIMEOUT,
                "TimeoutError",
                message,
                duration=now - clock,
            )
            for task in tasks
        ]

    def _on_init_timeout(self, worker: _Worker, now: float) -> MiniBatchResult | None:
        assert self._init_timeout is not None
        pid = worker.process.pid
        tasks = self._stop(worker)
        task = tasks[0] if tasks else None
        error = ErrorReport(
            type="TimeoutError",
            message=f"{worker.name} did not finish init() within {self._init_timeout:g} s",
            traceback="",
        )
        self._init_errors.append(WorkerReady(worker.name, pid or 0, now - worker.started, error))
        logger.error("%s; killed it (pid %s) to replace it", error.message, pid)
        if task is None:
            return None
        return MiniBatchResult.failed(
            task,
            worker.name,
            FailureKind.INIT_ERROR,
            error.type,
            error.message,
            duration=now - worker.started,
        )


def _stop_all(workers: list[_Worker], folder: Path) -> None:
    stop_all(workers)
    shutil.rmtree(folder, ignore_errors=True)


__all__ = ["DEFAULT_GRACE_PERIOD", "QUEUE_AHEAD_SECONDS", "QUEUE_DEPTH", "LocalWorkerPool"]
