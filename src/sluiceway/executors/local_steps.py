"""Pipeline steps on this machine: the ``local`` executor's :meth:`start_step`.

A step runs in its working folder on the server's disk (``runtime/step.py``), its data made
local by the server (read in place, or fetched into its staging folder). Its command starts
without a shell, as the worker user, in the sandbox and with the environment workers get
(:class:`~sluiceway.executors.isolation.WorkerIsolation`), in a process group of its own that
stopping it kills as a whole; its stdout and stderr go to the step's log folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from sluiceway.executors.base import StepFailed, StepFiles, StepLaunch
from sluiceway.executors.isolation import WorkerIsolation
from sluiceway.runtime.step import prepare_step, write_command

__all__ = ["LocalStepRun", "start_local_step"]


class LocalStepRun:
    """A step's process group on this machine."""

    def __init__(self, process: subprocess.Popen[bytes], logs: list[int]) -> None:
        self._process = process
        self._logs = logs

    @property
    def where(self) -> str:
        return f"process {self._process.pid}"

    def poll(self) -> int | None:
        code = self._process.poll()
        if code is not None:
            self._close_logs()
        return code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self, deadline: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(max(deadline - time.monotonic(), 0.0))
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5.0)
        self._close_logs()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)

    def _close_logs(self) -> None:
        logs, self._logs = self._logs, []
        for fd in logs:
            with contextlib.suppress(OSError):
                os.close(fd)


def start_local_step(
    isolation: WorkerIsolation, launch: StepLaunch, files: StepFiles
) -> LocalStepRun:
    """Start ``launch`` as a process group of this machine; see the module's docstring."""
    work = Path(launch.work_dir)
    isolation.open_to_workers(work.parent)
    work.mkdir(parents=True, exist_ok=True)
    python = isolation.python if launch.interpreter is None else launch.interpreter.executable
    prepared = prepare_step(
        launch,
        work,
        python,
        input_path=lambda name, data: files.input(launch.name, name, data),
        code_folder=files.code,
    )
    log_dir = Path(launch.log_dir)
    write_command(log_dir, prepared.argv, str(prepared.cwd))
    home = work / "home"
    isolation.give(work, recursive=True)  # its code, outputs and HOME
    isolation.give(home)
    variables = {**launch.environment_variables, "PYTHONUNBUFFERED": "1"}
    env = isolation.environment(home, variables)
    needs: list[str | Path] = [work, *prepared.reads]
    if launch.interpreter is not None:
        env = launch.interpreter.activate(env)  # its python and commands come first
        needs += launch.interpreter.paths
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    stdout = os.open(log_dir / "stdout.txt", flags, 0o644)
    stderr = os.open(log_dir / "stderr.txt", flags, 0o644)
    try:
        process = subprocess.Popen(
            isolation.command(prepared.argv, isolation.view(needs)),
            cwd=prepared.cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
            start_new_session=True,  # its own process group, killed as a whole
        )
    except OSError as exc:
        os.close(stdout)
        os.close(stderr)
        raise StepFailed(f"its program {prepared.argv[0]!r} could not be started: {exc}") from None
    return LocalStepRun(process, [stdout, stderr])
