"""A pipeline step's actor on a Ray node, in the step's environment: ``python`` in the command
is the environment's interpreter (the actor's ``py_executable``), with its ``bin`` first on
the command's ``PATH``; a step in an environment that was not placed is refused. The actor
runs here as a plain object (its setup comes by value instead of from the object store)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluiceway.executors.base import StepLaunch
from sluiceway.runtime.ray_step import StepActor, StepProgress

PROBE = "python -c 'import shutil, sys; print(sys.prefix); print(shutil.which(\"python\"))'"


def launch(tmp_path: Path, environment: str | None) -> StepLaunch:
    return StepLaunch(
        job_name="job",
        name="probe",
        command=PROBE,
        literals={},
        data={},
        outputs=(),
        code=None,
        environment_variables={"PATH": "/usr/bin:/bin"},
        interpreter=None,
        work_dir=str(tmp_path / "work"),
        log_dir=str(tmp_path / "logs"),
        environment=environment,
    )


@pytest.fixture
def by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "get", lambda value: value)


def finish(actor: StepActor) -> StepProgress:
    stdout = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        progress = actor.poll()
        stdout += progress.stdout
        if progress.exit_code is not None:
            return StepProgress(stdout, progress.stderr, progress.exit_code, progress.outputs)
        time.sleep(0.05)
    actor.terminate()
    raise AssertionError("the step did not end")


@pytest.mark.usefixtures("by_value")
def test_the_command_runs_the_environments_interpreter(tmp_path: Path) -> None:
    venv = tmp_path / "env" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")

    actor = StepActor()
    started = actor.start([launch(tmp_path, "h" * 32)], python)
    assert started.error is None, started.error
    assert started.argv[0] == python
    done = finish(actor)
    assert done.exit_code == 0
    prefix, on_path = done.stdout.decode().split()
    assert Path(prefix) == venv and on_path == python

    actor = StepActor()  # without an environment: the actor's own Python
    started = actor.start([launch(tmp_path, None)])
    assert started.error is None and started.argv[0] == sys.executable
    done = finish(actor)
    assert done.stdout.decode().split()[0] == sys.prefix


@pytest.mark.usefixtures("by_value")
def test_a_step_in_an_environment_not_placed_is_refused(tmp_path: Path) -> None:
    started = StepActor().start([launch(tmp_path, "h" * 32)])
    assert started.error is not None and "not placed on this node" in started.error
