"""``ml_client.components``: register and look up command and pipeline components.

Before a component is sent, what the server cannot read is uploaded: a command component's
local ``code`` folder and the local wheels of its inline environment (whose local conda or
requirements file is read in, as ``ml_client.environments`` does), the code and environment of
each inline step of a pipeline, and local data a step binds with ``{type, path}``. Each is sent
as its ``azureml://datastores/...`` URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluiceway.entities.component import CommandComponent, Component, PipelineComponent
from sluiceway.errors import ValidationError
from sluiceway.sdk.component_loader import component_from_mapping, load_component
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.environment_operations import environment_body
from sluiceway.sdk.paths import local_path
from sluiceway.sdk.uploads import Uploader

_YAML_SUFFIXES = (".yml", ".yaml")


def _upload_folder(value: str, uploader: Uploader, where: str) -> str:
    local = local_path(value)
    if local is None:
        return value
    folder = local if local.is_absolute() else Path.cwd() / local
    if not folder.is_dir():
        raise ValidationError(
            f"{where}: {value!r} is not a local folder (resolved to {str(folder)!r})",
            target=where,
        )
    return uploader.upload(folder)


def _upload_data(value: str, uploader: Uploader, where: str) -> str:
    local = local_path(value)
    if local is None:
        return value
    path = local if local.is_absolute() else Path.cwd() / local
    if not path.exists():
        raise ValidationError(
            f"{where}: {value!r} does not exist (resolved to {str(path)!r})", target=where
        )
    return uploader.upload(path)


def component_body(
    component: str | Component | Mapping[str, Any], uploader: Uploader, where: str = "component"
) -> str | dict[str, Any]:
    """What the server gets for a component: a reference as it is, or the component's YAML
    mapping with its local folders uploaded.

    Raises:
        ValidationError: a local code folder or data path does not exist.
    """
    if isinstance(component, str):
        text = component.strip()
        if text.lower().endswith(_YAML_SUFFIXES) and local_path(text) is not None:
            return component_body(load_component(text), uploader, where)
        return text
    if isinstance(component, Mapping):
        component = component_from_mapping(component, Path.cwd(), where)
    body = component._yaml()
    if isinstance(component, CommandComponent) and component.code is not None:
        body["code"] = _upload_folder(component.code, uploader, f"{where}.code")
    if isinstance(component, CommandComponent) and isinstance(component.environment, Mapping):
        body["environment"] = environment_body(component.environment, uploader)
    if isinstance(component, PipelineComponent):
        body["jobs"] = {
            name: _step_body(step, uploader, f"{where}.jobs.{name}")
            for name, step in component.jobs.items()
        }
    return body


def _step_body(step: Any, uploader: Uploader, where: str) -> Any:
    if not isinstance(step, Mapping):
        return step
    body = dict(step)
    value = body.get("component")
    if value is not None:
        body["component"] = component_body(value, uploader, f"{where}.component")
    inputs = body.get("inputs")
    if isinstance(inputs, Mapping):
        bound = {}
        for name, binding in inputs.items():
            if isinstance(binding, Mapping) and isinstance(binding.get("path"), str):
                path = str(binding["path"])
                if "${{" not in path:
                    binding = {
                        **binding,
                        "path": _upload_data(path, uploader, f"{where}.inputs.{name}"),
                    }
            bound[name] = binding
        body["inputs"] = bound
    return body


class ComponentOperations:
    """``ml_client.components``."""

    def __init__(self, connection: Connection, uploader: Uploader) -> None:
        self._connection = connection
        self._uploader = uploader

    def create_or_update(self, component: Component, **kwargs: Any) -> Component:
        """Register a component version; local code folders are uploaded first.

        Without a version the server reuses the latest version when nothing changed, and takes
        the next number otherwise. ``kwargs`` are accepted for compatibility and ignored.

        Raises:
            ValidationError: the component or its wiring is not valid.
            ConflictError: that version exists with other content.
        """
        if not isinstance(component, Component):
            raise ValidationError(
                f"create_or_update takes a component (load_component(...)), not "
                f"{type(component).__name__}",
                target="component",
            )
        body = component_body(component, self._uploader)
        answer = self._connection.request("POST", "/components", json=body, expected=(200, 201))
        return Component._from_rest(answer)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Component:
        """One version by ``version``, or by ``label`` (only ``latest``; the default).

        Raises:
            ValidationError: both version and label, or a label other than ``latest``.
            ResourceNotFoundError: no such component or version.
        """
        base = f"/components/{segment(name)}"
        if version is not None and label is not None:
            raise ValidationError(
                f"get component {name!r}: give a version or a label, not both", target="version"
            )
        if version is not None:
            path = f"{base}/versions/{segment(str(version))}"
        else:
            if label not in (None, "latest"):
                raise ValidationError(
                    f"get component {name!r}: label {label!r} is not supported; use 'latest'",
                    target="label",
                )
            path = f"{base}/labels/latest"
        return Component._from_rest(self._connection.request("GET", path, expected=(200,)))

    def list(self, name: str | None = None) -> list[Component]:
        """Every version of ``name``, newest first; without a name, the latest of each."""
        path = "/components" if name is None else f"/components/{segment(name)}/versions"
        answer = self._connection.request("GET", path, expected=(200,))
        return [Component._from_rest(item) for item in answer or []]
