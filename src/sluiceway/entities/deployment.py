"""Batch deployments and the pieces they are made of, as in ``azure.ai.ml.entities``.

One :class:`ModelBatchDeploymentSettings` holds a deployment's settings. Azure's older
``BatchDeployment`` takes them as flat keywords (``mini_batch_size=10``) and its newer
``ModelBatchDeployment`` as ``settings=``; both spellings read and write that one object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from sluiceway.entities._resource import (
    RestBacked,
    SystemData,
    drop_empty,
    str_dict,
    str_or_none,
)
from sluiceway.entities.assets import Model
from sluiceway.errors import ValidationError


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class BatchRetrySettings:
    """How often a failed or timed-out mini-batch is retried, and its timeout in seconds."""

    def __init__(self, *, max_retries: int | None = None, timeout: int | None = None) -> None:
        self.max_retries = max_retries
        self.timeout = timeout

    @classmethod
    def _of(cls, value: BatchRetrySettings | Mapping[str, Any] | None) -> BatchRetrySettings | None:
        if value is None or isinstance(value, BatchRetrySettings):
            return value
        return cls(
            max_retries=_int_or_none(value.get("max_retries")),
            timeout=_int_or_none(value.get("timeout")),
        )

    def _to_dict(self) -> dict[str, Any]:
        return drop_empty({"max_retries": self.max_retries, "timeout": self.timeout})

    def __repr__(self) -> str:
        return f"BatchRetrySettings(max_retries={self.max_retries!r}, timeout={self.timeout!r})"


class CodeConfiguration:
    """The scoring script and the folder it lives in (local: uploaded on deployment)."""

    def __init__(
        self,
        code: str | os.PathLike[str] | None = None,
        scoring_script: str | os.PathLike[str] | None = None,
    ) -> None:
        self.code = None if code is None else os.fspath(code)
        self.scoring_script = None if scoring_script is None else os.fspath(scoring_script)

    @classmethod
    def _of(cls, value: CodeConfiguration | Mapping[str, Any] | None) -> CodeConfiguration | None:
        if value is None or isinstance(value, CodeConfiguration):
            return value
        return cls(code=value.get("code"), scoring_script=value.get("scoring_script"))

    def _to_dict(self) -> dict[str, Any]:
        return drop_empty({"code": self.code, "scoring_script": self.scoring_script})

    def __repr__(self) -> str:
        return f"CodeConfiguration(code={self.code!r}, scoring_script={self.scoring_script!r})"


class ResourceConfiguration:
    """Compute resources of a deployment; Sluiceway uses ``instance_count``."""

    def __init__(
        self,
        *,
        instance_count: int | None = None,
        instance_type: str | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.properties = dict(properties) if properties else None

    @classmethod
    def _of(
        cls, value: ResourceConfiguration | Mapping[str, Any] | None
    ) -> ResourceConfiguration | None:
        if value is None or isinstance(value, ResourceConfiguration):
            return value
        return cls(
            instance_count=_int_or_none(value.get("instance_count")),
            instance_type=str_or_none(value.get("instance_type")),
            properties=value.get("properties"),
        )

    def _to_dict(self) -> dict[str, Any]:
        return drop_empty(
            {
                "instance_count": self.instance_count,
                "instance_type": self.instance_type,
                "properties": self.properties,
            }
        )

    def __repr__(self) -> str:
        return f"ResourceConfiguration(instance_count={self.instance_count!r})"


class Environment:
    """A runtime environment: the packages a deployment's code runs with.

    Give ``conda_file`` (a local conda YAML, or its content) or ``requirements`` (a local
    ``requirements.txt``, or its lines). The SDK reads local files in, reads ``-r`` files and
    uploads local wheels the pip list names (paths relative to the file that names them).
    ``image`` is recorded, not run. What the server answers carries ``build``: the state of
    its build (``status``, ``content_hash``, ``log_tail``).
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        image: str | None = None,
        conda_file: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        requirements: str | os.PathLike[str] | Sequence[str] | None = None,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.version = None if version is None else str(version)
        self.description = description
        self.image = image
        self.conda_file: str | dict[str, Any] | None
        if conda_file is None or isinstance(conda_file, Mapping):
            self.conda_file = None if conda_file is None else dict(conda_file)
        else:
            self.conda_file = os.fspath(conda_file)
        self.requirements: str | list[str] | None
        if requirements is None or isinstance(requirements, str | os.PathLike):
            self.requirements = None if requirements is None else os.fspath(requirements)
        else:
            self.requirements = [str(line) for line in requirements]
        self.tags = str_dict(tags)
        self.properties = str_dict(properties)
        self.id: str | None = None
        self.archived = False
        self.build: dict[str, Any] | None = None
        self.creation_context: dict[str, Any] | None = None

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> Environment:
        environment = cls(
            name=raw.get("name"),
            version=raw.get("version"),
            description=raw.get("description"),
            image=raw.get("image"),
            conda_file=raw.get("conda_file"),
            requirements=raw.get("requirements"),
            tags=raw.get("tags"),
            properties=raw.get("properties"),
        )
        environment.id = raw.get("id")
        environment.archived = bool(raw.get("archived"))
        build = raw.get("build")
        environment.build = dict(build) if isinstance(build, Mapping) else None
        context = raw.get("creation_context")
        environment.creation_context = dict(context) if isinstance(context, Mapping) else None
        return environment

    def _to_dict(self) -> dict[str, Any]:
        return drop_empty(
            {
                "id": self.id,
                "name": self.name,
                "version": self.version,
                "description": self.description,
                "image": self.image,
                "conda_file": self.conda_file,
                "requirements": self.requirements,
                "tags": self.tags,
                "properties": self.properties,
                "archived": self.archived or None,
                "build": self.build,
                "creation_context": self.creation_context,
            }
        )

    def __repr__(self) -> str:
        return f"Environment({self._to_dict()!r})"


class ModelBatchDeploymentSettings:
    """Settings of a ``type: model`` deployment; unset values take the server's defaults.

    Defaults (Azure's): ``mini_batch_size`` 10, ``max_concurrency_per_instance`` 1,
    ``instance_count`` 1, ``output_action`` ``append_row``, ``output_file_name``
    ``predictions.csv``, ``retry_settings`` 3 retries / 30 s, ``error_threshold`` -1,
    ``logging_level`` ``info``.

    Sluiceway's own: ``output_format`` (``text``, Azure's space-separated lines, the default;
    ``parquet``; ``jsonl``; the default ``output_file_name`` follows it, e.g.
    ``predictions.parquet``) and ``include_input_columns`` (an MLflow deployment's Parquet or
    JSON Lines rows carry the input's columns too).
    """

    def __init__(
        self,
        *,
        mini_batch_size: int | None = None,
        instance_count: int | None = None,
        max_concurrency_per_instance: int | None = None,
        output_action: str | None = None,
        output_file_name: str | None = None,
        retry_settings: BatchRetrySettings | Mapping[str, Any] | None = None,
        environment_variables: Mapping[str, Any] | None = None,
        error_threshold: int | None = None,
        logging_level: str | None = None,
        output_format: str | None = None,
        include_input_columns: bool | None = None,
    ) -> None:
        self.mini_batch_size = mini_batch_size
        self.instance_count = instance_count
        self.max_concurrency_per_instance = max_concurrency_per_instance
        self.output_action = None if output_action is None else str(output_action)
        self.output_file_name = output_file_name
        self.retry_settings = BatchRetrySettings._of(retry_settings)
        self.environment_variables = (
            None if environment_variables is None else str_dict(environment_variables)
        )
        self.error_threshold = error_threshold
        self.logging_level = logging_level
        self.output_format = None if output_format is None else str(output_format)
        self.include_input_columns = include_input_columns

    @classmethod
    def _of(
        cls, value: ModelBatchDeploymentSettings | Mapping[str, Any] | None
    ) -> ModelBatchDeploymentSettings:
        if isinstance(value, ModelBatchDeploymentSettings):
            return value
        if value is None:
            return cls()
        return cls(
            mini_batch_size=_int_or_none(value.get("mini_batch_size")),
            instance_count=_int_or_none(value.get("instance_count")),
            max_concurrency_per_instance=_int_or_none(value.get("max_concurrency_per_instance")),
            output_action=str_or_none(value.get("output_action")),
            output_file_name=str_or_none(value.get("output_file_name")),
            retry_settings=value.get("retry_settings"),
            environment_variables=value.get("environment_variables"),
            error_threshold=_int_or_none(value.get("error_threshold")),
            logging_level=str_or_none(value.get("logging_level")),
            output_format=str_or_none(value.get("output_format")),
            include_input_columns=value.get("include_input_columns"),
        )

    def _to_dict(self) -> dict[str, Any]:
        """The settings that are set, in the YAML and REST shape (without ``instance_count``)."""
        return drop_empty(
            {
                "mini_batch_size": self.mini_batch_size,
                "max_concurrency_per_instance": self.max_concurrency_per_instance,
                "output_action": self.output_action,
                "output_file_name": self.output_file_name,
                "retry_settings": self.retry_settings._to_dict() if self.retry_settings else None,
                "error_threshold": self.error_threshold,
                "logging_level": self.logging_level,
                "environment_variables": self.environment_variables,
                "output_format": self.output_format,
                "include_input_columns": self.include_input_columns,
            }
        )

    def __repr__(self) -> str:
        return f"ModelBatchDeploymentSettings({self._to_dict()!r})"


ModelLike = str | Model | Mapping[str, Any]
EnvironmentLike = str | Environment | Mapping[str, Any]


class BatchDeployment(RestBacked):
    """A batch deployment: what an endpoint runs.

    ``model`` is a registered model (``azureml:name:version``, a :class:`Model` from
    ``ml_client.models``) or an inline one (``Model(path=...)`` or ``{"name", "path"}``),
    which is registered on deployment. ``environment`` names the packages its code runs with
    (built with uv); ``compute`` names where its jobs run (a registered Ray compute, else the
    server's own workers).

    Settings may be given flat (``mini_batch_size=...``, Azure's ``BatchDeployment``) or as
    ``settings=ModelBatchDeploymentSettings(...)`` (Azure's ``ModelBatchDeployment``); a flat
    value wins over the same one in ``settings``.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        endpoint_name: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        model: ModelLike | None = None,
        code_configuration: CodeConfiguration | Mapping[str, Any] | None = None,
        environment: EnvironmentLike | None = None,
        compute: str | None = None,
        resources: ResourceConfiguration | Mapping[str, Any] | None = None,
        settings: ModelBatchDeploymentSettings | Mapping[str, Any] | None = None,
        output_file_name: str | None = None,
        output_action: str | None = None,
        error_threshold: int | None = None,
        retry_settings: BatchRetrySettings | Mapping[str, Any] | None = None,
        logging_level: str | None = None,
        mini_batch_size: int | None = None,
        max_concurrency_per_instance: int | None = None,
        environment_variables: Mapping[str, Any] | None = None,
        code_path: str | os.PathLike[str] | None = None,
        scoring_script: str | os.PathLike[str] | None = None,
        instance_count: int | None = None,
        type: str | None = None,
        component: str | Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.endpoint_name = endpoint_name
        self.description = description
        self.tags = str_dict(tags)
        self.properties = str_dict(properties)
        self.model: ModelLike | None = model
        self.code_configuration = CodeConfiguration._of(code_configuration)
        if code_path is not None or scoring_script is not None:
            if self.code_configuration is None:
                self.code_configuration = CodeConfiguration()
            if code_path is not None:
                self.code_configuration.code = os.fspath(code_path)
            if scoring_script is not None:
                self.code_configuration.scoring_script = os.fspath(scoring_script)
        self.environment: EnvironmentLike | None = environment
        self.compute = compute
        self.component = dict(component) if isinstance(component, Mapping) else component
        self.type = type or ("pipeline" if component is not None else "model")

        self.settings = ModelBatchDeploymentSettings._of(settings)
        chosen = self.settings
        if output_file_name is not None:
            chosen.output_file_name = output_file_name
        if output_action is not None:
            chosen.output_action = str(output_action)
        if error_threshold is not None:
            chosen.error_threshold = error_threshold
        if retry_settings is not None:
            chosen.retry_settings = BatchRetrySettings._of(retry_settings)
        if logging_level is not None:
            chosen.logging_level = logging_level
        if mini_batch_size is not None:
            chosen.mini_batch_size = mini_batch_size
        if max_concurrency_per_instance is not None:
            chosen.max_concurrency_per_instance = max_concurrency_per_instance
        if environment_variables is not None:
            chosen.environment_variables = str_dict(environment_variables)

        self.resources = ResourceConfiguration._of(resources)
        if self.resources is not None and instance_count is not None:
            raise ValidationError(
                "Can't set instance_count when resources is provided.", target="instance_count"
            )
        count = instance_count if instance_count is not None else self.settings.instance_count
        if count is not None:
            if self.resources is None:
                self.resources = ResourceConfiguration(instance_count=count)
            elif self.resources.instance_count is None:
                self.resources.instance_count = count

        self.id: str | None = None
        self.provisioning_state: str | None = None
        # Set by the server when the deployment names an environment: status, content_hash
        # and, while building or once failed, log_tail.
        self.environment_build: dict[str, Any] | None = None
        self.creation_context: SystemData | None = None

    # -- Azure's flat spelling of the settings ---------------------------------------------

    @property
    def model_deployment_settings(self) -> ModelBatchDeploymentSettings:
        return self.settings

    @property
    def mini_batch_size(self) -> int | None:
        return self.settings.mini_batch_size

    @mini_batch_size.setter
    def mini_batch_size(self, value: int | None) -> None:
        self.settings.mini_batch_size = value

    @property
    def max_concurrency_per_instance(self) -> int | None:
        return self.settings.max_concurrency_per_instance

    @max_concurrency_per_instance.setter
    def max_concurrency_per_instance(self, value: int | None) -> None:
        self.settings.max_concurrency_per_instance = value

    @property
    def output_action(self) -> str | None:
        return self.settings.output_action

    @output_action.setter
    def output_action(self, value: str | None) -> None:
        self.settings.output_action = None if value is None else str(value)

    @property
    def output_file_name(self) -> str | None:
        return self.settings.output_file_name

    @output_file_name.setter
    def output_file_name(self, value: str | None) -> None:
        self.settings.output_file_name = value

    @property
    def retry_settings(self) -> BatchRetrySettings | None:
        return self.settings.retry_settings

    @retry_settings.setter
    def retry_settings(self, value: BatchRetrySettings | Mapping[str, Any] | None) -> None:
        self.settings.retry_settings = BatchRetrySettings._of(value)

    @property
    def error_threshold(self) -> int | None:
        return self.settings.error_threshold

    @error_threshold.setter
    def error_threshold(self, value: int | None) -> None:
        self.settings.error_threshold = value

    @property
    def logging_level(self) -> str | None:
        return self.settings.logging_level

    @logging_level.setter
    def logging_level(self, value: str | None) -> None:
        self.settings.logging_level = value

    @property
    def environment_variables(self) -> dict[str, str] | None:
        return self.settings.environment_variables

    @environment_variables.setter
    def environment_variables(self, value: Mapping[str, Any] | None) -> None:
        self.settings.environment_variables = None if value is None else str_dict(value)

    @property
    def instance_count(self) -> int | None:
        return self.resources.instance_count if self.resources else None

    @instance_count.setter
    def instance_count(self, value: int | None) -> None:
        if self.resources is None:
            self.resources = ResourceConfiguration()
        self.resources.instance_count = value

    # -- REST --------------------------------------------------------------------------------

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> BatchDeployment:
        code = raw.get("code_configuration")
        resources = raw.get("resources")
        settings = raw.get("settings")
        environment = raw.get("environment")
        component = raw.get("component")
        deployment = cls(
            name=str_or_none(raw.get("name")),
            endpoint_name=str_or_none(raw.get("endpoint_name")),
            description=str_or_none(raw.get("description")),
            tags=raw.get("tags"),
            properties=raw.get("properties"),
            model=str_or_none(raw.get("model")),
            code_configuration=code if isinstance(code, Mapping) else None,
            environment=environment if isinstance(environment, str | Mapping) else None,
            compute=str_or_none(raw.get("compute")),
            resources=resources if isinstance(resources, Mapping) else None,
            settings=settings if isinstance(settings, Mapping) else None,
            type=str_or_none(raw.get("type")),
            component=component if isinstance(component, str | Mapping) else None,
        )
        deployment.id = str_or_none(raw.get("id"))
        deployment.provisioning_state = str_or_none(raw.get("provisioning_state"))
        build = raw.get("environment_build")
        deployment.environment_build = dict(build) if isinstance(build, Mapping) else None
        deployment.creation_context = SystemData._from_rest(raw.get("creation_context"))
        deployment._keep(raw)
        return deployment

    def _to_create_body(
        self,
        *,
        model: str | None,
        code: str | None,
        environment: str | dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The ``BatchDeploymentCreate`` body, once the model and code are on the server."""
        code_configuration = None
        if self.code_configuration is not None:
            code_configuration = drop_empty(
                {"code": code, "scoring_script": self.code_configuration.scoring_script}
            )
        resources = None
        if self.resources is not None and self.resources.instance_count is not None:
            resources = {"instance_count": self.resources.instance_count}
        return drop_empty(
            {
                "name": self.name,
                "endpoint_name": self.endpoint_name,
                "type": self.type,
                "description": self.description,
                "tags": self.tags,
                "model": model,
                "code_configuration": code_configuration,
                "environment": environment,
                "compute": self.compute,
                "resources": resources,
                "settings": self.settings._to_dict(),
                "component": self.component,
                "properties": self.properties,
            }
        )

    def _local_dict(self) -> dict[str, Any]:
        model: Any = self.model
        if isinstance(model, Model):
            model = model._to_dict()
        elif isinstance(model, Mapping):
            model = dict(model)
        environment: Any = self.environment
        if isinstance(environment, Environment):
            environment = environment._to_dict()
        elif isinstance(environment, Mapping):
            environment = dict(environment)
        return drop_empty(
            {
                "name": self.name,
                "endpoint_name": self.endpoint_name,
                "type": self.type,
                "description": self.description,
                "tags": self.tags,
                "model": model,
                "code_configuration": (
                    self.code_configuration._to_dict() if self.code_configuration else None
                ),
                "environment": environment,
                "compute": self.compute,
                "resources": self.resources._to_dict() if self.resources else None,
                "settings": self.settings._to_dict(),
                "component": self.component,
                "properties": self.properties,
            }
        )


class ModelBatchDeployment(BatchDeployment):
    """Azure's name for a ``type: model`` deployment that takes ``settings=``."""
