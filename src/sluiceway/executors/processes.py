"""Worker processes of the local executor: fresh interpreters, stopped with their group.

A worker is ``python -m sluiceway.runtime.launch`` started with the environment, user and view
its :class:`~sluiceway.executors.isolation.WorkerIsolation` gives it (never the server's own
environment), talking to the pool over a socket pair; its first message says what it is (a
pool's worker, or a spare). Every worker makes itself the leader of a process group when it
starts, so stopping it kills whatever its script started too. A process is only signalled
while it is still an unreaped child of this process, so a pid the system has given to another
process is never hit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TypeAlias, TypeVar

from sluiceway.executors.base import Interpreter
from sluiceway.executors.isolation import WorkerIsolation
from sluiceway.storage.paths import open_regular_file

logger = logging.getLogger("sluiceway.executors.local")

JOIN_TIMEOUT = 5.0  # for a process to go after SIGKILL; longer means it is stuck in the kernel
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8192

WorkerConnection: TypeAlias = "Connection[object, object]"


class ChildProcess:
    """A started worker process: its pid, and a sentinel that becomes readable when it exits.

    The sentinel is the read end of a pipe whose write end only the worker holds (not passed
    on to what it runs), as :mod:`multiprocessing` does.
    """

    def __init__(self, popen: subprocess.Popen[bytes], sentinel: int) -> None:
        self._popen = popen
        self.pid: int | None = popen.pid
        self.sentinel = sentinel
        self._closed = False

    @property
    def exitcode(self) -> int | None:
        """The exit status once reaped (negative: the signal that killed it), else None."""
        return self._popen.poll()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.terminate()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.sentinel)


@dataclass(eq=False)
class WorkerProcess:
    """A worker process and the pool's end of its pipe."""

    name: str
    process: ChildProcess
    conn: WorkerConnection
    started: float  # time.monotonic() when it started, or was given its job
    stopped: bool = False
    exitcode: int | None = None
    view: tuple[str, ...] | None = None  # the folders it can reach; None: all of the server's
    scratch: Path | None = None  # its HOME, removed when it stops

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
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)
        return self.exitcode


def start_process(
    isolation: WorkerIsolation,
    first: object,
    name: str,
    *,
    needs: Iterable[str | Path] = (),
    scratch_dir: Path | None = None,
    interpreter: Interpreter | None = None,
) -> WorkerProcess:
    """Start a worker and send it ``first`` (what it is to do).

    Args:
        isolation: the user, environment and view workers get.
        first: the worker's first message (an assignment, or what a spare preloads).
        name: the worker's name.
        needs: folders it must reach, besides those every worker does.
        scratch_dir: where its scratch folder (its ``HOME``) is made; default: the system's
            temporary folder.
        interpreter: the Python it runs (a built environment's); default: the isolation's,
            the server's own.
    """
    scratch = isolation.scratch(scratch_dir, prefix=f"worker-{os.getpid()}-")
    python = isolation.python if interpreter is None else interpreter.executable
    view = isolation.view([*needs, scratch, *(interpreter.paths if interpreter else ())])
    plan = isolation.plan(view)
    env = isolation.environment(scratch)
    if interpreter is not None:
        env = interpreter.activate(env)
    ours, theirs = socket.socketpair()
    sentinel, sentinel_w = os.pipe()
    argv = [python, "-P", "-m", "sluiceway.runtime.launch"]
    argv += [str(theirs.fileno()), str(sentinel_w)]
    if plan is not None:
        argv.append(plan.to_json())
    try:
        popen = subprocess.Popen(
            argv,
            pass_fds=(theirs.fileno(), sentinel_w),
            env=env,
            cwd=scratch,
            stdin=subprocess.DEVNULL,
        )
    except BaseException:
        ours.close()
        os.close(sentinel)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        # The child has its own copies now; closing ours lets us see it exit.
        theirs.close()
        os.close(sentinel_w)
    conn: WorkerConnection = Connection(ours.detach())
    worker = WorkerProcess(
        name,
        ChildProcess(popen, sentinel),
        conn,
        time.monotonic(),
        view=view,
        scratch=scratch,
    )
    try:
        conn.send(first)
    except OSError as exc:
        # It died already; the pool sees it exit and replaces it.
        logger.warning("%s (pid %s): sending its work failed: %s", name, popen.pid, exc)
    logger.debug("%s started (pid %s)", name, popen.pid)
    return worker


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


def signal_group(process: ChildProcess, signum: signal.Signals) -> None:
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
        # The worker owns the folder: what is there may be a link to a server's file.
        with open_regular_file(path, within=path.parent) as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - LOG_TAIL_BYTES, 0))
            data = file.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(lines)


__all__ = [
    "ChildProcess",
    "WorkerConnection",
    "WorkerProcess",
    "describe_exit",
    "log_tail",
    "signal_group",
    "start_process",
    "stop_all",
    "wait_for_exit",
]
