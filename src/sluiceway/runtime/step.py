"""A pipeline step's working folder, wherever the step runs: on the server's machine, or on a
node of a Ray cluster.

:func:`prepare_step` makes the folder a step's command runs in: its code folder copied to
``<work>/code`` (the command's working folder), a fresh, empty folder per output under
``<work>/outputs/``, and each data input as a local path, and renders the command's argument
list with them. How data becomes local is the caller's: the server reads a local datastore in
place and fetches remote data into its staging folder; a Ray node does the same on its own disk
(:func:`stage_input` is the one rule for both).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sluiceway.executors.base import StepData, StepFailed, StepLaunch
from sluiceway.runtime.command import CommandError, parse_command, with_interpreter
from sluiceway.scheduler.staging import StagingError, download
from sluiceway.storage.locations import Location
from sluiceway.storage.redaction import describe_error

__all__ = ["PreparedStep", "prepare_step", "stage_input", "write_command"]


@dataclass(frozen=True)
class PreparedStep:
    argv: list[str]
    cwd: Path
    outputs: dict[str, Path]  # each output's fresh folder
    reads: list[Path]  # the data inputs' local paths


def stage_input(
    location: Location, target: Path, *, single: bool, on_file: Callable[[], None] = lambda: None
) -> Path:
    """A local path a step reads an input from.

    This is the one place that decides how a step's data reaches it. Data whose datastore
    folder is on this machine is read in place. Data elsewhere is fetched into ``target``: a
    file (``single``) to ``target/<its name>``, whose path is returned, or a folder's files
    below ``target``. ``on_file`` is called before each file is fetched (the runner keeps its
    lease).

    Raises:
        StepFailed: the data could not be listed or fetched; the message names it.
    """
    local = location.local_path()
    if local is not None:
        return local
    shutil.rmtree(target, ignore_errors=True)
    if single:
        files = [(location, target / location.path.rsplit("/", 1)[-1])]
    else:
        try:
            entries = location.list_files()
        except Exception as exc:
            raise StepFailed(f"{location.uri} could not be listed: {describe_error(exc)}") from None
        target.mkdir(parents=True, exist_ok=True)
        files = [(location.child(entry.path), target / entry.path) for entry in entries]
    for source, path in files:
        on_file()  # may raise: the runner's lease was lost, or the job canceled
        try:
            download(source, path)
        except StagingError as exc:
            raise StepFailed(str(exc)) from None
    if single:
        return files[0][1]
    return target


def prepare_step(
    launch: StepLaunch,
    work: Path,
    python: str,
    *,
    input_path: Callable[[str, StepData], Path],
    code_folder: Callable[[Location], Path],
) -> PreparedStep:
    """Make the step's working folder ``work`` and render its argument list.

    Args:
        python: the interpreter ``python`` in the command stands for.
        input_path: a data input's local path, from its name and data.
        code_folder: a local copy of the code folder, checked if registered.

    Raises:
        StepFailed: its data or code could not be read, or its command cannot be run.
    """
    values: dict[str, str | None] = dict(launch.literals)
    reads = []
    for name, data in launch.data.items():
        path = input_path(name, data)
        values[name] = str(path)
        reads.append(path)
    outputs = {}
    for name in launch.outputs:
        folder = work / "outputs" / name
        folder.mkdir(parents=True)
        outputs[name] = folder
    cwd = work / "code"
    if launch.code is not None:
        shutil.copytree(code_folder(launch.code), cwd, symlinks=True)
    else:
        cwd.mkdir(parents=True)
    try:
        template = parse_command(launch.command)
        argv = template.render(values, {k: str(v) for k, v in outputs.items()})
    except CommandError as exc:
        raise StepFailed(f"its command cannot be run: {exc}") from None
    return PreparedStep(with_interpreter(argv, python), cwd, outputs, reads)


def write_command(log_dir: Path, argv: list[str], cwd: str) -> None:
    """``command.txt``: the argument list the step ran, with its working folder."""
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "command.txt").write_text(
        json.dumps({"argv": argv, "cwd": cwd}, indent=2) + "\n", encoding="utf-8"
    )
