"""``ml_client.environments``: register environments and follow their builds.

Before an environment is sent, what the server cannot read is read in or uploaded: a local
``conda_file`` is read into its content, a local ``requirements`` file into its lines, a
``-r other.txt`` line into the lines of that file, and a local wheel (``./wheels/x.whl``) is
uploaded and named by its ``azureml://`` URI. Relative paths start at the file that names them.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluiceway.entities.deployment import Environment
from sluiceway.errors import ValidationError
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.paths import local_path
from sluiceway.sdk.uploads import Uploader
from sluiceway.sdk.yaml_file import read_yaml

_MAX_INCLUDE_DEPTH = 10


def environment_body(
    environment: Environment | Mapping[str, Any], uploader: Uploader
) -> dict[str, Any]:
    """The environment as the server takes it: local files read in, local wheels uploaded.

    Raises:
        ValidationError: a file it names does not exist.
    """
    body = environment._to_dict() if isinstance(environment, Environment) else dict(environment)
    for key in ("id", "build", "archived", "creation_context"):
        body.pop(key, None)
    conda = body.get("conda_file")
    if isinstance(conda, str) and local_path(conda) is not None:
        path = _existing(Path(conda), "environment.conda_file")
        conda = read_yaml(path, "environment.conda_file").content
        base = path.parent
    else:
        base = Path.cwd()
    if isinstance(conda, Mapping):
        body["conda_file"] = _conda_with_uploads(dict(conda), base, uploader)
    requirements = body.get("requirements")
    if isinstance(requirements, str) and local_path(requirements) is not None:
        path = _existing(Path(requirements), "environment.requirements")
        body["requirements"] = _pip_lines(
            path.read_text(encoding="utf-8").splitlines(), path.parent, uploader, 0
        )
    elif isinstance(requirements, list):
        body["requirements"] = _pip_lines(requirements, Path.cwd(), uploader, 0)
    return body


def _conda_with_uploads(conda: dict[str, Any], base: Path, uploader: Uploader) -> dict[str, Any]:
    dependencies = []
    for entry in conda.get("dependencies") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("pip"), list):
            entry = {**entry, "pip": _pip_lines(entry["pip"], base, uploader, 0)}
        dependencies.append(entry)
    if "dependencies" in conda:
        conda["dependencies"] = dependencies
    return conda


def _pip_lines(lines: list[Any], base: Path, uploader: Uploader, depth: int) -> list[str]:
    found: list[str] = []
    for raw in lines:
        line = str(raw).split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for flag in ("-r ", "--requirement ", "--requirement="):
            if line.startswith(flag):
                if depth >= _MAX_INCLUDE_DEPTH:
                    raise ValidationError(f"{line!r}: requirements files nest too deeply")
                path = _existing(base / line[len(flag) :].strip(), "environment requirements")
                text = path.read_text(encoding="utf-8").splitlines()
                found += _pip_lines(text, path.parent, uploader, depth + 1)
                break
        else:
            local = local_path(line) if line.endswith(".whl") else None
            if local is not None:
                found.append(uploader.upload(_existing(base / local, "environment wheel")))
            else:
                found.append(line)
    return found


def _existing(path: Path, where: str) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise ValidationError(f"{where}: {str(path)!r} does not exist", target=where)
    return path


class EnvironmentOperations:
    """``ml_client.environments``."""

    def __init__(self, connection: Connection, uploader: Uploader) -> None:
        self._connection = connection
        self._uploader = uploader

    def create_or_update(self, environment: Environment, **kwargs: Any) -> Environment:
        """Register an environment version (the latest one when nothing changed). It is built
        when a deployment first uses it. ``kwargs`` are accepted for compatibility and ignored.

        Raises:
            ValidationError: it cannot be built here (the message says why), or a file it
                names does not exist.
            ConflictError: that version exists with another definition.
        """
        if not isinstance(environment, Environment):
            raise ValidationError(
                f"create_or_update takes an Environment, not {type(environment).__name__}",
                target="environment",
            )
        if not environment.name:
            raise ValidationError("an environment needs a name", target="name")
        body = environment_body(environment, self._uploader)
        answer = self._connection.request("POST", "/environments", json=body, expected=(200, 201))
        return Environment._from_rest(answer)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        """One version by ``version``, or by ``label`` (only ``latest``; the default)."""
        if version is not None and label is not None:
            raise ValidationError(
                f"get environment {name!r}: give a version or a label, not both",
                target="version",
            )
        if label not in (None, "latest"):
            raise ValidationError(
                f"get environment {name!r}: label {label!r} is not supported; use 'latest'",
                target="label",
            )
        path = (
            self._path(name, version)
            if version is not None
            else self._base(name) + "/labels/latest"
        )
        return Environment._from_rest(self._connection.request("GET", path, expected=(200,)))

    def list(
        self, name: str | None = None, *, include_archived: bool = False
    ) -> builtins.list[Environment]:
        """Every version of ``name``, newest first; without a name, the latest of each."""
        if name is None:
            params = {"archived": "true"} if include_archived else None
            answer = self._connection.request(
                "GET", "/environments", params=params, expected=(200,)
            )
        else:
            answer = self._connection.request(
                "GET", self._base(name) + "/versions", expected=(200,)
            )
        return [Environment._from_rest(item) for item in answer or []]

    def archive(self, name: str, version: str | None = None, **kwargs: Any) -> None:
        """Archive a version, or every version: ``@latest`` and lists skip it."""
        self._connection.request(
            "POST", self._base(name) + "/archive", params=_version(version), expected=(204,)
        )

    def restore(self, name: str, version: str | None = None, **kwargs: Any) -> None:
        self._connection.request(
            "POST", self._base(name) + "/restore", params=_version(version), expected=(204,)
        )

    def delete(self, name: str, version: str | None = None) -> None:
        """Delete a version (or every version) that no deployment uses.

        Raises:
            ConflictError: a deployment uses it; the message names them.
        """
        path = self._base(name) if version is None else self._path(name, version)
        self._connection.request("DELETE", path, expected=(204,))

    def get_build_log(
        self,
        name: str | None = None,
        version: str | None = None,
        *,
        content_hash: str | None = None,
    ) -> str:
        """The whole log of a version's build (empty before it is built), or of the build
        with ``content_hash`` (a deployment's ``environment_build``, inline environments too).
        """
        if content_hash is not None:
            path = f"/environment-builds/{segment(content_hash)}/log"
        elif name is not None and version is not None:
            path = self._path(name, version) + "/build-log"
        else:
            raise ValidationError("give name and version, or content_hash", target="name")
        answer = self._connection.request("GET", path, expected=(200,))
        return answer if isinstance(answer, str) else ""

    @staticmethod
    def _base(name: str) -> str:
        return f"/environments/{segment(name)}"

    def _path(self, name: str, version: str) -> str:
        return f"{self._base(name)}/versions/{segment(str(version))}"


def _version(version: str | None) -> dict[str, str] | None:
    return None if version is None else {"version": str(version)}


__all__ = ["EnvironmentOperations", "environment_body"]
