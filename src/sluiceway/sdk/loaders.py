"""``load_*``: read Azure ML YAML files into entities.

The files are Azure's (``data.yml``, ``model.yml``, ``endpoint.yml``, ``deployment.yml``,
with or without ``$schema``). Local paths in them (``path``, ``code_configuration.code``,
``model.path``, ``environment.conda_file``) are relative to the file and are made absolute
here, so the entity works from any folder. An unknown key is an error that names the key and
the file. ``params_override`` is Azure's list of ``{"dotted.key": value}`` dicts, applied to
the file's content before it is read (``[{"name": "other"}]``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sluiceway.entities.assets import Data, Model
from sluiceway.entities.component import Component, PipelineComponentBatchDeployment
from sluiceway.entities.deployment import BatchDeployment, Environment, ModelBatchDeployment
from sluiceway.entities.endpoint import BatchEndpoint
from sluiceway.errors import ValidationError
from sluiceway.schemas.endpoints import ModelDeploymentSettings, PipelineDeploymentSettings
from sluiceway.sdk.component_loader import component_from_mapping, load_component
from sluiceway.sdk.paths import local_path
from sluiceway.sdk.validate import validate_shape
from sluiceway.sdk.yaml_file import Source, read_yaml

ParamsOverride = Sequence[Mapping[str, Any]] | None

_ASSET_KEYS = ("name", "version", "description", "tags", "properties", "type", "path")
DATA_KEYS = ("$schema", *_ASSET_KEYS)
DATA_TYPES = ("uri_folder", "uri_file", "mltable")
MODEL_KEYS = (*DATA_KEYS, "flavors", "stage")
MODEL_TYPES = ("custom_model", "mlflow_model")
ENDPOINT_KEYS = (
    "$schema",
    "name",
    "description",
    "tags",
    "properties",
    "auth_mode",
    "defaults",
    "location",
)
ENDPOINT_DEFAULTS_KEYS = ("deployment_name",)
SETTINGS_KEYS = (*ModelDeploymentSettings.model_fields, "instance_count")
RETRY_KEYS = ("max_retries", "timeout")
PIPELINE_SETTINGS_KEYS = tuple(PipelineDeploymentSettings.model_fields)
PIPELINE_DEPLOYMENT_KEYS = (
    "$schema",
    "name",
    "endpoint_name",
    "type",
    "description",
    "tags",
    "properties",
    "component",
    "settings",
)
DEPLOYMENT_KEYS = (
    "$schema",
    "name",
    "endpoint_name",
    "type",
    "description",
    "tags",
    "properties",
    "model",
    "code_configuration",
    "environment",
    "compute",
    "resources",
    "settings",
    "component",
)
LEGACY_SETTINGS_KEYS = tuple(k for k in SETTINGS_KEYS if k != "instance_count")
CODE_KEYS = ("code", "scoring_script")
RESOURCES_KEYS = ("instance_count", "instance_type", "properties")
INLINE_MODEL_KEYS = ("$schema", *_ASSET_KEYS)


class _Yaml:
    """One YAML file's mapping, where it came from, and how to name it in errors."""

    def __init__(self, data: dict[str, Any], base: Path, label: str) -> None:
        self.data = data
        self.base = base
        self.label = label

    def error(self, message: str, target: str | None = None) -> ValidationError:
        return ValidationError(f"{self.label}: {message}", target=target)

    def check_keys(
        self, mapping: Mapping[str, Any], accepted: Sequence[str], where: str = ""
    ) -> None:
        for key in mapping:
            if key not in accepted:
                name = f"{where}.{key}" if where else str(key)
                raise self.error(
                    f"unknown key {name!r}; accepted{' in ' + where if where else ''}: "
                    f"{', '.join(a for a in accepted if a != '$schema')}",
                    target=name,
                )

    def mapping(self, key: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(f"{key!r} must be a mapping, got {value!r}", target=key)
        return {str(k): v for k, v in value.items()}

    def text(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(f"{key!r} must be a string, got {value!r}", target=key)
        return str(value)

    def local(self, key: str, value: Any) -> str | None:
        """A path value, made absolute against the file's folder when it is local."""
        text = self.text(key, value)
        if text is None:
            return None
        path = local_path(text)
        if path is None or path.is_absolute():
            return text
        return os.path.normpath(self.base / path)


def _apply_overrides(data: dict[str, Any], params_override: ParamsOverride) -> None:
    for entry in params_override or []:
        if not isinstance(entry, Mapping):
            raise ValidationError(
                f"params_override must be a list of mappings, got an entry {entry!r}",
                target="params_override",
            )
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


def _read(source: Source, relative_origin: str | None, params_override: ParamsOverride) -> _Yaml:
    loaded = read_yaml(source)
    content, base, label = loaded.content, loaded.base, loaded.label
    if relative_origin is not None:
        base = Path(relative_origin).expanduser().resolve()
        if base.is_file():
            base = base.parent
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise ValidationError(f"{label}: the file must hold a mapping of keys, not {content!r}")
    data = {str(k): v for k, v in content.items()}
    _apply_overrides(data, params_override)
    return _Yaml(data, base, label)


def _asset_fields(doc: _Yaml, types: Sequence[str]) -> dict[str, Any]:
    data = doc.data
    kind = doc.text("type", data.get("type"))
    if kind is not None and kind not in types:
        raise doc.error(
            f"type {kind!r} is not accepted; use one of {', '.join(types)}", target="type"
        )
    return {
        "name": doc.text("name", data.get("name")),
        "version": doc.text("version", data.get("version")),
        "type": kind,
        "path": doc.local("path", data.get("path")),
        "description": doc.text("description", data.get("description")),
        "tags": doc.mapping("tags", data.get("tags")),
        "properties": doc.mapping("properties", data.get("properties")),
    }


def load_data(
    source: Source, *, relative_origin: str | None = None, params_override: ParamsOverride = None
) -> Data:
    """Read a data asset YAML (``heart-dataset-unlabeled.yml``).

    Raises:
        ValidationError: the file is missing or not YAML, has an unknown key, or a bad value.
    """
    doc = _read(source, relative_origin, params_override)
    doc.check_keys(doc.data, DATA_KEYS)
    fields = _asset_fields(doc, DATA_TYPES)
    return Data(**fields)


def load_model(
    source: Source, *, relative_origin: str | None = None, params_override: ParamsOverride = None
) -> Model:
    """Read a model YAML (``name``, ``version``, ``type``, ``path``, ...).

    Raises:
        ValidationError: the file is missing or not YAML, has an unknown key, or a bad value.
    """
    doc = _read(source, relative_origin, params_override)
    doc.check_keys(doc.data, MODEL_KEYS)
    fields = _asset_fields(doc, MODEL_TYPES)
    flavors = doc.mapping("flavors", doc.data.get("flavors"))
    return Model(**fields, flavors=flavors or None, stage=doc.text("stage", doc.data.get("stage")))


def load_batch_endpoint(
    source: Source, *, relative_origin: str | None = None, params_override: ParamsOverride = None
) -> BatchEndpoint:
    """Read a batch endpoint YAML (``endpoint.yml``).

    Raises:
        ValidationError: the file is missing or not YAML, has an unknown key, or a bad value.
    """
    doc = _read(source, relative_origin, params_override)
    data = doc.data
    doc.check_keys(data, ENDPOINT_KEYS)
    defaults = doc.mapping("defaults", data.get("defaults"))
    doc.check_keys(defaults, ENDPOINT_DEFAULTS_KEYS, "defaults")
    auth_mode = doc.text("auth_mode", data.get("auth_mode")) or "aad_token"
    if auth_mode != "aad_token":
        raise doc.error(
            f"auth_mode {auth_mode!r} is not accepted; batch endpoints use aad_token",
            target="auth_mode",
        )
    return BatchEndpoint(
        name=doc.text("name", data.get("name")),
        description=doc.text("description", data.get("description")),
        tags=doc.mapping("tags", data.get("tags")),
        properties=doc.mapping("properties", data.get("properties")),
        auth_mode=auth_mode,
        location=doc.text("location", data.get("location")),
        defaults={
            "deployment_name": doc.text("defaults.deployment_name", defaults.get("deployment_name"))
        },
    )


def _inline_model(doc: _Yaml, value: Any) -> str | Model | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return doc.text("model", value)
    model = doc.mapping("model", value)
    doc.check_keys(model, INLINE_MODEL_KEYS, "model")
    kind = doc.text("model.type", model.get("type"))
    if kind is not None and kind not in MODEL_TYPES:
        raise doc.error(
            f"model.type {kind!r} is not accepted; use one of {', '.join(MODEL_TYPES)}",
            target="model.type",
        )
    return Model(
        name=doc.text("model.name", model.get("name")),
        version=doc.text("model.version", model.get("version")),
        type=kind,
        path=doc.local("model.path", model.get("path")),
        description=doc.text("model.description", model.get("description")),
        tags=doc.mapping("model.tags", model.get("tags")),
        properties=doc.mapping("model.properties", model.get("properties")),
    )


def _environment(doc: _Yaml, value: Any) -> str | dict[str, Any] | None:
    if value is None or isinstance(value, str):
        return value
    environment = doc.mapping("environment", value)
    if "conda_file" in environment and isinstance(environment["conda_file"], str):
        environment["conda_file"] = doc.local("environment.conda_file", environment["conda_file"])
    return environment


def _component(doc: _Yaml, value: Any) -> str | Component | None:
    """A pipeline deployment's component: a reference, or a local or inline one, loaded."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return component_from_mapping(value, doc.base, f"{doc.label}: component")
    text = doc.text("component", value)
    local = local_path(text) if text else None
    if text and local is not None and text.endswith((".yml", ".yaml")):
        path = local if local.is_absolute() else doc.base / local
        if not path.is_file():
            raise doc.error(f"component file {text!r} does not exist", target="component")
        return load_component(path)
    return text


def _pipeline_deployment(doc: _Yaml) -> PipelineComponentBatchDeployment:
    data = doc.data
    for key in ("model", "code_configuration", "resources", "environment", "compute"):
        if key in data:
            raise doc.error(
                f"{key!r} belongs to model deployments; a pipeline deployment takes "
                f"{', '.join(k for k in PIPELINE_DEPLOYMENT_KEYS if k != '$schema')}",
                target=key,
            )
    doc.check_keys(data, PIPELINE_DEPLOYMENT_KEYS)
    settings = doc.mapping("settings", data.get("settings"))
    doc.check_keys(settings, PIPELINE_SETTINGS_KEYS, "settings")
    return PipelineComponentBatchDeployment(
        name=doc.text("name", data.get("name")),
        endpoint_name=doc.text("endpoint_name", data.get("endpoint_name")),
        description=doc.text("description", data.get("description")),
        tags=doc.mapping("tags", data.get("tags")),
        properties=doc.mapping("properties", data.get("properties")),
        component=_component(doc, data.get("component")),
        settings=settings or None,
    )


def _model_settings(doc: _Yaml, settings: dict[str, Any], where: str) -> dict[str, Any]:
    """Check model-deployment settings: under ``where`` (``settings``), or at the root (``""``)."""
    if where:
        doc.check_keys(settings, SETTINGS_KEYS, where)
    retry_where = f"{where}.retry_settings" if where else "retry_settings"
    retry = doc.mapping(retry_where, settings.get("retry_settings"))
    doc.check_keys(retry, RETRY_KEYS, retry_where)
    checked = {k: v for k, v in settings.items() if k in LEGACY_SETTINGS_KEYS}
    validate_shape(
        ModelDeploymentSettings, checked, source=f"{doc.label}: {where}" if where else doc.label
    )
    return checked


ENVIRONMENT_KEYS = (
    "$schema",
    "name",
    "version",
    "description",
    "image",
    "conda_file",
    "requirements",
    "build",
    "tags",
    "properties",
    "os_type",
    "inference_config",
)


def load_environment(
    source: Source, *, relative_origin: str | None = None, params_override: ParamsOverride = None
) -> Environment:
    """Read an environment YAML (``name``, ``image``, ``conda_file`` or ``requirements``).

    ``conda_file`` and ``requirements`` are paths relative to the file; ``requirements`` is a
    ``requirements.txt`` (Sluiceway's key; Azure's environments take a conda file only).

    Raises:
        ValidationError: the file is missing or not YAML, has an unknown key, or a bad value.
    """
    doc = _read(source, relative_origin, params_override)
    doc.check_keys(doc.data, ENVIRONMENT_KEYS)
    data = doc.data
    if data.get("build") is not None:
        raise doc.error(
            "'build' (a Docker build context) cannot be built here: there is no container "
            "runtime. Give a conda_file or requirements instead.",
            target="build",
        )
    conda = data.get("conda_file")
    requirements = data.get("requirements")
    return Environment(
        name=doc.text("name", data.get("name")),
        version=doc.text("version", data.get("version")),
        description=doc.text("description", data.get("description")),
        image=doc.text("image", data.get("image")),
        conda_file=conda if isinstance(conda, Mapping) else doc.local("conda_file", conda),
        requirements=(
            requirements
            if isinstance(requirements, list)
            else doc.local("requirements", requirements)
        ),
        tags=doc.mapping("tags", data.get("tags")),
        properties=doc.mapping("properties", data.get("properties")),
    )


def load_batch_deployment(
    source: Source, *, relative_origin: str | None = None, params_override: ParamsOverride = None
) -> BatchDeployment | PipelineComponentBatchDeployment:
    """Read a batch deployment YAML (``deployment.yml``).

    ``type: model`` gives a :class:`ModelBatchDeployment` (settings under ``settings:``); a
    file without ``type`` is Azure's older form, with the settings at the root, and gives a
    :class:`BatchDeployment`. ``type: pipeline`` gives a
    :class:`PipelineComponentBatchDeployment` whose local or inline component is loaded
    (``load_component``), to be registered with the deployment. An inline model and a local
    code folder are kept as paths made absolute;
    ``ml_client.batch_deployments.begin_create_or_update`` uploads them.

    Raises:
        ValidationError: the file is missing or not YAML, has an unknown key, or a bad value.
    """
    doc = _read(source, relative_origin, params_override)
    data = doc.data
    kind = doc.text("type", data.get("type"))
    if kind is not None and kind not in ("model", "pipeline"):
        raise doc.error(f"type {kind!r} is not accepted; use model or pipeline", target="type")
    if kind == "pipeline" or (kind is None and "component" in data and "model" not in data):
        return _pipeline_deployment(doc)

    raw_settings = doc.mapping("settings", data.get("settings"))
    if kind is None:
        # Azure's older form: settings at the root (a settings: block is read too).
        legacy = {k: v for k, v in data.items() if k in LEGACY_SETTINGS_KEYS}
        doc.check_keys(data, (*DEPLOYMENT_KEYS, *LEGACY_SETTINGS_KEYS))
        settings = {
            **_model_settings(doc, raw_settings, "settings"),
            **_model_settings(doc, legacy, ""),
        }
        instance_count = raw_settings.get("instance_count")
    else:
        unknown_settings = [k for k in data if k in LEGACY_SETTINGS_KEYS]
        if unknown_settings:
            raise doc.error(
                f"unknown key {unknown_settings[0]!r}; with type: model it goes under settings:",
                target=unknown_settings[0],
            )
        doc.check_keys(data, DEPLOYMENT_KEYS)
        settings = _model_settings(doc, raw_settings, "settings")
        instance_count = raw_settings.get("instance_count")
    if "component" in data:
        raise doc.error(
            "'component' belongs to pipeline deployments (type: pipeline), not to a model "
            "deployment",
            target="component",
        )

    code = doc.mapping("code_configuration", data.get("code_configuration"))
    doc.check_keys(code, CODE_KEYS, "code_configuration")
    resources = doc.mapping("resources", data.get("resources"))
    doc.check_keys(resources, RESOURCES_KEYS, "resources")
    if instance_count is not None and "instance_count" not in resources:
        resources["instance_count"] = instance_count

    cls = ModelBatchDeployment if kind == "model" else BatchDeployment
    return cls(
        name=doc.text("name", data.get("name")),
        endpoint_name=doc.text("endpoint_name", data.get("endpoint_name")),
        description=doc.text("description", data.get("description")),
        tags=doc.mapping("tags", data.get("tags")),
        properties=doc.mapping("properties", data.get("properties")),
        model=_inline_model(doc, data.get("model")),
        code_configuration=(
            {
                "code": doc.local("code_configuration.code", code.get("code")),
                "scoring_script": doc.text(
                    "code_configuration.scoring_script", code.get("scoring_script")
                ),
            }
            if code
            else None
        ),
        environment=_environment(doc, data.get("environment")),
        compute=doc.text("compute", data.get("compute")),
        resources=resources or None,
        settings=settings or None,
        type="model",
    )
