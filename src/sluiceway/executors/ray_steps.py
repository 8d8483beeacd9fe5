"""Pipeline steps on a Ray cluster: the ``ray`` executor's :meth:`start_step`.

Each step is one Ray actor (:class:`~sluiceway.runtime.ray_step.StepActor`), asking for a
fraction of a CPU and placed by Ray's ``SPREAD`` strategy on a node of the compute. Starting
the step waits for the actor to have fetched the step's code and data on its node and started
the command (keeping the job's lease meanwhile); a step that cannot start fails with the
actor's reason. A step in an environment built on the nodes
(:mod:`~sluiceway.executors.ray_environments`) is placed as a pool's actor is: on a node that
has it, running its interpreter (``py_executable``), which ``python`` in the command then is,
with its ``bin`` first on the command's ``PATH``. Then the server polls the actor about twice a
second: the command's new output is appended to ``logs/steps/<step>/stdout.txt`` and
``stderr.txt`` on the server, and once the command exited 0, the files of its outputs are
written to the step's output folders on the
server, from where the runner commits them as for a step that ran on this machine.

Stopping a step asks the command to stop (SIGTERM to its group), waits for the grace period,
then kills the actor (``ray.kill``); the command's guard on the node then kills its group, so
nothing of the step keeps running. An actor that dies (its node lost, say) ends its step as
killed by SIGKILL, with the reason at the end of its stderr. Actors are owned by the server
process: Ray stops them when the server dies, and the job's next scheduler runs the step again.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sluiceway.executors.base import StepFailed, StepFiles, StepLaunch
from sluiceway.runtime.ray_step import StepProgress, StepStarted
from sluiceway.runtime.step import write_command
from sluiceway.storage.paths import check_relative_path

logger = logging.getLogger("sluiceway.executors.ray")

__all__ = ["RayStepRun", "start_ray_step"]

POLL_SECONDS = 0.5
KEEP_SECONDS = 1.0  # how often the lease is kept while the actor prepares the step
START_ATTEMPTS = 3


def _portable_launch(launch: StepLaunch) -> StepLaunch:
    from sluiceway.executors.ray import portable

    return dataclasses.replace(
        launch,
        data={
            name: dataclasses.replace(data, location=portable(data.location))
            for name, data in launch.data.items()
        },
        code=portable(launch.code) if launch.code is not None else None,
    )


class RayStepRun:
    """A step's actor on the cluster; see the module's docstring."""

    def __init__(
        self, ray: Any, actor: Any, started: StepStarted, launch: StepLaunch, compute: str
    ) -> None:
        self._ray = ray
        self._actor = actor
        self._launch = launch
        self._log_dir = Path(launch.log_dir)
        self._call: Any = None
        self._next = 0.0
        self._code: int | None = None
        self._where = (
            f"Ray actor {actor._actor_id.hex()} of compute {compute!r}, "
            f"pid {started.pid} on {started.node}"
        )

    @property
    def where(self) -> str:
        return self._where

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        if self._call is None:
            if time.monotonic() < self._next:
                return None
            self._call = self._actor.poll.remote()
        done, _ = self._ray.wait([self._call], num_returns=1, timeout=0)
        if not done:
            return None
        call, self._call = self._call, None
        self._next = time.monotonic() + POLL_SECONDS
        try:
            progress: StepProgress = self._ray.get(call)
        except Exception as exc:
            self._died(exc)
            return self._code
        self._append("stdout.txt", progress.stdout)
        self._append("stderr.txt", progress.stderr)
        if progress.exit_code is None:
            return None
        if progress.exit_code == 0:
            self._write_outputs(progress.outputs)
        self._code = progress.exit_code
        self._kill_actor()
        return self._code

    def terminate(self) -> None:
        if self._code is None:
            try:
                self._actor.terminate.remote()
            except Exception:
                logger.debug("asking a step's actor to stop failed", exc_info=True)

    def kill(self, deadline: float) -> None:
        while self._code is None and time.monotonic() < deadline:
            if self.poll() is None:
                time.sleep(0.1)
        self._kill_actor()

    def _kill_actor(self) -> None:
        _kill(self._ray, self._actor)

    def _died(self, exc: BaseException) -> None:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"The Ray actor running the step ({self._where}) died: {reason}\n"
        logger.error("job %s, step %s: %s", self._launch.job_name, self._launch.name, message)
        self._append("stderr.txt", message.encode())
        self._code = -int(signal.SIGKILL)
        self._kill_actor()

    def _append(self, name: str, data: bytes) -> None:
        if data:
            with (self._log_dir / name).open("ab") as file:
                file.write(data)

    def _write_outputs(self, outputs: dict[str, dict[str, bytes]]) -> None:
        folders = self._launch.output_folders()
        for name, folder in folders.items():
            folder.mkdir(parents=True, exist_ok=True)
            for relative, content in outputs.get(name, {}).items():
                check_relative_path(relative)
                target = folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)


def start_ray_step(
    ray: Any,
    actor_class: Any,
    launch: StepLaunch,
    files: StepFiles,
    *,
    compute: str,
    options: dict[str, Any],
    place: Callable[[], dict[str, Any]] | None = None,
) -> RayStepRun:
    """Start ``launch`` on an actor of the cluster; see the module's docstring. An actor that
    dies before the command started (its node lost, say) is replaced, up to
    ``START_ATTEMPTS`` times in all.

    Args:
        place: gives the options of each actor started, over ``options`` (the node of a
            built environment and its interpreter, ``runtime_env["py_executable"]``).

    Raises:
        StepFailed: the actor could not fetch the step's code or data, or start its command.
    """
    log_dir = Path(launch.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    for name in ("stdout.txt", "stderr.txt"):
        (log_dir / name).write_bytes(b"")
    # Credentials travel in the object store, by reference; see ray_step's docstring.
    setup = ray.put(_portable_launch(launch))
    for attempt in range(1, START_ATTEMPTS + 1):
        placed = options if place is None else {**options, **place()}
        python = placed.get("runtime_env", {}).get("py_executable")
        actor = actor_class.options(**placed).remote()
        try:
            started = _start(ray, actor, setup, files, python)
        except ray.exceptions.RayActorError as exc:
            _kill(ray, actor)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if attempt == START_ATTEMPTS:
                raise StepFailed(
                    f"its Ray actor on compute {compute!r} died {attempt} times before the "
                    f"command started; the last time: {reason}"
                ) from None
            logger.warning(
                "job %s, step %s: its actor died before the command started (%s); starting another",
                launch.job_name,
                launch.name,
                reason,
            )
            continue
        except ray.exceptions.RayError as exc:  # the actor's start raised
            _kill(ray, actor)
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StepFailed(f"its Ray actor on compute {compute!r} failed: {reason}") from None
        except BaseException:
            _kill(ray, actor)
            raise
        if started.error is not None:
            _kill(ray, actor)
            raise StepFailed(f"on node {started.node}: {started.error}")
        write_command(log_dir, started.argv, started.cwd)
        return RayStepRun(ray, actor, started, launch, compute)
    raise AssertionError("unreachable")


def _start(ray: Any, actor: Any, setup: Any, files: StepFiles, python: str | None) -> StepStarted:
    call = actor.start.remote([setup], python)
    while not ray.wait([call], num_returns=1, timeout=KEEP_SECONDS)[0]:
        files.keep()
    started: StepStarted = ray.get(call)
    return started


def _kill(ray: Any, actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:
        logger.debug("ray.kill of a step's actor failed", exc_info=True)
