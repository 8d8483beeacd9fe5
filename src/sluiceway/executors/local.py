"""The ``local`` executor: long-lived worker processes on this machine.

Each worker is a process started with the ``spawn`` method that runs
:func:`sluiceway.runtime.worker.main` over one duplex pipe: it calls the scorer's ``init()``
once, says so with a :class:`~sluiceway.runtime.worker.WorkerReady`, then scores one mini-batch
at a time. The pool enforces each mini-batch's timeout. Its clock starts when the task is sent,
or when the worker becomes ready if it was still in ``init()``, so a slow ``init()`` never costs
a mini-batch its time. A worker whose mini-batch times out is killed together with its process
group (anything the script started), and replaced; so is a worker that exits without answering.
The replacement keeps the slot's name, so its output is appended to the same stdout log.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import TracebackType
from typing import Self, TypeAlias

from sluiceway.executors.base import FailureKind, MiniBatchResult, MiniBatchTask, WorkerSpec
from sluiceway.runtime import worker as worker_process
from sluiceway.runtime.worker import ErrorReport, WorkerReady, stdout_log_path

logger = logging.getLogger("sluiceway.executors.local")

DEFAULT_GRACE_PERIOD = 5.0
"""Seconds :meth:`LocalWorkerPool.close` waits for workers to exit before terminating them."""

_TERMINATE_GRACE = 1.0  # between SIGTERM and SIGKILL for the stragglers of a graceful close
_EXIT_GRACE = 1.0  # for a worker whose pipe closed to finish exiting, so its exit code is its own
_JOIN_TIMEOUT = 5.0  # for a process to go after SIGKILL; longer means it is stuck in the kernel
_LOG_TAIL_LINES = 20
_LOG_TAIL_BYTES = 8192

_WorkerConnection: TypeAlias = "Connection[MiniBatchTask | None, object]"


class LocalExecutor:
    """Runs a job's mini-batches on worker processes of this machine.

    Args:
        grace_period: seconds a graceful :meth:`LocalWorkerPool.close` waits for workers to
            finish their mini-batch and exit before they are terminated.
        init_timeout: seconds a worker may spend starting and in ``init()``; ``None`` waits
            for ever. A worker past it is killed and replaced, and the mini-batch it holds
            fails with ``init_error``.
    """

    name: str = "local"

    def __init__(
        self, *, grace_period: float = DEFAULT_GRACE_PERIOD, init_timeout: float | None = None
    ) -> None:
        self.grace_period = grace_period
        self.init_timeout = init_timeout

    def open_pool(self, spec: WorkerSpec, workers: int) -> LocalWorkerPool:
        """Start ``workers`` worker processes for one job.

        Raises:
            ValueError: ``workers`` is less than 1.
        """
        return LocalWorkerPool(
            spec, workers, grace_period=self.grace_period, init_timeout=self.init_timeout
        )


@dataclass(eq=False)
class _Worker:
    """One worker process and the mini-batch it holds."""

    name: str
    process: SpawnProcess
    conn: _WorkerConnection
    started: float  # time.monotonic() at start
    ready: bool = False
    task: MiniBatchTask | None = None
    clock: float | None = None  # when the task's timeout clock started; None until ready
    stopped: bool = False
    exitcode: int | None = None

    @property
    def deadline(self) -> float | None:
        if self.task is None or self.clock is None:
            return None
        return self.clock + self.task.timeout


class LocalWorkerPool:
    """The worker processes of one job; see the module's docstring.

    Not thread-safe: one scheduler thread submits, polls and closes. Usable as a context
    manager, which closes the pool on exit (killing the workers if the block raised).

    Args:
        spec: what every worker of the job needs.
        workers: how many worker processes to run.
        grace_period: see :class:`LocalExecutor`.
        init_timeout: see :class:`LocalExecutor`.

    Raises:
        ValueError: ``workers`` is less than 1.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        workers: int,
        *,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        init_timeout: float | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, got {workers}")
        self._spec = spec
        self._grace_period = grace_period
        self._init_timeout = init_timeout
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._init_errors: list[WorkerReady] = []
        self._closed = False
        # Kills the workers if the pool is dropped or the interpreter exits without close().
        self._finalizer = weakref.finalize(self, _stop_all, self._workers)
        try:
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

    def idle(self) -> int:
        """How many workers can take a task now (a worker still in ``init()`` counts)."""
        if self._closed:
            return 0
        return sum(1 for worker in self._workers if worker.task is None)

    def running(self) -> list[int]:
        """Indexes of the mini-batches in flight, in worker order."""
        return [worker.task.index for worker in self._workers if worker.task is not None]

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
        candidates = [worker for worker in self._workers if worker.task is None]
        if not candidates:
            raise RuntimeError(
                f"no idle worker: all {self.size} workers are running mini-batches "
                f"{self.running()}; poll() until one finishes"
            )
        worker = min(candidates, key=lambda candidate: (not candidate.ready, candidate.started))
        worker.task = task
        worker.clock = time.monotonic() if worker.ready else None
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
            waitables: list[_WorkerConnection | int] = []
            for worker in self._workers:
                waitables += [worker.conn, worker.process.sentinel]
            ready = set(wait(waitables, timeout=max(wake - time.monotonic(), 0.0)))
            for worker in self._workers:
                results.extend(self._service(worker, exited=worker.process.sentinel in ready))
            # Only now: starting a process reaps every exited child, and a worker must be
            # stopped (its process group killed) before it is reaped; see _signal_group().
            for slot, worker in enumerate(self._workers):
                if worker.stopped:
                    self._workers[slot] = self._start(worker.name)
            if results or time.monotonic() >= end:
                return results

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
        workers = [worker for worker in self._workers if not worker.stopped]
        if not kill:
            for worker in workers:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            stragglers = _wait_for_exit(workers, self._grace_period)
            if stragglers:
                logger.warning(
                    "%s still running %.1f s after close(); terminating them",
                    ", ".join(worker.name for worker in stragglers),
                    self._grace_period,
                )
                for worker in stragglers:
                    _signal_group(worker.process, signal.SIGTERM)
                    worker.process.terminate()
                _wait_for_exit(stragglers, _TERMINATE_GRACE)
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
        return f"<LocalWorkerPool job={self._spec.job_name!r} size={self.size} {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the worker pool of job {self._spec.job_name!r} is closed")

    def _start(self, name: str) -> _Worker:
        conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_process.main,
            args=(child_conn, self._spec, name),
            name=f"sluiceway-{name}",
        )
        try:
            process.start()
        except BaseException:
            conn.close()
            raise
        finally:
            # The child has its own copy now; closing ours lets us see EOF when it exits.
            child_conn.close()
        logger.debug("%s started (pid %s)", name, process.pid)
        return _Worker(name=name, process=process, conn=conn, started=time.monotonic())

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
            died = self._on_exit(worker)
            return [*results, died] if died is not None else results
        now = time.monotonic()
        deadline = worker.deadline
        if deadline is not None and now >= deadline:
            results.append(self._on_timeout(worker, now))
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
            if worker.task is not None and worker.clock is None:
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
        if isinstance(message, MiniBatchResult):
            task = worker.task
            if task is None or (message.index, message.attempt) != (task.index, task.attempt):
                logger.warning("%s sent a result it was not asked for: %r", worker.name, message)
                return None
            worker.task = None
            worker.clock = None
            return message
        logger.warning("%s sent an unexpected message: %r", worker.name, message)
        return None

    def _on_exit(self, worker: _Worker) -> MiniBatchResult | None:
        task = worker.task
        pid = worker.process.pid
        exitcode = _stop(worker, exit_grace=_EXIT_GRACE)
        how = _describe_exit(exitcode)
        if task is None:
            logger.warning("%s (pid %s) %s while idle; replacing it", worker.name, pid, how)
            return None
        message = f"{worker.name} (pid {pid}) {how} while running mini-batch {task.index}"
        logger.error("%s; replacing the worker", message)
        log = stdout_log_path(self._spec.log_dir, worker.name)
        tail = _tail(log)
        return MiniBatchResult(
            index=task.index,
            attempt=task.attempt,
            worker=worker.name,
            ok=False,
            duration=time.monotonic() - (worker.started if worker.clock is None else worker.clock),
            failure=FailureKind.WORKER_DIED,
            error_type="WorkerDied",
            error_message=message,
            traceback=f"The last lines of {log}:\n{tail}" if tail else None,
        )

    def _on_timeout(self, worker: _Worker, now: float) -> MiniBatchResult:
        task = worker.task
        assert task is not None and worker.clock is not None
        pid = worker.process.pid
        _stop(worker)
        message = f"mini-batch {task.index} timed out after {task.timeout:g} s"
        logger.error("%s; killed %s (pid %s) to replace it", message, worker.name, pid)
        return MiniBatchResult(
            index=task.index,
            attempt=task.attempt,
            worker=worker.name,
            ok=False,
            duration=now - worker.clock,
            failure=FailureKind.TIMEOUT,
            error_type="TimeoutError",
            error_message=message,
        )

    def _on_init_timeout(self, worker: _Worker, now: float) -> MiniBatchResult | None:
        assert self._init_timeout is not None
        task = worker.task
        pid = worker.process.pid
        _stop(worker)
        error = ErrorReport(
            type="TimeoutError",
            message=f"{worker.name} did not finish init() within {self._init_timeout:g} s",
            traceback="",
        )
        self._init_errors.append(WorkerReady(worker.name, pid or 0, now - worker.started, error))
        logger.error("%s; killed it (pid %s) to replace it", error.message, pid)
        if task is None:
            return None
        return MiniBatchResult(
            index=task.index,
            attempt=task.attempt,
            worker=worker.name,
            ok=False,
            duration=now - worker.started,
            failure=FailureKind.INIT_ERROR,
            error_type=error.type,
            error_message=error.message,
        )


def _stop(worker: _Worker, *, exit_grace: float = 0.0) -> int | None:
    """Kill a worker with its process group, reap it and release its pipe; return its exit
    code (``None`` if it could not be reaped). Does nothing the second time."""
    if worker.stopped:
        return worker.exitcode
    process = worker.process
    if exit_grace > 0:
        wait([process.sentinel], timeout=exit_grace)  # waits without reaping
    _signal_group(process, signal.SIGKILL)
    process.kill()
    process.join(_JOIN_TIMEOUT)
    worker.exitcode = process.exitcode
    worker.conn.close()
    worker.stopped = True
    if worker.exitcode is None:
        logger.error("%s (pid %s) is still alive after SIGKILL", worker.name, process.pid)
    else:
        process.close()
    return worker.exitcode


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        _stop(worker)


def _wait_for_exit(workers: list[_Worker], timeout: float) -> list[_Worker]:
    """Wait until every worker has exited or ``timeout`` passed; return those still running."""
    pending = {worker.process.sentinel: worker for worker in workers if not worker.stopped}
    end = time.monotonic() + timeout
    while pending and (left := end - time.monotonic()) > 0:
        for sentinel in wait(list(pending), timeout=left):
            if isinstance(sentinel, int):
                pending.pop(sentinel, None)
    return list(pending.values())


def _signal_group(process: SpawnProcess, signum: signal.Signals) -> None:
    """Signal the worker's process group: the worker and whatever its script started.

    The worker makes itself a group leader at start. A pid is only signalled while it is still
    our unreaped child (running or a zombie), so a pid the system has reused is never hit.
    """
    pid = process.pid
    if pid is None:
        return
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return  # already reaped
    # ProcessLookupError: the worker had not made its group yet, so there is nothing else.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering and could not be killed"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with exit code {exitcode}"


def _tail(path: Path) -> str:
    """The last lines of a worker's stdout log; empty if there is none."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - _LOG_TAIL_BYTES, 0))
            data = file.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines)


__all__ = ["DEFAULT_GRACE_PERIOD", "LocalExecutor", "LocalWorkerPool"]
