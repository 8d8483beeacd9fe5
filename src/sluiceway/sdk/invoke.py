"""The REST body of an invocation, from the SDK's ``Input``, ``Output`` and ``params_override``.

These functions are pure: local paths are uploaded and data asset types looked up by
``BatchEndpointOperations.invoke`` before the body is built here. The body is the one
``docs/rest.md`` and the reference page show::

    {"name": "<job>", "properties": {
        "InputData": {"heart_dataset": {"JobInputType": "UriFolder", "Uri": "azureml://..."},
                      "score_mode": {"JobInputType": "Literal", "Value": "append"}},
        "OutputData": {"score": {"JobOutputType": "UriFolder", "Uri": "azureml://..."}},
        "MiniBatchSize": 20, "Compute": {"InstanceCount": 2}, "OutputFileName": "x.csv",
        "RetrySettings": {"MaxRetries": 1, "Timeout": "PT60S"}, "ErrorThreshold": 10,
        "LoggingLevel": "debug", "properties": {"experimentName": "..."}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluiceway.entities.assets import Data
from sluiceway.entities.io import LITERAL_TYPES, Input, Output
from sluiceway.errors import ValidationError
from sluiceway.schemas.common import DEFAULT_DATASTORE, datastore_uri
from sluiceway.schemas.endpoints import LoggingLevel
from sluiceway.schemas.invoke import parse_timeout
from sluiceway.sdk.paths import datastore_name, local_path

REST_INPUT_TYPES = {
    "uri_file": "UriFile",
    "uri_folder": "UriFolder",
    "mltable": "MLTable",
    "custom_model": "CustomModel",
    "mlflow_model": "MLFlowModel",
    "triton_model": "TritonModel",
}
REST_OUTPUT_TYPES = {"uri_file": "UriFile", "uri_folder": "UriFolder"}
#: The name a model deployment's single ``input=`` gets (model deployments ignore it).
MODEL_INPUT_NAME = "input_data"
#: The output of a model deployment, which ``output_dataset.*`` overrides point.
SCORE_OUTPUT = "score"

InputValue = Input | Data | str | int | float | bool
OutputValue = Output | str

_OVERRIDE_KEYS = (
    "mini_batch_size",
    "compute.instance_count",
    "output_file_name",
    "retry_settings.max_retries",
    "retry_settings.timeout",
    "error_threshold",
    "logging_level",
    "output_dataset.datastore_id",
    "output_dataset.path",
)
_ALIASES = {"instance_count": "compute.instance_count"}


def as_input(value: InputValue, where: str, *, data_only: bool = False) -> Input:
    """An :class:`Input` for any value ``invoke`` accepts as an input.

    A string is data when it is a reference, a URL or an existing local path, and a literal
    string otherwise (always data when ``data_only``, as for ``input=``). Numbers and booleans
    are literals. A :class:`Data` asset becomes a reference to it.

    Raises:
        ValidationError: the value is of no accepted kind.
    """
    if isinstance(value, Input):
        return value._copy()
    if isinstance(value, Data):
        ref = value.id or (f"azureml:{value.name}:{value.version}" if value.version else None)
        if ref is None:
            raise ValidationError(
                f"{where}: data asset {value.name!r} is not registered; register it with "
                "ml_client.data.create_or_update first, or pass Input(path=...)",
                target=where,
            )
        return Input(type=value.type, path=ref)
    if isinstance(value, bool):
        return Input(type="boolean", default=value)
    if isinstance(value, int):
        return Input(type="integer", default=value)
    if isinstance(value, float):
        return Input(type="number", default=value)
    if isinstance(value, str):
        local = local_path(value)
        if local is None:
            return Input(type=None, path=value.strip())
        if local.is_file():
            return Input(type="uri_file", path=value)
        if local.is_dir() or data_only:
            return Input(type="uri_folder", path=value)
        return Input(type="string", default=value)
    raise ValidationError(
        f"{where}: {type(value).__name__} is not accepted; give an Input, a path or reference "
        "string, or a literal value (string, integer, number, boolean)",
        target=where,
    )


def as_output(value: OutputValue, where: str) -> Output:
    """An :class:`Output` for an ``Output`` or a path string."""
    if isinstance(value, Output):
        return Output(type=value.type, path=value.path, mode=value.mode)
    if isinstance(value, str):
        return Output(path=value)
    raise ValidationError(
        f"{where}: {type(value).__name__} is not accepted; give an Output or a datastore path",
        target=where,
    )


def collect_inputs(
    inputs: Mapping[str, InputValue] | None, single: InputValue | None
) -> dict[str, Input]:
    """The named inputs of an invocation from ``inputs=`` or the model-deployment ``input=``.

    Raises:
        ValidationError: both were given, or a value is not accepted.
    """
    if single is not None and inputs:
        raise ValidationError(
            "give either input= (the one data input of a model deployment) or inputs= "
            "(named inputs), not both",
            target="input",
        )
    if single is not None:
        return {MODEL_INPUT_NAME: as_input(single, "input", data_only=True)}
    return {str(name): as_input(value, f"inputs.{name}") for name, value in (inputs or {}).items()}


def input_body(name: str, value: Input) -> dict[str, Any]:
    """One ``InputData`` entry; ``value.path`` must already be a reference, not a local path.

    Raises:
        ValidationError: the type is not accepted, a literal has no value, or data no path.
    """
    where = f"inputs.{name}"
    kind = (value.type or "uri_folder").lower()
    if kind in LITERAL_TYPES:
        if value.default is None:
            raise ValidationError(
                f"{where}: a {kind} input needs its value in default= "
                f"(Input(type={kind!r}, default=...))",
                target=where,
            )
        return {"JobInputType": "Literal", "Value": value.default}
    rest_type = REST_INPUT_TYPES.get(kind)
    if rest_type is None:
        accepted = ", ".join([*REST_INPUT_TYPES, *sorted(LITERAL_TYPES)])
        raise ValidationError(
            f"{where}.type: {value.type!r} is not accepted; use one of {accepted}", target=where
        )
    if not value.path:
        raise ValidationError(f"{where}: a {kind} input needs a path", target=where)
    body: dict[str, Any] = {"JobInputType": rest_type, "Uri": value.path}
    if value.mode:
        body["Mode"] = value.mode
    return body


def output_body(name: str, value: Output) -> dict[str, Any]:
    """One ``OutputData`` entry; no path means the server's default location.

    Raises:
        ValidationError: the type is not accepted, or the path is local.
    """
    where = f"outputs.{name}"
    kind = (value.type or "uri_folder").lower()
    rest_type = REST_OUTPUT_TYPES.get(kind)
    if rest_type is None:
        raise ValidationError(
            f"{where}.type: {value.type!r} is not accepted; use uri_folder or uri_file",
            target=where,
        )
    body: dict[str, Any] = {"JobOutputType": rest_type}
    if value.path:
        if local_path(value.path) is not None:
            raise ValidationError(
                f"{where}.path: {value.path!r} is a local path; outputs are written to a "
                "datastore: use azureml://datastores/<datastore>/paths/<path> (download them "
                "later with ml_client.jobs.download)",
                target=where,
            )
        body["Uri"] = value.path
    if value.mode:
        body["Mode"] = value.mode
    return body


@dataclass(frozen=True)
class Overrides:
    """What ``params_override`` sets: job properties, and perhaps the ``score`` output."""

    properties: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, into)
    else:
        into[prefix] = value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise ValidationError(f"params_override {key}: {value!r} is not an integer", target=key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValidationError(f"params_override {key}: {value!r} is not an integer", target=key)


def _text(value: Any, key: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValidationError(f"params_override {key}: {value!r} is not a non-empty string", target=key)


def params_override_values(
    params_override: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The overrides as one flat mapping of dotted keys, checked against the accepted keys.

    Raises:
        ValidationError: an entry is not a mapping, or a key is not accepted.
    """
    if params_override is None:
        return {}
    entries = [params_override] if isinstance(params_override, Mapping) else params_override
    flat: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ValidationError(
                f"params_override must be a list of mappings such as "
                f"[{{'mini_batch_size': 20}}], got an entry {entry!r}",
                target="params_override",
            )
        _flatten("", entry, flat)
    values: dict[str, Any] = {}
    for raw_key, value in flat.items():
        key = raw_key.strip().lower()
        key = _ALIASES.get(key, key)
        if key not in _OVERRIDE_KEYS:
            raise ValidationError(
                f"params_override: unknown key {raw_key!r}; accepted: {', '.join(_OVERRIDE_KEYS)}",
                target=raw_key,
            )
        values[key] = value
    return values


def map_params_override(
    params_override: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None,
) -> Overrides:
    """Azure's ``params_override`` list as REST job properties and the ``score`` output.

    ``mini_batch_size`` -> ``MiniBatchSize``; ``compute.instance_count`` ->
    ``Compute.InstanceCount``; ``output_file_name`` -> ``OutputFileName``;
    ``retry_settings.max_retries`` / ``.timeout`` -> ``RetrySettings.MaxRetries`` /
    ``.Timeout`` (ISO-8601); ``error_threshold`` -> ``ErrorThreshold``; ``logging_level`` ->
    ``LoggingLevel``; ``output_dataset.datastore_id`` + ``output_dataset.path`` -> the
    ``score`` output at ``azureml://datastores/<datastore>/paths/<path>``.

    Raises:
        ValidationError: naming the key whose value is not accepted.
    """
    values = params_override_values(params_override)
    props: dict[str, Any] = {}
    if "mini_batch_size" in values:
        props["MiniBatchSize"] = _int(values["mini_batch_size"], "mini_batch_size")
    if "compute.instance_count" in values:
        count = _int(values["compute.instance_count"], "compute.instance_count")
        props["Compute"] = {"InstanceCount": count}
    if "output_file_name" in values:
        props["OutputFileName"] = _text(values["output_file_name"], "output_file_name")
    retry: dict[str, Any] = {}
    if "retry_settings.max_retries" in values:
        retry["MaxRetries"] = _int(
            values["retry_settings.max_retries"], "retry_settings.max_retries"
        )
    if "retry_settings.timeout" in values:
        seconds = parse_timeout(values["retry_settings.timeout"], "retry_settings.timeout")
        retry["Timeout"] = f"PT{seconds}S"
    if retry:
        props["RetrySettings"] = retry
    if "error_threshold" in values:
        props["ErrorThreshold"] = _int(values["error_threshold"], "error_threshold")
    if "logging_level" in values:
        level = _text(values["logging_level"], "logging_level").lower()
        accepted = [lvl.value for lvl in LoggingLevel]
        if level not in accepted:
            raise ValidationError(
                f"params_override logging_level: {values['logging_level']!r} is not accepted; "
                f"use one of {', '.join(accepted)}",
                target="logging_level",
            )
        props["LoggingLevel"] = level
    outputs: dict[str, dict[str, Any]] = {}
    if "output_dataset.path" in values or "output_dataset.datastore_id" in values:
        if "output_dataset.path" not in values:
            raise ValidationError(
                "params_override output_dataset.datastore_id needs output_dataset.path too",
                target="output_dataset.path",
            )
        raw_store = values.get("output_dataset.datastore_id")
        store = (
            datastore_name(_text(raw_store, "output_dataset.datastore_id"))
            if raw_store
            else DEFAULT_DATASTORE
        )
        path = _text(values["output_dataset.path"], "output_dataset.path")
        outputs[SCORE_OUTPUT] = {"JobOutputType": "UriFolder", "Uri": datastore_uri(store, path)}
    return Overrides(properties=props, outputs=outputs)


def build_invoke_body(
    *,
    inputs: Mapping[str, Input],
    outputs: Mapping[str, Output] | None = None,
    job_name: str | None = None,
    experiment_name: str | None = None,
    params_override: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The invoke body for inputs whose paths are already references (no local paths).

    Raises:
        ValidationError: an input, output or override is not accepted.
    """
    overrides = map_params_override(params_override)
    output_data = {name: output_body(name, value) for name, value in (outputs or {}).items()}
    for name, spec in overrides.outputs.items():
        if name in output_data:
            raise ValidationError(
                f"the {name!r} output is set twice: by outputs= and by params_override "
                "output_dataset.*; give one",
                target=f"outputs.{name}",
            )
        output_data[name] = spec
    properties: dict[str, Any] = {
        "InputData": {name: input_body(name, value) for name, value in inputs.items()}
    }
    if output_data:
        properties["OutputData"] = output_data
    properties.update(overrides.properties)
    if experiment_name:
        properties["properties"] = {"experimentName": experiment_name}
    body: dict[str, Any] = {"properties": properties}
    if job_name:
        body["name"] = job_name
    return body
