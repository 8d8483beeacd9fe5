"""What ``sluice batch-endpoint invoke`` was asked to run, read from its arguments.

Azure's CLI takes the inputs and outputs of a job in three ways, and the reference page uses
all of them: ``--input PATH [--input-type T]`` (one data input, for model deployments),
``--set`` (``inputs.<name>.<field> VALUE`` pairs or ``key=value`` tokens, plus the settings an
invocation may override) and ``--file inputs.yml`` (keys ``inputs``, ``outputs``,
``deployment``, ``endpoint``). This module turns them into plain :class:`InputSpec` and
:class:`OutputSpec` values. It reads no server and imports nothing of the SDK, so every form can
be tested on its own; the command turns the specs into SDK ``Input``/``Output`` objects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluiceway.errors import ValidationError

Literal = str | int | float | bool

LITERAL_TYPES = ("string", "boolean", "integer", "number")
# "float" is the name the REST contract and the reference page use for "number".
_LITERAL_ALIASES = {"float": "number"}
DATA_INPUT_TYPES = ("uri_folder", "uri_file", "mltable", "custom_model", "mlflow_model")
OUTPUT_TYPES = ("uri_folder", "uri_file")
INPUT_FIELDS = ("type", "path", "mode", "default", "min", "max")
OUTPUT_FIELDS = ("type", "path", "mode")
FILE_KEYS = ("inputs", "outputs", "deployment", "endpoint")

DATA_REFERENCE_PREFIXES = (
    "azureml:",
    "https://",
    "http://",
    "s3://",
    "abfss://",
    "wasbs://",
    "/subscriptions/",
)
_DATASTORE_PATH = re.compile(r"/datastores/[^/]+/paths/")
_DATA_ASSET_PATH = re.compile(r"/data/[^/]+/versions/")
_REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def _int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value)
    raise ValidationError(f"{where}: {value!r} is not an integer", target=where)


def _timeout(value: Any, where: str) -> int | str:
    # Seconds, or an ISO-8601 duration such as PT30S that the server reads.
    if isinstance(value, str) and value.strip().upper().startswith("P"):
        return value.strip().upper()
    return _int(value, where)


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool | int | float | str):
        return str(value)
    raise ValidationError(f"{where}: {value!r} is not a string", target=where)


OVERRIDE_KEYS: dict[str, Callable[[Any, str], Any]] = {
    "mini_batch_size": _int,
    "compute.instance_count": _int,
    "output_file_name": _text,
    "retry_settings.max_retries": _int,
    "retry_settings.timeout": _timeout,
    "error_threshold": _int,
    "logging_level": _text,
}

ACCEPTED_SET_KEYS = (
    f"inputs.<name>, inputs.<name>.<{'|'.join(INPUT_FIELDS)}>, "
    f"outputs.<name>, outputs.<name>.<{'|'.join(OUTPUT_FIELDS)}>, " + ", ".join(OVERRIDE_KEYS)
)


@dataclass(frozen=True)
class InputSpec:
    """One job input: a data input (``path``) or a literal (``default``).

    ``type`` is None for a data asset reference given without a type, so that the asset's own
    type applies.
    """

    type: str | None = None
    path: str | None = None
    mode: str | None = None
    default: Literal | None = None
    min: int | float | None = None
    max: int | float | None = None

    @property
    def is_literal(self) -> bool:
        return self.type in LITERAL_TYPES


@dataclass(frozen=True)
class OutputSpec:
    """One job output; no ``path`` means the server's default location."""

    type: str | None = None
    path: str | None = None
    mode: str | None = None


@dataclass(frozen=True)
class Invocation:
    """Everything the invoke arguments say, ready for ``batch_endpoints.invoke``."""

    endpoint_name: str | None = None
    deployment_name: str | None = None
    input: InputSpec | None = None
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    params_override: list[dict[str, Any]] = field(default_factory=list)


def is_data_asset_reference(value: str) -> bool:
    """Whether ``value`` names a registered data asset rather than a storage location."""
    if _DATASTORE_PATH.search(value):
        return False
    if value.startswith("azureml:") and not value.startswith("azureml://"):
        return True  # azureml:<name>:<version>, azureml:<name>@latest, azureml:/<name>@latest
    return bool(_DATA_ASSET_PATH.search(value)) and value.startswith(
        ("azureml://", "/subscriptions/")
    )


def data_input_type(value: str) -> str | None:
    """The type of a data input given only by its path: the asset's own, else ``uri_folder``."""
    return None if is_data_asset_reference(value) else "uri_folder"


def looks_like_data_reference(value: str, base: Path | None = None) -> bool:
    """Whether a bare string in an inputs file means data rather than a literal string."""
    if value.lower().startswith(DATA_REFERENCE_PREFIXES):
        return True
    if not value.strip():
        return False
    try:
        local = Path(value).expanduser()
        if base is not None and not local.is_absolute():
            local = base / local
        return local.exists()
    except (OSError, ValueError, RuntimeError):
        # Too long for a path, holding a NUL, or ~user of no user: a literal, not a path.
        return False


def _local_path(value: str, base: Path | None) -> str:
    # A relative local path in an inputs file is relative to that file, as in Azure's CLI.
    if base is None or value.startswith("/subscriptions/") or _REMOTE.match(value):
        return value
    local = Path(os.path.expanduser(value))  # unlike Path.expanduser, never raises
    return str(local) if local.is_absolute() else str(base / local)


def infer_literal(value: Literal) -> tuple[str, Literal]:
    """The literal type of a bare value; text is read as YAML reads a plain scalar."""
    if isinstance(value, bool):
        return "boolean", value
    if isinstance(value, int):
        return "integer", value
    if isinstance(value, float):
        return "number", value
    text = value.strip()
    if text.lower() in ("true", "false"):
        return "boolean", text.lower() == "true"
    if _INT.fullmatch(text):
        return "integer", int(text)
    if _FLOAT.fullmatch(text):
        return "number", float(text)
    return "string", value


def _coerce_literal(value: Any, kind: str, where: str) -> Literal:
    if kind == "string":
        return _text(value, where)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValidationError(
            f"{where}: {value!r} is not a boolean; use true or false", target=where
        )
    if kind == "integer":
        return _int(value, where)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        text = value.strip()
        return int(text) if _INT.fullmatch(text) else float(text)
    raise ValidationError(f"{where}: {value!r} is not a number", target=where)


def _scalar_input(value: Any, where: str, base: Path | None, *, text: bool) -> dict[str, Any]:
    """Fields of an input given as one value: a data reference, else a literal.

    ``text`` marks a value typed on the command line, whose literal type is read from it.
    """
    if value is None:
        raise ValidationError(f"{where} has no value", target=where)
    if isinstance(value, str) and looks_like_data_reference(value, base):
        return {"path": value}
    if not isinstance(value, bool | int | float | str):
        raise ValidationError(
            f"{where}: {value!r} is not accepted; give a path, a literal value, "
            f"or a mapping with {', '.join(INPUT_FIELDS)}",
            target=where,
        )
    if isinstance(value, str) and not text:
        return {"type": "string", "default": value}
    kind, literal = infer_literal(value)
    return {"type": kind, "default": literal}


def _mapping_fields(
    value: Mapping[Any, Any], accepted: Sequence[str], where: str
) -> dict[str, Any]:
    unknown = [str(k) for k in value if k not in accepted]
    if unknown:
        raise ValidationError(
            f"{where}: unknown field {unknown[0]!r}; accepted: {', '.join(accepted)}",
            target=where,
        )
    return {str(k): v for k, v in value.items()}


def _build_input(name: str, fields: dict[str, Any], base: Path | None) -> InputSpec:
    where = f"inputs.{name}"
    raw_type = fields.get("type")
    kind = None if raw_type is None else _text(raw_type, f"{where}.type").strip().lower()
    kind = _LITERAL_ALIASES.get(kind, kind) if kind is not None else None
    if kind is None and "default" in fields and "path" not in fields:
        default = fields["default"]
        kind = infer_literal(default)[0] if isinstance(default, bool | int | float | str) else None
    if kind in LITERAL_TYPES:
        return _build_literal(where, kind, fields)
    if kind is not None and kind not in DATA_INPUT_TYPES:
        accepted = ", ".join(DATA_INPUT_TYPES + LITERAL_TYPES)
        raise ValidationError(
            f"{where}.type: {raw_type!r} is not accepted; use one of {accepted}", target=where
        )
    extra = [k for k in ("default", "min", "max") if k in fields]
    if extra:
        raise ValidationError(
            f"{where}: a data input takes type, path and mode, not {extra[0]!r}", target=where
        )
    path = fields.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ValidationError(
            f"{where} needs a path (a data input) or a default (a literal input)", target=where
        )
    path = _local_path(path.strip(), base)
    mode = fields.get("mode")
    return InputSpec(
        type=kind if kind is not None else data_input_type(path),
        path=path,
        mode=None if mode is None else _text(mode, f"{where}.mode"),
    )


def _build_literal(where: str, kind: str, fields: dict[str, Any]) -> InputSpec:
    extra = [k for k in ("path", "mode") if k in fields]
    if extra:
        raise ValidationError(
            f"{where}: a {kind} input takes a default, not {extra[0]!r}", target=where
        )
    if fields.get("default") is None:
        raise ValidationError(f"{where}: a {kind} input needs its value in 'default'", target=where)
    bounds: dict[str, int | float | None] = {"min": None, "max": None}
    for bound in ("min", "max"):
        if fields.get(bound) is None:
            continue
        if kind not in ("integer", "number"):
            raise ValidationError(
                f"{where}.{bound}: only integer and number inputs take min and max", target=where
            )
        value = _coerce_literal(fields[bound], kind, f"{where}.{bound}")
        assert isinstance(value, int | float)
        bounds[bound] = value
    return InputSpec(
        type=kind,
        default=_coerce_literal(fields["default"], kind, f"{where}.default"),
        min=bounds["min"],
        max=bounds["max"],
    )


def _build_output(name: str, fields: dict[str, Any], base: Path | None) -> OutputSpec:
    where = f"outputs.{name}"
    raw_type = fields.get("type")
    kind = None if raw_type is None else _text(raw_type, f"{where}.type").strip().lower()
    if kind is not None and kind not in OUTPUT_TYPES:
        raise ValidationError(
            f"{where}.type: {raw_type!r} is not accepted; use one of {', '.join(OUTPUT_TYPES)}",
            target=where,
        )
    path = fields.get("path")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise ValidationError(f"{where}.path must be a non-empty string", target=where)
    mode = fields.get("mode")
    return OutputSpec(
        type=kind,
        path=None if path is None else _local_path(path.strip(), base),
        mode=None if mode is None else _text(mode, f"{where}.mode"),
    )


def read_invocation_file(path: Path) -> dict[str, Any]:
    """The mapping in an ``inputs.yml`` given to ``--file``.

    Raises:
        ValidationError: the file is missing, is not YAML, or is not a mapping.
    """
    from sluiceway.sdk.yaml_file import read_yaml

    content = read_yaml(path, "--file").content
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ValidationError(
            f"--file {str(path)!r} must hold a mapping with keys {', '.join(FILE_KEYS)}",
            target="file",
        )
    return content


def _file_section(content: Mapping[str, Any], key: str) -> Mapping[Any, Any]:
    section = content.get(key)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ValidationError(f"--file: '{key}' must be a mapping of names", target=key)
    return section


def _read_file(
    content: Mapping[str, Any],
    base: Path | None,
    inputs: dict[str, dict[str, Any]],
    outputs: dict[str, dict[str, Any]],
) -> None:
    unknown = [str(k) for k in content if k not in FILE_KEYS and k != "$schema"]
    if unknown:
        raise ValidationError(
            f"--file: unknown key {unknown[0]!r}; accepted: {', '.join(FILE_KEYS)}",
            target=unknown[0],
        )
    for name, value in _file_section(content, "inputs").items():
        where = f"inputs.{name}"
        if isinstance(value, Mapping):
            inputs[str(name)] = _mapping_fields(value, INPUT_FIELDS, where)
        else:
            inputs[str(name)] = _scalar_input(value, where, base, text=False)
    for name, value in _file_section(content, "outputs").items():
        where = f"outputs.{name}"
        if isinstance(value, Mapping):
            outputs[str(name)] = _mapping_fields(value, OUTPUT_FIELDS, where)
        elif isinstance(value, str):
            outputs[str(name)] = {"path": value}
        else:
            raise ValidationError(f"{where}: give a path or a mapping with type, path, mode")


def _unknown_key(key: str) -> ValidationError:
    return ValidationError(f"--set {key!r}: unknown key; accepted: {ACCEPTED_SET_KEYS}", target=key)


def _apply_set(
    key: str,
    value: str,
    inputs: dict[str, dict[str, Any]],
    outputs: dict[str, dict[str, Any]],
    overrides: dict[str, Any],
) -> None:
    if key in OVERRIDE_KEYS:
        overrides[key] = OVERRIDE_KEYS[key](value, f"--set {key}")
        return
    parts = key.split(".")
    if parts[0] not in ("inputs", "outputs") or len(parts) not in (2, 3) or not all(parts):
        raise _unknown_key(key)
    name = parts[1]
    if parts[0] == "inputs":
        if len(parts) == 2:
            inputs[name] = _scalar_input(value, key, None, text=True)
        elif parts[2] in INPUT_FIELDS:
            inputs.setdefault(name, {})[parts[2]] = value
        else:
            raise _unknown_key(key)
    elif len(parts) == 2:
        outputs[name] = {"path": value}
    elif parts[2] in OUTPUT_FIELDS:
        outputs.setdefault(name, {})[parts[2]] = value
    else:
        raise _unknown_key(key)


def parse_invocation(
    *,
    endpoint_name: str | None = None,
    deployment_name: str | None = None,
    input_path: str | None = None,
    input_type: str | None = None,
    set_values: Sequence[tuple[str, str]] = (),
    file_content: Mapping[str, Any] | None = None,
    file_base: Path | None = None,
) -> Invocation:
    """Read the invoke arguments into an :class:`Invocation`.

    ``--set`` values apply after ``--file``, so they override it field by field; the file's
    ``endpoint`` and ``deployment`` override ``--name`` and ``--deployment-name``.

    Args:
        endpoint_name: ``--name``.
        deployment_name: ``--deployment-name``.
        input_path: ``--input``.
        input_type: ``--input-type``.
        set_values: the ``--set`` pairs, in order (see ``arguments.parse_set_tokens``).
        file_content: the mapping in the ``--file`` YAML.
        file_base: the folder of that file; relative local paths in it start there.

    Raises:
        ValidationError: naming the key or input that is wrong and what is accepted.
    """
    inputs: dict[str, dict[str, Any]] = {}
    outputs: dict[str, dict[str, Any]] = {}
    overrides: dict[str, Any] = {}
    if file_content:
        _read_file(file_content, file_base, inputs, outputs)
        endpoint_name = _optional_name(file_content, "endpoint") or endpoint_name
        deployment_name = _optional_name(file_content, "deployment") or deployment_name
    for key, value in set_values:
        _apply_set(key, value, inputs, outputs, overrides)

    single = None
    if input_type is not None and input_path is None:
        raise ValidationError("--input-type needs --input", target="input_type")
    if input_path is not None:
        if inputs:
            raise ValidationError(
                "--input gives the one input of a model deployment; name inputs with "
                "--set inputs.<name>.path or --file instead of mixing both",
                target="input",
            )
        if input_type is not None and input_type not in ("uri_folder", "uri_file"):
            raise ValidationError(
                f"--input-type: {input_type!r} is not accepted; use uri_folder or uri_file",
                target="input_type",
            )
        single = InputSpec(type=input_type or data_input_type(input_path), path=input_path)

    return Invocation(
        endpoint_name=endpoint_name,
        deployment_name=deployment_name,
        input=single,
        inputs={name: _build_input(name, f, file_base) for name, f in inputs.items()},
        outputs={name: _build_output(name, f, file_base) for name, f in outputs.items()},
        params_override=[{key: value} for key, value in overrides.items()],
    )


def _optional_name(content: Mapping[str, Any], key: str) -> str | None:
    value = content.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"--file: '{key}' must be a name", target=key)
    return value.strip()
