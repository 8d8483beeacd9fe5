"""A pipeline step as a Ray actor: what runs on a node of a ``ray`` compute.

The actor may run on a node that cannot see the server's disk, so it makes the step's working
folder itself (``runtime/step.py``), on the node's disk: it copies the code folder from its
datastore (checking a registered one against the registry's manifest, as the server does) and
fetches each data input there, a step's earlier outputs included (the server committed them to
their datastore). Data whose datastore folder is on the node is read in place.

The command runs without a shell under :mod:`~sluiceway.runtime.step_guard`, with a scrubbed
environment (the allowed variables of the node's, its own ``HOME``, and the step's variables),
never the Ray worker's own: what the cluster gave the actor (its token's path, say) does not
reach the command. A step in an environment built on the node runs in an actor started with
the environment's interpreter (Ray's ``py_executable``): ``python`` in the command is that
interpreter, and its ``bin`` comes first on the command's ``PATH``, as for a step on the
server's machine. The server polls the actor: each answer carries the new lines of the
command's stdout and stderr (the server appends them to ``logs/steps/<step>/``) and, once the
command has exited 0, the files of its output folders, which the server writes to the step's
folders on its disk and commits as it does for a step that ran there.

The :class:`~sluiceway.executors.base.StepLaunch` holds the datastores' credentials: it is given
by reference to an object in the object store, never as a task argument in clear text.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluiceway.executors.base import Interpreter, StepData, StepFailed, StepLaunch
from sluiceway.executors.isolation import ALLOWED_VARIABLES
from sluiceway.runtime.ray_actor import _fetch_folder
from sluiceway.runtime.step import prepare_step, stage_input
from sluiceway.storage.locations import Location
from sluiceway.storage.paths import open_regular_file
from sluiceway.storage.redaction import describe_error
from sluiceway.storage.snapshots import SnapshotMismatch

__all__ = ["StepActor", "StepProgress", "StepStarted"]

LOG_CHUNK_BYTES = 1 << 20  # the most of each log sent with one answer; the rest comes next


@dataclass(frozen=True)
class StepStarted:
    pid: int  # the guard's
    node: str
    argv: list[str]
    cwd: str
    error: str | None = None  # it could not start: why


@dataclass(frozen=True)
class StepProgress:
    stdout: bytes
    stderr: bytes
    exit_code: int | None  # set once the command exited and its logs were all sent
    outputs: dict[str, dict[str, bytes]]  # on exit 0: each output's files, by relative path


class StepActor:
    """One pipeline step on a Ray node; see the module's docstring."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="sluiceway-step-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._outputs: dict[str, Path] = {}
        self._sent = {"stdout": 0, "stderr": 0}

    def start(self, setup: list[Any], python: str | None = None) -> StepStarted:
        """Make the step's working folder and start its command.

        Args:
            python: the interpreter of the step's environment on this node (the actor's own,
                ``py_executable``); None for a step without one.
        """
        import ray

        launch: StepLaunch = ray.get(setup[0])
        node = socket.gethostname()
        interpreter = None
        try:
            if launch.interpreter is not None:  # the server's build: a path on its machine
                raise StepFailed(
                    "it was given an interpreter of the server's machine; a Ray node runs "
                    "only environments built on it"
                )
            if launch.environment is not None:
                if python is None:
                    raise StepFailed(
                        f"its environment {launch.environment} was not placed on this node"
                    )
                interpreter = Interpreter(python, environment=launch.environment)
            prepared = prepare_step(
                launch,
                self._dir / "work",
                sys.executable if interpreter is None else interpreter.executable,
                input_path=self._input,
                code_folder=self._code,
            )
        except StepFailed as exc:
            return StepStarted(os.getpid(), node, [], "", str(exc))
        except Exception as exc:
            return StepStarted(os.getpid(), node, [], "", describe_error(exc))
        self._outputs = prepared.outputs
        home = self._dir / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k in ALLOWED_VARIABLES or k[:3] == "LC_"}
        env.setdefault("PATH", os.defpath)
        env |= {"HOME": str(home), "TMPDIR": str(home)}
        env |= {**launch.environment_variables, "PYTHONUNBUFFERED": "1"}
        if interpreter is not None:
            env = interpreter.activate(env)  # its python and commands come first
        with (
            open(self._dir / "stdout", "wb") as stdout,
            open(self._dir / "stderr", "wb") as stderr,
        ):
            self._process = subprocess.Popen(
                [sys.executable, "-m", "sluiceway.runtime.step_guard", *prepared.argv],
                cwd=prepared.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        return StepStarted(self._process.pid, node, prepared.argv, str(prepared.cwd))

    def poll(self) -> StepProgress:
        """The command's new output, and its exit code and outputs once it exited."""
        assert self._process is not None
        code = self._process.poll()
        stdout, more_out = self._new_log("stdout")
        stderr, more_err = self._new_log("stderr")
        if code is None or more_out or more_err:
            return StepProgress(stdout, stderr, None, {})
        outputs = self._collect() if code == 0 else {}
        shutil.rmtree(self._dir, ignore_errors=True)
        return StepProgress(stdout, stderr, code, outputs)

    def terminate(self) -> None:
        """Ask the command to stop (SIGTERM to its group, through the guard)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    # -- internals ----------------------------------------------------------------------------

    def _input(self, name: str, data: StepData) -> Path:
        return stage_input(data.location, self._dir / "in" / name, single=data.single)

    def _code(self, location: Location) -> Path:
        try:
            return _fetch_folder(location, self._dir / "code")
        except SnapshotMismatch as exc:
            raise StepFailed(str(exc)) from None
        except Exception as exc:
            raise StepFailed(
                f"its code folder {location.uri} could not be read: {describe_error(exc)}"
            ) from None

    def _new_log(self, name: str) -> tuple[bytes, bool]:
        """The log's bytes not sent yet (at most a chunk), and whether more is left."""
        path = self._dir / name
        try:
            with path.open("rb") as file:
                file.seek(self._sent[name])
                data = file.read(LOG_CHUNK_BYTES + 1)
        except OSError:
            return b"", False
        more = len(data) > LOG_CHUNK_BYTES
        data = data[:LOG_CHUNK_BYTES]
        self._sent[name] += len(data)
        return data, more

    def _collect(self) -> dict[str, dict[str, bytes]]:
        """The regular files of each output folder (never a link out of it)."""
        found: dict[str, dict[str, bytes]] = {}
        for name, folder in self._outputs.items():
            files = found[name] = {}
            for path in sorted(folder.rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                with open_regular_file(path, within=folder) as file:
                    files[path.relative_to(folder).as_posix()] = file.read()
        return found
