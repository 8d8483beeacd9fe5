"""Worker processes of the local executor: started with ``spawn``, stopped with their group.

Every worker makes itself the leader of a process group when it starts, so stopping it kills
whatever its script started too. A process is only signalled while it is still an unreaped
child of this process, so a pid the system has given to another process is never hit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

logger = logging.getLogger("sluiceway.executors.local")

JOIN_TIMEOUT = 5.0  # for a process to go after SIGKILL; longer means it is stuck in the kernel
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8192

WorkerConnection: TypeAlias = "Connection[object, object]"


@dataclass(eq=False)
class WorkerProcess:
    """A worker process and the pool's end of its pipe."""

    name: str
    process: SpawnProcess
    conn: WorkerConnection
    started: float  # time.monotonic() when it started, or was given its job
    stopped: bool = False
    exitcode: int | None = None

    def exited(self) -> bool:
        """Whether the process has exited (it is not reaped by asking)."""
        return bool(wait([self.process.sentinel], timeout=0))

    def stop(self, *, exit_grace: float = 0.0) -> int | None:
        """Kill the process with its group, reap it and release its pipe; its exit code
        (``None`` if it could not be reaped). Does nothing the second time.

        Args:
            exit_grace: seconds to let a process that is exiting finish on its own first, so
                its exit code is its own.
        """
        if self.stopped:
            return self.exitcode
        process = self.process
        if exit_grace > 0:
            wait([process.sentinel], timeout=exit_grace)  # waits without reaping
        signal_group(process, signal.SIGKILL)
        process.kill()
        process.join(JOIN_TIMEOUT)
        self.exitcode = process.exitcode
        self.conn.close()
        self.stopped = True
        if self.exitcode is None:
            logger.error("%s (pid %s) is still alive after SIGKILL", self.name, process.pid)
        else:
            process.close()
        return self.exitcode


def start_process(
    context: SpawnContext, target: Callable[..., None], args: tuple[Any, ...], name: str
) -> tuple[SpawnProcess, WorkerConnection]:
    """Start ``target(child_end, *args)`` in a new process; the process and our end of the
    duplex pipe."""
    conn, child_conn = context.Pipe(duplex=True)
    process = context.Process(target=target, args=(child_conn, *args), name=f"sluiceway-{name}")
    try:
        process.start()
    except BaseException:
        conn.close()
        raise
    finally:
        # The child has its own copy now; closing ours lets us see EOF when it exits.
        child_conn.close()
    logger.debug("%s started (pid %s)", name, process.pid)
    return process, conn


def stop_all(workers: Iterable[WorkerProcess]) -> None:
    for worker in workers:
        worker.stop()


W = TypeVar("W", bound=WorkerProcess)


def wait_for_exit(workers: list[W], timeout: float) -> list[W]:
    """Wait until every worker has exited or ``timeout`` passed; return those still running."""
    pending = {worker.process.sentinel: worker for worker in workers if not worker.stopped}
    end = time.monotonic() + timeout
    while pending and (left := end - time.monotonic()) > 0:
        for sentinel in wait(list(pending), timeout=left):
            if isinstance(sentinel, int):
                pending.pop(sentinel, None)
    return list(pending.values())


def signal_group(process: SpawnProcess, signum: signal.Signals) -> None:
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


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering and could not be killed"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with exit code {exitcode}"


def log_tail(path: Path) -> str:
    """The last lines of a worker's stdout log; empty if there is none."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - LOG_TAIL_BYTES, 0))
            data = file.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(lines)


__all__ = [
    "WorkerConnection",
    "WorkerProcess",
    "describe_exit",
    "log_tail",
    "signal_group",
    "start_process",
    "stop_all",
    "wait_for_exit",
]
