"""``load_component``: read Azure ML component YAML into a component entity.

Local paths in the file are relative to it and are made absolute here, so the entity works from
any folder: a command component's ``code`` and its inline environment's files and wheels, and
each pipeline step's ``component`` when it names
a local YAML file (which is loaded too) or is written inline. A step that names a registered
component (``azureml:<name>:<version>``, ``azureml:<name>@latest``) keeps the reference; the
server resolves it. The server checks everything else, naming the key that is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sluiceway.entities.component import CommandComponent, Component, PipelineComponent
from sluiceway.errors import ValidationError
from sluiceway.sdk.paths import local_path
from sluiceway.sdk.yaml_file import Source, read_yaml

_COMMON = ("name", "version", "display_name", "description", "tags", "inputs", "outputs")
_COMMAND_KEYS = ("command", "code", "environment", "environment_variables", "is_deterministic")
_PIPELINE_KEYS = ("jobs", "is_deterministic")
_YAML_SUFFIXES = (".yml", ".yaml")


def _read(source: Source) -> tuple[dict[str, Any], Path, str]:
    loaded = read_yaml(source, "component file")
    content, base, label = loaded.content, loaded.base, loaded.label
    if not isinstance(content, dict):
        raise ValidationError(f"{label}: a component file holds a mapping of keys")
    return {str(k): v for k, v in content.items()}, base, label


def _override(data: dict[str, Any], params_override: Sequence[Mapping[str, Any]] | None) -> None:
    for entry in params_override or []:
        for dotted, value in entry.items():
            parts = str(dotted).split(".")
            target = data
            for part in parts[:-1]:
                inner = target.get(part)
                if not isinstance(inner, dict):
                    inner = {}
                    target[part] = inner
                target = inner
            target[parts[-1]] = value


def load_component(
    source: Source,
    *,
    relative_origin: str | None = None,
    params_override: Sequence[Mapping[str, Any]] | None = None,
) -> Component:
    """Read a command or pipeline component YAML (``component.yml``, ``pipeline.yml``).

    Raises:
        ValidationError: the file is missing, not YAML, not a mapping, or names a local step
            component file that does not exist.
    """
    data, base, label = _read(source)
    if relative_origin is not None:
        base = Path(relative_origin).expanduser().resolve()
        if base.is_file():
            base = base.parent
    _override(data, params_override)
    return component_from_mapping(data, base, label)


def _absolute(value: Any, base: Path) -> Any:
    if not isinstance(value, str):
        return value
    path = local_path(value)
    if path is None or path.is_absolute():
        return value
    return os.path.normpath(base / path)


def _environment(value: Any, base: Path) -> Any:
    """An inline environment with its local files (conda file, requirements file, ``-r``
    files, wheels) made absolute; the SDK reads them in and uploads the wheels when it sends
    the component."""
    if not isinstance(value, Mapping):
        return value
    environment = dict(value)
    for key in ("conda_file", "requirements"):
        if isinstance(environment.get(key), str):
            environment[key] = _absolute(environment[key], base)
    conda = environment.get("conda_file")
    if isinstance(conda, Mapping) and isinstance(conda.get("dependencies"), list):
        dependencies = [
            {**entry, "pip": [_absolute_line(line, base) for line in entry["pip"]]}
            if isinstance(entry, Mapping) and isinstance(entry.get("pip"), list)
            else entry
            for entry in conda["dependencies"]
        ]
        environment["conda_file"] = {**conda, "dependencies": dependencies}
    if isinstance(environment.get("requirements"), list):
        environment["requirements"] = [
            _absolute_line(line, base) for line in environment["requirements"]
        ]
    return environment


def _absolute_line(line: Any, base: Path) -> Any:
    """A pip line naming a local wheel or requirements file, made absolute."""
    text = str(line).strip()
    for flag in ("-r ", "--requirement ", "--requirement="):
        if text.startswith(flag):
            return flag + str(_absolute(text[len(flag) :].strip(), base))
    return _absolute(text, base) if text.endswith(".whl") else line


def component_from_mapping(data: Mapping[str, Any], base: Path, label: str) -> Component:
    """A component entity from its YAML mapping, local paths taken relative to ``base``."""
    common = {k: data[k] for k in _COMMON if k in data}
    kind = data.get("type", "command")
    if kind == "pipeline":
        jobs = data.get("jobs")
        if jobs is not None and not isinstance(jobs, Mapping):
            raise ValidationError(f"{label}: 'jobs' must be a mapping of steps", target="jobs")
        steps = {
            str(name): _step(step, base, f"{label}: jobs.{name}")
            for name, step in (jobs or {}).items()
        }
        component: Component = PipelineComponent(**common, jobs=steps)
    elif kind == "command":
        component = CommandComponent(
            **common,
            command=data.get("command"),
            code=_absolute(data.get("code"), base),
            environment=_environment(data.get("environment"), base),
            environment_variables=data.get("environment_variables"),
        )
    else:
        raise ValidationError(
            f"{label}: type {kind!r} is not accepted; use command or pipeline", target="type"
        )
    own = _PIPELINE_KEYS if kind == "pipeline" else _COMMAND_KEYS
    unknown = [k for k in data if k not in (*_COMMON, *own, "type", "$schema")]
    if unknown:
        raise ValidationError(
            f"{label}: unknown key {unknown[0]!r}; a {kind} component takes "
            f"{', '.join((*_COMMON, *own, 'type'))}",
            target=unknown[0],
        )
    if "is_deterministic" in data:
        component.is_deterministic = data["is_deterministic"] is not False
    return component


def _step(step: Any, base: Path, where: str) -> Any:
    """A step's mapping with a local component file loaded and an inline one read."""
    if not isinstance(step, Mapping):
        return step
    step = dict(step)
    value = step.get("component")
    if isinstance(value, str) and value.strip().lower().endswith(_YAML_SUFFIXES):
        path = local_path(value)
        if path is not None:
            full = path if path.is_absolute() else base / path
            if not full.is_file():
                raise ValidationError(
                    f"{where}.component: component file {value!r} does not exist (looked for "
                    f"{str(full)!r})",
                    target="component",
                )
            step["component"] = load_component(full)
    elif isinstance(value, Mapping):
        step["component"] = component_from_mapping(value, base, where)
    inputs = step.get("inputs")
    if isinstance(inputs, Mapping):
        step["inputs"] = {
            k: _fixed_path(v, base) if isinstance(v, Mapping) else v for k, v in inputs.items()
        }
    return step


def _fixed_path(binding: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """A step input bound to data by ``{type, path}``: a local path is relative to the file."""
    data = dict(binding)
    path = data.get("path")
    if isinstance(path, str) and "${{" not in path:
        data["path"] = _absolute(path, base)
    return data
