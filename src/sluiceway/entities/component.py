"""Components and pipeline deployments, as in ``azure.ai.ml.entities``.

A :class:`CommandComponent` runs one command from a code folder; a :class:`PipelineComponent`
runs command components as steps (``jobs``). ``load_component`` reads either from YAML, and
``ml_client.components.create_or_update`` registers it, uploading local code folders first. A
:class:`PipelineComponentBatchDeployment` puts a pipeline component behind a batch endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sluiceway.entities._resource import (
    RestBacked,
    SystemData,
    drop_empty,
    str_dict,
    str_or_none,
)
from sluiceway.entities.io import Input, Output

_INPUT_FIELDS = ("type", "default", "optional", "min", "max", "enum", "description", "mode")
_OUTPUT_FIELDS = ("type", "description", "mode")


def _input(value: Input | Mapping[str, Any]) -> Input:
    if isinstance(value, Input):
        return value
    return Input(**{k: value[k] for k in _INPUT_FIELDS if k in value})


def _output(value: Output | Mapping[str, Any] | None) -> Output:
    if isinstance(value, Output):
        return value
    value = value or {}
    return Output(**{k: value[k] for k in _OUTPUT_FIELDS if k in value})


def _input_dict(value: Input) -> dict[str, Any]:
    data = {k: getattr(value, k) for k in _INPUT_FIELDS}
    data["optional"] = data["optional"] or None
    return drop_empty(data)


def _output_dict(value: Output) -> dict[str, Any]:
    return drop_empty({k: getattr(value, k) for k in _OUTPUT_FIELDS})


class Component(RestBacked):
    """What command and pipeline components share: name, version, inputs and outputs."""

    type = "component"

    def __init__(
        self,
        *,
        name: str | None = None,
        version: str | int | None = None,
        display_name: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Input | Mapping[str, Any]] | None = None,
        outputs: Mapping[str, Output | Mapping[str, Any] | None] | None = None,
        is_deterministic: bool = True,
    ) -> None:
        self.name = name
        self.version = None if version is None else str(version)
        self.display_name = display_name
        self.description = description
        self.tags = str_dict(tags)
        self.inputs = {str(k): _input(v) for k, v in (inputs or {}).items()}
        self.outputs = {str(k): _output(v) for k, v in (outputs or {}).items()}
        self.is_deterministic = is_deterministic
        self.id: str | None = None
        self.creation_context: SystemData | None = None

    def _common(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "display_name": self.display_name,
            "description": self.description,
            "tags": self.tags,
            "is_deterministic": None if self.is_deterministic else False,
            "inputs": {k: _input_dict(v) for k, v in self.inputs.items()},
            "outputs": {k: _output_dict(v) for k, v in self.outputs.items()},
        }

    def _yaml(self) -> dict[str, Any]:
        """The component in its YAML shape, with local paths as they are."""
        return drop_empty(self._common())

    def _local_dict(self) -> dict[str, Any]:
        return self._yaml()

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> Component:
        component: Component
        common: dict[str, Any] = {
            "name": str_or_none(raw.get("name")),
            "version": str_or_none(raw.get("version")),
            "display_name": str_or_none(raw.get("display_name")),
            "description": str_or_none(raw.get("description")),
            "tags": raw.get("tags"),
            "inputs": raw.get("inputs") if isinstance(raw.get("inputs"), Mapping) else None,
            "outputs": raw.get("outputs") if isinstance(raw.get("outputs"), Mapping) else None,
            "is_deterministic": raw.get("is_deterministic") is not False,
        }
        if raw.get("type") == "pipeline":
            jobs = raw.get("jobs")
            component = PipelineComponent(
                **common, jobs=dict(jobs) if isinstance(jobs, Mapping) else None
            )
        else:
            environment = raw.get("environment")
            component = CommandComponent(
                **common,
                command=str_or_none(raw.get("command")),
                code=str_or_none(raw.get("code")),
                environment=environment if isinstance(environment, str | Mapping) else None,
                environment_variables=raw.get("environment_variables"),
            )
        component.id = str_or_none(raw.get("id"))
        component.creation_context = SystemData._from_rest(raw.get("creation_context"))
        component._keep(raw)
        return component


class CommandComponent(Component):
    """``type: command``: one command, with ``${{inputs.x}}`` and ``${{outputs.y}}``.

    ``code`` is the folder the command runs in: a local folder (uploaded when the component is
    registered) or an uploaded one (``azureml://datastores/<ds>/paths/<p>``).
    """

    type = "command"

    def __init__(
        self,
        *,
        command: str | None = None,
        code: str | os.PathLike[str] | None = None,
        environment: str | Mapping[str, Any] | None = None,
        environment_variables: Mapping[str, Any] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.command = command
        self.code = None if code is None else os.fspath(code)
        self.environment: str | dict[str, Any] | None = (
            dict(environment) if isinstance(environment, Mapping) else environment
        )
        self.environment_variables = str_dict(environment_variables)

    def _yaml(self) -> dict[str, Any]:
        return drop_empty(
            {
                **self._common(),
                "command": self.command,
                "code": self.code,
                "environment": self.environment,
                "environment_variables": self.environment_variables,
            }
        )


class PipelineComponent(Component):
    """``type: pipeline``: command components run as steps.

    ``jobs`` maps each step's name to its YAML mapping; a step's ``component`` is a registered
    component's reference, a :class:`CommandComponent` (``load_component`` makes one from a
    local file), or an inline mapping.
    """

    type = "pipeline"

    def __init__(self, *, jobs: Mapping[str, Any] | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.jobs: dict[str, Any] = {str(k): v for k, v in (jobs or {}).items()}

    def _yaml(self) -> dict[str, Any]:
        jobs = {}
        for name, step in self.jobs.items():
            step = dict(step) if isinstance(step, Mapping) else step
            if isinstance(step, dict) and isinstance(step.get("component"), Component):
                step["component"] = step["component"]._yaml()
            jobs[name] = step
        return drop_empty({**self._common(), "jobs": jobs})


class PipelineComponentBatchDeployment(RestBacked):
    """A ``type: pipeline`` batch deployment: a pipeline component behind an endpoint.

    ``component`` is a registered component (``azureml:<name>:<version>``,
    ``azureml:<name>@latest``, a :class:`PipelineComponent` from ``ml_client.components``), or a
    local one (a :class:`PipelineComponent` from ``load_component``, or an inline mapping),
    which is registered with the deployment. ``settings`` are the pipeline's:
    ``continue_on_step_failure``, ``default_compute``, ``default_datastore``,
    ``max_concurrent_steps``.
    """

    type = "pipeline"

    def __init__(
        self,
        *,
        name: str | None = None,
        endpoint_name: str | None = None,
        component: str | Component | Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.endpoint_name = endpoint_name
        self.component: str | Component | dict[str, Any] | None = (
            dict(component) if isinstance(component, Mapping) else component
        )
        self.settings: dict[str, Any] = dict(settings or {})
        self.description = description
        self.tags = str_dict(tags)
        self.properties = str_dict(properties)
        self.id: str | None = None
        self.provisioning_state: str | None = None
        self.creation_context: SystemData | None = None

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> PipelineComponentBatchDeployment:
        settings = raw.get("settings")
        deployment = cls(
            name=str_or_none(raw.get("name")),
            endpoint_name=str_or_none(raw.get("endpoint_name")),
            component=str_or_none(raw.get("component")),
            settings=settings if isinstance(settings, Mapping) else None,
            description=str_or_none(raw.get("description")),
            tags=raw.get("tags"),
            properties=raw.get("properties"),
        )
        deployment.id = str_or_none(raw.get("id"))
        deployment.provisioning_state = str_or_none(raw.get("provisioning_state"))
        deployment.creation_context = SystemData._from_rest(raw.get("creation_context"))
        deployment._keep(raw)
        return deployment

    def _to_create_body(self, component: str | dict[str, Any]) -> dict[str, Any]:
        """The ``BatchDeploymentCreate`` body, once the component's code is uploaded."""
        return drop_empty(
            {
                "name": self.name,
                "endpoint_name": self.endpoint_name,
                "type": "pipeline",
                "description": self.description,
                "tags": self.tags,
                "component": component,
                "settings": self.settings,
                "properties": self.properties,
            }
        )

    def _local_dict(self) -> dict[str, Any]:
        component: Any = self.component
        if isinstance(component, Component):
            component = component._yaml()
        return drop_empty(
            {
                "name": self.name,
                "endpoint_name": self.endpoint_name,
                "type": "pipeline",
                "description": self.description,
                "tags": self.tags,
                "component": component,
                "settings": self.settings,
                "properties": self.properties,
            }
        )
