"""Finding uv, the tool environments are built with, and the Pythons it can build on."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sluiceway.errors import MissingExtraError

_JSON = ("--output-format", "json")
UV_TIMEOUT = 60.0  # for the quick questions (versions, interpreters), not for builds


def find_uv(configured: str | None = None) -> list[str]:
    """The command that runs uv: ``configured`` (the ``uv`` setting), ``uv`` on ``PATH``, the
    ``uv`` next to the server's interpreter (a venv's ``bin``), or ``python -m uv`` when the
    ``uv`` package is installed (it is a dependency of the ``server`` extra).

    Raises:
        MissingExtraError: none of them is there.
    """
    if configured:
        return [configured]
    found = shutil.which("uv")
    if found:
        return [found]
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    if importlib.util.find_spec("uv") is not None:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]

        return [str(find_uv_bin())]
    raise MissingExtraError("server", "uv")


@dataclass(frozen=True)
class Python:
    """An interpreter uv can build a virtual environment on."""

    version: str  # 3.11.7
    path: str


def installed_pythons(uv: list[str]) -> list[Python]:
    """The CPython interpreters of this machine, as uv finds them (nothing is downloaded)."""
    try:
        done = subprocess.run(
            [*uv, "python", "list", "--only-installed", "--no-python-downloads", *_JSON],
            capture_output=True,
            timeout=UV_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        entries = json.loads(done.stdout or b"[]")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return []
    found: dict[str, Python] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("implementation") != "cpython":
            continue
        version, path = str(entry.get("version", "")), str(entry.get("path", ""))
        if version and path:
            found.setdefault(version, Python(version, path))
    return sorted(found.values(), key=lambda p: [int(x) for x in p.version.split(".")[:3]])


__all__ = ["Python", "find_uv", "installed_pythons"]
