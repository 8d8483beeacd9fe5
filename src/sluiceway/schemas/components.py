"""Components: Azure ML's command and pipeline component YAML, and how literal values are read.

A **command component** runs one program (``command``, with ``${{inputs.x}}`` and
``${{outputs.y}}`` placeholders) from its ``code`` folder. A **pipeline component** wires
command components together as ``jobs`` (its steps): a step's inputs come from the pipeline's
inputs (``${{parent.inputs.x}}``), from another step's outputs
(``${{parent.jobs.<step>.outputs.y}}``), from a literal value, or from a fixed data asset, model
or datastore path (``{type: ..., path: ...}``); its outputs go to the pipeline's outputs
(``${{parent.outputs.y}}``) or stay between steps.

The shapes here are the YAML's, checked field by field; :func:`parse_component` reads a mapping
into one of them. The wiring between steps is checked by the component service, which can look
registered components up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeAlias

import pydantic
from pydantic import Field, ValidationInfo, field_validator, model_validator

from sluiceway.errors import ValidationError
from sluiceway.runtime.command import CommandError, parse_command
from sluiceway.schemas.common import (
    ASSET_NAME_RE,
    VERSION_RULE,
    CreationContext,
    Open,
    Strict,
    is_version_text,
)

IO_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STEP_NAME_RE = IO_NAME_RE

LiteralValue: TypeAlias = str | bool | int | float


class InputType(StrEnum):
    """Component input types; ``float`` is read as ``number``."""

    URI_FOLDER = "uri_folder"
    URI_FILE = "uri_file"
    CUSTOM_MODEL = "custom_model"
    MLFLOW_MODEL = "mlflow_model"
    STRING = "string"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"

    @property
    def is_literal(self) -> bool:
        return self in LITERAL_TYPES

    @property
    def is_model(self) -> bool:
        return self in (InputType.CUSTOM_MODEL, InputType.MLFLOW_MODEL)


LITERAL_TYPES = frozenset(
    {InputType.STRING, InputType.BOOLEAN, InputType.INTEGER, InputType.NUMBER}
)
TYPE_ALIASES = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}
ACCEPTED_INPUT_TYPES = ", ".join([*(t.value for t in InputType), "float"])
OUTPUT_TYPES = ("uri_folder",)

_INT_TEXT = re.compile(r"[-+]?\d+")


def _check_io_names(value: dict[str, Any], what: str) -> dict[str, Any]:
    for name in value:
        if not IO_NAME_RE.fullmatch(name):
            raise ValueError(
                f"{what} name {name!r} is not valid: use letters, digits and '_', not starting "
                "with a digit"
            )
    return value


# -- literal values ---------------------------------------------------------------------------


def convert_literal(kind: InputType, value: Any) -> LiteralValue:
    """``value`` as a literal of type ``kind``; text is converted (``"5"`` -> 5).

    Raises:
        ValueError: the value is not of that type, with a message naming the value.
    """
    if kind is InputType.STRING:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, bool):
            return "True" if value else "False"
        raise ValueError(f"{value!r} is not a string")
    if kind is InputType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{value!r} is not a boolean (true or false)")
    if kind is InputType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            return int(value.strip())
        raise ValueError(f"{value!r} is not an integer")
    if kind is InputType.NUMBER:
        number: float | int | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            text = value.strip()
            if _INT_TEXT.fullmatch(text):
                number = int(text)
            else:
                try:
                    number = float(text)
                except ValueError:
                    number = None
        if number is None or not math.isfinite(number):
            raise ValueError(f"{value!r} is not a number")
        return number
    raise ValueError(f"type {kind.value} does not take literal values")


def _describe_type(kind: InputType) -> str:
    return {
        InputType.STRING: "a string",
        InputType.BOOLEAN: "true or false",
        InputType.INTEGER: "an integer",
        InputType.NUMBER: "a number",
    }[kind]


# -- inputs and outputs -----------------------------------------------------------------------


class ComponentInput(Strict):
    """One declared input: data (``uri_folder``, ``uri_file``, a model) or a literal."""

    type: InputType
    optional: bool = False
    default: LiteralValue | None = None
    min: int | float | None = None
    max: int | float | None = None
    enum: list[str] | None = None
    description: str | None = None
    mode: str | None = Field(default=None, description="accepted; data is read in place")

    @field_validator("type", mode="before")
    @classmethod
    def _type_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in {t.value for t in InputType} and lowered not in TYPE_ALIASES:
                raise ValueError(
                    f"type {value!r} is not accepted; use one of {ACCEPTED_INPUT_TYPES}"
                )
            return TYPE_ALIASES.get(lowered, lowered)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ComponentInput:
        numeric = self.type in (InputType.INTEGER, InputType.NUMBER)
        for bound in ("min", "max"):
            if getattr(self, bound) is not None and not numeric:
                raise ValueError(f"{bound} is for integer and number inputs, not {self.type.value}")
        if self.enum is not None:
            if self.type is not InputType.STRING:
                raise ValueError(f"enum is for string inputs, not {self.type.value}")
            if not self.enum:
                raise ValueError("enum must list at least one value")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if self.default is not None:
            if not self.type.is_literal:
                raise ValueError(
                    f"a {self.type.value} input takes no default; make it optional, or bind it "
                    "in the pipeline"
                )
            self.default = self.check(self.default)
        return self

    def accepted(self) -> str:
        """What values this input accepts, for error messages."""
        if self.enum is not None:
            return ", ".join(self.enum)
        text = _describe_type(self.type)
        if self.min is not None and self.max is not None:
            text += f" from {self.min} to {self.max}"
        elif self.min is not None:
            text += f" of at least {self.min}"
        elif self.max is not None:
            text += f" of at most {self.max}"
        return text

    def check(self, value: Any) -> LiteralValue:
        """``value`` converted to this input's type and checked against min, max and enum.

        Raises:
            ValueError: saying what the value is and what is accepted.
        """
        try:
            converted = convert_literal(self.type, value)
        except ValueError as exc:
            raise ValueError(f"{exc}; accepted: {self.accepted()}") from None
        if isinstance(converted, int | float) and not isinstance(converted, bool):
            if (self.min is not None and converted < self.min) or (
                self.max is not None and converted > self.max
            ):
                raise ValueError(f"{value!r} is out of range; accepted: {self.accepted()}")
        if self.enum is not None and converted not in self.enum:
            raise ValueError(f"{value!r} is not accepted; accepted: {self.accepted()}")
        return converted

    @property
    def required(self) -> bool:
        return not self.optional and self.default is None


class ComponentOutput(Strict):
    """One declared output: a folder the command writes into."""

    type: str = "uri_folder"
    description: str | None = None
    mode: str | None = Field(default=None, description="accepted; outputs are always uploaded")

    @field_validator("type")
    @classmethod
    def _folder(cls, value: str) -> str:
        if value not in OUTPUT_TYPES:
            raise ValueError(
                f"output type {value!r} is not supported; accepted: {', '.join(OUTPUT_TYPES)} "
                "(the command writes its files into the folder it is given)"
            )
        return value


# -- components -------------------------------------------------------------------------------


class _ComponentBase(Strict):
    schema_: str | None = Field(default=None, alias="$schema")
    name: str | None = None
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    is_deterministic: bool = True
    inputs: dict[str, ComponentInput] = Field(default_factory=dict)
    outputs: dict[str, ComponentOutput] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not ASSET_NAME_RE.fullmatch(value):
            raise ValueError(
                f"name {value!r} is not valid: use 1-255 letters, digits, '-', '_' or '.', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"version {value!r} must be a string or a number")
        text = str(value)
        if not is_version_text(text):
            raise ValueError(f"version {text!r} is not valid: {VERSION_RULE}")
        return text

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, ComponentInput]) -> dict[str, ComponentInput]:
        return _check_io_names(value, "input")

    @field_validator("outputs")
    @classmethod
    def _output_names(cls, value: dict[str, ComponentOutput]) -> dict[str, ComponentOutput]:
        return _check_io_names(value, "output")


class CommandComponentSpec(_ComponentBase):
    """``type: command``: one program, run from the ``code`` folder.

    ``code`` is the uploaded folder (``azureml://datastores/<ds>/paths/<p>``; the CLI and SDK
    upload a local one). ``environment`` is kept; the server runs the command with its own
    Python (``python`` in the command is that interpreter).
    """

    type: Literal["command"] = "command"
    command: str
    code: str | None = None
    environment: str | dict[str, Any] | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _placeholders(self) -> CommandComponentSpec:
        try:
            template = parse_command(self.command)
        except CommandError as exc:
            raise ValueError(f"command: {exc}") from None
        for placeholder in template.placeholders:
            declared = self.inputs if placeholder.kind == "inputs" else self.outputs
            if placeholder.name not in declared:
                names = ", ".join(declared) or "none"
                raise ValueError(
                    f"command: {placeholder} names no declared {placeholder.kind[:-1]}; "
                    f"declared {placeholder.kind}: {names}"
                )
        for placeholder in template.required_placeholders():
            if placeholder.kind != "inputs":
                continue
            spec = self.inputs[placeholder.name]
            if spec.optional and spec.default is None:
                raise ValueError(
                    f"command: input {placeholder.name!r} is optional, so its use must be "
                    f"wrapped in $[[...]], e.g. $[[--{placeholder.name} {placeholder}]]"
                )
        return self


class PipelineStep(Strict):
    """One step of a pipeline: a command component and how its inputs and outputs are wired.

    ``component`` is a registered component (``azureml:<name>:<version>`` or
    ``azureml:<name>@latest``) or an inline command component. Input values are bindings
    (``${{parent.inputs.x}}``, ``${{parent.jobs.<step>.outputs.y}}``), literals, or fixed data
    (``{type, path}``); output values are ``${{parent.outputs.y}}``, ``{path: ...}`` with such a
    binding, or empty for an output that only feeds later steps.
    """

    type: Literal["command"] = "command"
    component: str | CommandComponentSpec
    display_name: str | None = None
    description: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    compute: str | None = Field(default=None, description="accepted; steps run on this server")
    environment_variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("type", mode="before")
    @classmethod
    def _command_only(cls, value: Any) -> Any:
        if value != "command":
            raise ValueError(
                f"step type {value!r} is not supported; accepted: command (a command component)"
            )
        return value

    @field_validator("component", mode="wrap")
    @classmethod
    def _component(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str | CommandComponentSpec):
            return value
        if isinstance(value, dict):
            if value.get("type", "command") != "command":
                raise ValueError(
                    f"an inline step component must be type: command, not {value.get('type')!r}"
                )
            return CommandComponentSpec.model_validate({"type": "command", **value})
        raise ValueError(
            "component must be a registered component (azureml:<name>:<version> or "
            "azureml:<name>@latest) or an inline command component"
        )


class PipelineComponentSpec(_ComponentBase):
    """``type: pipeline``: command components run as steps, in dependency order."""

    type: Literal["pipeline"] = "pipeline"
    jobs: dict[str, PipelineStep]

    @field_validator("jobs")
    @classmethod
    def _steps(cls, value: dict[str, PipelineStep]) -> dict[str, PipelineStep]:
        if not value:
            raise ValueError("a pipeline needs at least one step under jobs")
        for name in value:
            if not STEP_NAME_RE.fullmatch(name):
                raise ValueError(
                    f"step name {name!r} is not valid: use letters, digits and '_', not "
                    "starting with a digit"
                )
        return value


ComponentSpec: TypeAlias = CommandComponentSpec | PipelineComponentSpec


def _describe(exc: pydantic.ValidationError, where: str) -> tuple[str, str]:
    lines = []
    target = where
    for i, err in enumerate(exc.errors()):
        loc = ".".join(str(p) for p in err["loc"])
        full = f"{where}.{loc}" if loc else where
        if i == 0:
            target = full
        if err["type"] == "extra_forbidden":
            lines.append(f"{full}: unknown key")
        elif err["type"] == "missing":
            lines.append(f"{full}: a value is required")
        else:
            message = err["msg"].removeprefix("Value error, ")
            shown = err.get("input")
            got = "" if isinstance(shown, dict | list) or shown is None else f" (got {shown!r})"
            lines.append(f"{full}: {message}{got}")
    return "; ".join(lines), target


def parse_component(raw: Any, where: str = "component") -> ComponentSpec:
    """Read a component mapping (YAML or JSON shape); without ``type`` it is a command.

    Raises:
        ValidationError: naming each key that is wrong and what is accepted.
    """
    if not isinstance(raw, dict):
        raise ValidationError(
            f"{where} must be a mapping (a component's YAML), got {type(raw).__name__}",
            target=where,
        )
    kind = raw.get("type", "command")
    shape: type[ComponentSpec]
    if kind == "command":
        shape = CommandComponentSpec
    elif kind == "pipeline":
        shape = PipelineComponentSpec
    else:
        raise ValidationError(
            f"{where}.type: {kind!r} is not accepted; use command or pipeline",
            target=f"{where}.type",
        )
    try:
        return shape.model_validate({**raw, "type": kind})
    except pydantic.ValidationError as exc:
        message, target = _describe(exc, where)
        raise ValidationError(message, target=target) from None


def dump_component(spec: ComponentSpec) -> dict[str, Any]:
    """The component as the server keeps and shows it (YAML keys, nothing unset)."""
    data = spec.model_dump(mode="json", exclude_none=True, exclude={"schema_"})
    return {k: v for k, v in data.items() if v != {} or k in ("inputs", "outputs")}


# -- step bindings ----------------------------------------------------------------------------

_PARENT_INPUT = re.compile(r"\$\{\{\s*parent\.inputs\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PARENT_OUTPUT = re.compile(r"\$\{\{\s*parent\.outputs\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_STEP_OUTPUT = re.compile(
    r"\$\{\{\s*parent\.jobs\.(?P<step>[A-Za-z_][A-Za-z0-9_]*)\.outputs\."
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}"
)
ACCEPTED_INPUT_BINDINGS = (
    "${{parent.inputs.<name>}}, ${{parent.jobs.<step>.outputs.<name>}}, a literal value, or "
    "{type: <data type>, path: <data asset, model or datastore path>}"
)
ACCEPTED_OUTPUT_BINDINGS = (
    "${{parent.outputs.<name>}} (also as {path: ...}), or nothing for an output that only "
    "feeds later steps"
)
_BINDING_KEYS = ("type", "path", "mode")


@dataclass(frozen=True)
class ParentInput:
    """``${{parent.inputs.<name>}}``: the pipeline's input."""

    name: str


@dataclass(frozen=True)
class StepOutput:
    """``${{parent.jobs.<step>.outputs.<name>}}``: what an earlier step wrote."""

    step: str
    name: str


@dataclass(frozen=True)
class LiteralBinding:
    """A literal value written in the pipeline."""

    value: LiteralValue


@dataclass(frozen=True)
class FixedData:
    """Data or a model named in the pipeline: ``{type: mlflow_model, path: azureml:m@latest}``."""

    path: str
    type: str | None


InputBinding: TypeAlias = ParentInput | StepOutput | LiteralBinding | FixedData


@dataclass(frozen=True)
class ParentOutput:
    """``${{parent.outputs.<name>}}``: the step writes one of the pipeline's outputs."""

    name: str


def parse_input_binding(value: Any, where: str) -> InputBinding | None:
    """What a step input is bound to; None when it is left empty.

    Raises:
        ValidationError: the value is no binding this server reads.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        unknown = [str(k) for k in value if k not in _BINDING_KEYS]
        if unknown:
            raise ValidationError(
                f"{where}: unknown key {unknown[0]!r}; a data binding takes "
                f"{', '.join(_BINDING_KEYS)}",
                target=where,
            )
        path = value.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ValidationError(
                f"{where}: a mapping binds data and needs a path; accepted: "
                f"{ACCEPTED_INPUT_BINDINGS}",
                target=where,
            )
        kind = value.get("type")
        inner = parse_input_binding(path.strip(), where)
        if isinstance(inner, ParentInput | StepOutput):
            return inner
        return FixedData(path.strip(), None if kind is None else str(kind).strip().lower())
    if isinstance(value, str):
        text = value.strip()
        if match := _PARENT_INPUT.fullmatch(text):
            return ParentInput(match["name"])
        if match := _STEP_OUTPUT.fullmatch(text):
            return StepOutput(match["step"], match["name"])
        if "${{" in text:
            raise ValidationError(
                f"{where}: {value!r} is not accepted; a binding is the whole value, one of "
                f"{ACCEPTED_INPUT_BINDINGS}",
                target=where,
            )
        return LiteralBinding(value)
    if isinstance(value, bool | int | float):
        return LiteralBinding(value)
    raise ValidationError(
        f"{where}: {value!r} is not accepted; use {ACCEPTED_INPUT_BINDINGS}", target=where
    )


def parse_output_binding(value: Any, where: str) -> ParentOutput | None:
    """The pipeline output a step output goes to; None for one that stays between steps.

    Raises:
        ValidationError: the value is no binding this server reads (a fixed path, say).
    """
    if value is None:
        return None
    if isinstance(value, dict):
        unknown = [str(k) for k in value if k not in _BINDING_KEYS]
        if unknown:
            raise ValidationError(
                f"{where}: unknown key {unknown[0]!r}; accepted: {', '.join(_BINDING_KEYS)}",
                target=where,
            )
        kind = value.get("type")
        if kind is not None and kind not in OUTPUT_TYPES:
            raise ValidationError(
                f"{where}.type: {kind!r} is not supported; accepted: {', '.join(OUTPUT_TYPES)}",
                target=where,
            )
        return parse_output_binding(value.get("path"), where)
    if isinstance(value, str) and (match := _PARENT_OUTPUT.fullmatch(value.strip())):
        return ParentOutput(match["name"])
    raise ValidationError(
        f"{where}: {value!r} is not accepted; use {ACCEPTED_OUTPUT_BINDINGS}. A step writes to a "
        "fixed path through a pipeline output, whose path is chosen when the endpoint is invoked",
        target=where,
    )


# -- the REST resource ------------------------------------------------------------------------


class ComponentOut(Open):
    """A registered component version, as ``sluice component show`` prints it."""

    id: str
    name: str
    version: str
    type: str
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    is_deterministic: bool = True
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    command: str | None = None
    code: str | None = None
    environment: str | dict[str, Any] | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] | None = None
    creation_context: CreationContext | None = None


__all__ = [
    "ACCEPTED_INPUT_BINDINGS",
    "ACCEPTED_INPUT_TYPES",
    "ACCEPTED_OUTPUT_BINDINGS",
    "CommandComponentSpec",
    "ComponentInput",
    "ComponentOut",
    "ComponentOutput",
    "ComponentSpec",
    "FixedData",
    "InputBinding",
    "InputType",
    "LiteralBinding",
    "LiteralValue",
    "ParentInput",
    "ParentOutput",
    "PipelineComponentSpec",
    "PipelineStep",
    "StepOutput",
    "convert_literal",
    "dump_component",
    "parse_component",
    "parse_input_binding",
    "parse_output_binding",
]
