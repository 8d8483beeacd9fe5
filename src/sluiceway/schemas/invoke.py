"""The invoke body of ``POST /endpoints/{endpoint}/jobs``.

Azure's documentation writes its keys in PascalCase (``InputData``, ``JobInputType``) and its
SDK sends camelCase (``inputData``, ``jobInputType``); both are accepted, as is snake_case.
Input and output *names* are the user's and keep their case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluiceway.errors import ValidationError

# REST JobInputType -> the YAML/SDK type name
INPUT_TYPES = {
    "urifile": "uri_file",
    "urifolder": "uri_folder",
    "mltable": "mltable",
    "literal": "literal",
    "custommodel": "custom_model",
    "mlflowmodel": "mlflow_model",
    "tritonmodel": "triton_model",
}
OUTPUT_TYPES = {"urifile": "uri_file", "urifolder": "uri_folder"}


@dataclass(frozen=True)
class InvokeInput:
    name: str
    type: str
    uri: str | None = None
    value: Any = None
    mode: str | None = None


@dataclass(frozen=True)
class InvokeOutput:
    name: str
    type: str
    uri: str | None = None


@dataclass(frozen=True)
class JobOverrides:
    """Settings an invocation may override for its own job."""

    mini_batch_size: int | None = None
    instance_count: int | None = None
    output_file_name: str | None = None
    max_retries: int | None = None
    timeout: int | None = None
    error_threshold: int | None = None
    logging_level: str | None = None


@dataclass(frozen=True)
class InvokeRequest:
    inputs: dict[str, InvokeInput]
    outputs: dict[str, InvokeOutput]
    overrides: JobOverrides = field(default_factory=JobOverrides)
    job_name: str | None = None
    experiment_name: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


def _key(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _get(obj: Mapping[str, Any], *names: str) -> Any:
    wanted = {_key(n) for n in names}
    for key, value in obj.items():
        if _key(key) in wanted:
            return value
    return None


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{where} must be an object, got {type(value).__name__}", target=where
        )
    return value


_DURATION = re.compile(r"P(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)")


def parse_timeout(value: Any, where: str) -> int:
    """Seconds from an integer or an ISO-8601 duration such as ``PT30S``."""
    if isinstance(value, bool):
        raise ValidationError(f"{where}: {value!r} is not a duration", target=where)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        match = _DURATION.fullmatch(value.strip().upper())
        if match and any(match.groups()):
            hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
            return int(hours * 3600 + minutes * 60 + seconds)
    raise ValidationError(
        f"{where}: {value!r} is not a duration; use seconds (30) or ISO-8601 (PT30S)", target=where
    )


def _int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{where}: {value!r} is not an integer", target=where)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: {value!r} is not an integer", target=where) from None


def _parse_input(name: str, raw: Any) -> InvokeInput:
    where = f"InputData.{name}"
    if isinstance(raw, str) and raw.strip():
        # The azure-ai-ml SDK sends a bare string for ``inputs={"x": "https://..."}`` (the
        # reference page's form): a folder at that URI.
        return InvokeInput(name=name, type="uri_folder", uri=raw.strip())
    spec = _mapping(raw, where)
    raw_type = _get(spec, "JobInputType", "type")
    if not isinstance(raw_type, str) or _key(raw_type) not in INPUT_TYPES:
        raise ValidationError(
            f"{where}.JobInputType: {raw_type!r} is not accepted; use one of "
            "UriFolder, UriFile, Literal",
            target=where,
        )
    kind = INPUT_TYPES[_key(raw_type)]
    mode = _get(spec, "Mode")
    if kind == "literal":
        if _get(spec, "Value") is None and not any(_key(k) == "value" for k in spec):
            raise ValidationError(f"{where}: a Literal input needs a 'Value'", target=where)
        return InvokeInput(name=name, type=kind, value=_get(spec, "Value"))
    uri = _get(spec, "Uri", "path")
    if not isinstance(uri, str) or not uri.strip():
        raise ValidationError(f"{where}: a {raw_type} input needs a 'Uri'", target=where)
    return InvokeInput(
        name=name, type=kind, uri=uri.strip(), mode=mode if isinstance(mode, str) else None
    )


def _parse_output(name: str, raw: Any) -> InvokeOutput:
    where = f"OutputData.{name}"
    spec = _mapping(raw, where)
    raw_type = _get(spec, "JobOutputType", "type") or "UriFolder"
    if not isinstance(raw_type, str) or _key(raw_type) not in OUTPUT_TYPES:
        raise ValidationError(
            f"{where}.JobOutputType: {raw_type!r} is not accepted; use UriFile or UriFolder",
            target=where,
        )
    uri = _get(spec, "Uri", "path")
    if uri is not None and (not isinstance(uri, str) or not uri.strip()):
        raise ValidationError(f"{where}.Uri must be a non-empty string", target=where)
    return InvokeOutput(
        name=name, type=OUTPUT_TYPES[_key(raw_type)], uri=uri.strip() if uri else None
    )


def parse_invoke_body(body: Any) -> InvokeRequest:
    """Read a REST invoke body into an :class:`InvokeRequest`.

    Raises:
        ValidationError: naming the field that is malformed.
    """
    root = _mapping(body, "body")
    props = _mapping(_get(root, "properties"), "properties")
    inputs_raw = _mapping(_get(props, "InputData"), "properties.InputData")
    outputs_raw = _mapping(_get(props, "OutputData"), "properties.OutputData")
    inputs = {name: _parse_input(name, raw) for name, raw in inputs_raw.items()}
    outputs = {name: _parse_output(name, raw) for name, raw in outputs_raw.items()}

    retry = _mapping(_get(props, "RetrySettings"), "properties.RetrySettings")
    compute = _mapping(_get(props, "Compute"), "properties.Compute")
    raw_timeout = _get(retry, "Timeout")
    logging_level = _get(props, "LoggingLevel")
    overrides = JobOverrides(
        mini_batch_size=_int(_get(props, "MiniBatchSize"), "properties.MiniBatchSize"),
        instance_count=_int(
            _get(compute, "InstanceCount") or _get(props, "InstanceCount"),
            "properties.Compute.InstanceCount",
        ),
        output_file_name=_get(props, "OutputFileName"),
        max_retries=_int(_get(retry, "MaxRetries"), "properties.RetrySettings.MaxRetries"),
        timeout=None
        if raw_timeout is None
        else parse_timeout(raw_timeout, "properties.RetrySettings.Timeout"),
        error_threshold=_int(_get(props, "ErrorThreshold"), "properties.ErrorThreshold"),
        logging_level=str(logging_level).lower() if logging_level is not None else None,
    )
    extra = _mapping(_get(props, "properties"), "properties.properties")
    # azure-ai-ml sends ``job_name=`` as ``properties.name``.
    job_name = _get(root, "name") or _get(props, "JobName") or _get(props, "name")
    experiment = _get(props, "ExperimentName") or extra.get("experimentName")
    return InvokeRequest(
        inputs=inputs,
        outputs=outputs,
        overrides=overrides,
        job_name=str(job_name) if job_name else None,
        experiment_name=str(experiment) if experiment else None,
        properties={str(k): str(v) for k, v in extra.items()},
    )
