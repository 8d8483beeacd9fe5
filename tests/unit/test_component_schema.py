"""Component YAML, literal values and step bindings, read without a server."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from sluiceway.errors import ValidationError
from sluiceway.schemas.components import (
    CommandComponentSpec,
    ComponentInput,
    FixedData,
    InputType,
    LiteralBinding,
    ParentInput,
    ParentOutput,
    PipelineComponentSpec,
    StepOutput,
    convert_literal,
    dump_component,
    parse_component,
    parse_input_binding,
    parse_output_binding,
)
from sluiceway.schemas.endpoints import BatchDeploymentCreate, PipelineDeploymentSettings


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (InputType.INTEGER, "5", 5),
        (InputType.INTEGER, " -7 ", -7),
        (InputType.INTEGER, 3.0, 3),
        (InputType.NUMBER, "2.5", 2.5),
        (InputType.NUMBER, "4", 4),
        (InputType.NUMBER, 1, 1),
        (InputType.BOOLEAN, "True", True),
        (InputType.BOOLEAN, "false", False),
        (InputType.STRING, 5, "5"),
        (InputType.STRING, "x; rm -rf ~", "x; rm -rf ~"),
    ],
)
def test_literals_are_converted_to_their_type(kind: InputType, value: Any, expected: Any) -> None:
    converted = convert_literal(kind, value)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (InputType.INTEGER, "abc"),
        (InputType.INTEGER, 2.5),
        (InputType.INTEGER, True),
        (InputType.NUMBER, "nan"),
        (InputType.NUMBER, "1e999"),
        (InputType.NUMBER, False),
        (InputType.BOOLEAN, "yes"),
        (InputType.BOOLEAN, 1),
        (InputType.STRING, None),
    ],
)
def test_values_of_another_type_are_refused(kind: InputType, value: Any) -> None:
    with pytest.raises(ValueError, match="is not"):
        convert_literal(kind, value)


def test_an_input_checks_min_max_and_enum() -> None:
    count = ComponentInput(type="integer", min=1, max=10)  # type: ignore[arg-type]
    assert count.check("7") == 7
    with pytest.raises(
        ValueError, match=r"^11 is out of range; accepted: an integer from 1 to 10$"
    ):
        count.check(11)
    mode = ComponentInput.model_validate({"type": "string", "enum": ["a", "b"], "default": "a"})
    with pytest.raises(ValueError, match="'c' is not accepted; accepted: a, b"):
        mode.check("c")
    assert ComponentInput.model_validate({"type": "float", "default": "0.5"}).default == 0.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "text"}, "is not accepted; use one of uri_folder"),
        ({"type": "string", "min": 1}, "min is for integer and number inputs"),
        ({"type": "integer", "enum": ["1"]}, "enum is for string inputs"),
        ({"type": "integer", "min": 5, "max": 1}, "min 5 is greater than max 1"),
        ({"type": "integer", "default": "x"}, "'x' is not an integer"),
        ({"type": "uri_folder", "default": "x"}, "takes no default"),
        ({"type": "string", "unknown": 1}, "Extra inputs"),
    ],
)
def test_bad_input_declarations_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ComponentInput.model_validate(spec)


def command(**changes: Any) -> dict[str, Any]:
    return {
        "name": "score",
        "type": "command",
        "inputs": {"data": {"type": "uri_folder"}, "mode": {"type": "string", "optional": True}},
        "outputs": {"scores": {"type": "uri_folder"}},
        "command": "python s.py ${{inputs.data}} $[[--mode ${{inputs.mode}}]] ${{outputs.scores}}",
        **changes,
    }


def test_a_command_component_is_read_and_dumped_in_its_yaml_shape() -> None:
    spec = parse_component({"$schema": "https://x/commandComponent.schema.json", **command()})
    assert isinstance(spec, CommandComponentSpec)
    dumped = dump_component(spec)
    assert dumped["inputs"]["mode"] == {"type": "string", "optional": True}
    assert "schema_" not in dumped and "$schema" not in dumped
    assert parse_component({k: v for k, v in command().items() if k != "type"}).type == "command"


@pytest.mark.parametrize(
    ("changes", "target", "message"),
    [
        ({"type": "sweep"}, "component.type", "use command or pipeline"),
        ({"command": "python s.py ${{inputs.nope}}"}, "component", "names no declared input"),
        ({"command": "python s.py ${{outputs.nope}}"}, "component", "names no declared output"),
        ({"command": "python s.py ${{inputs.mode}}"}, "component", "wrapped in $[[...]]"),
        ({"command": "python 'unbalanced"}, "component", "cannot be split"),
        ({"inputs": {"bad-name": {"type": "string"}}}, "component.inputs", "is not valid"),
        ({"outputs": {"o": {"type": "uri_file"}}}, "component.outputs.o.type", "not supported"),
        ({"version": "1/2"}, "component.version", "is not valid"),
        ({"resources": {"instance_count": 2}}, "component.resources", "unknown key"),
    ],
)
def test_bad_command_components_are_refused(
    changes: dict[str, Any], target: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("$", r"\$").replace("[", r"\[")) as e:
        parse_component(command(**changes))
    assert e.value.target == target


def test_a_pipeline_reads_inline_and_referenced_steps() -> None:
    spec = parse_component(
        {
            "type": "pipeline",
            "inputs": {"data": {"type": "uri_folder"}},
            "jobs": {
                "a": {
                    "component": "azureml:score:1",
                    "inputs": {"data": "${{parent.inputs.data}}"},
                },
                "b": {"type": "command", "component": command(name=None)},
            },
        }
    )
    assert isinstance(spec, PipelineComponentSpec)
    assert spec.jobs["a"].component == "azureml:score:1"
    assert isinstance(spec.jobs["b"].component, CommandComponentSpec)
    with pytest.raises(ValidationError, match="at least one step") as e:
        parse_component({"type": "pipeline", "jobs": {}})
    assert e.value.target == "component.jobs"
    with pytest.raises(ValidationError, match="inline step component must be type: command"):
        parse_component({"type": "pipeline", "jobs": {"a": {"component": {"type": "pipeline"}}}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${{parent.inputs.data}}", ParentInput("data")),
        ("${{ parent.jobs.prep.outputs.clean }}", StepOutput("prep", "clean")),
        ({"path": "${{parent.inputs.data}}", "mode": "download"}, ParentInput("data")),
        (
            {"type": "mlflow_model", "path": "azureml:m@latest"},
            FixedData("azureml:m@latest", "mlflow_model"),
        ),
        ("append", LiteralBinding("append")),
        (5, LiteralBinding(5)),
        (None, None),
    ],
)
def test_step_inputs_are_bindings_or_literals(value: Any, expected: Any) -> None:
    assert parse_input_binding(value, "jobs.s.inputs.x") == expected


@pytest.mark.parametrize(
    "value",
    [
        "prefix-${{parent.inputs.x}}",
        "${{parent.outputs.x}}",
        {"value": 1},
        {"type": "uri_folder"},
        [1],
    ],
)
def test_other_step_inputs_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError) as e:
        parse_input_binding(value, "jobs.s.inputs.x")
    assert e.value.target == "jobs.s.inputs.x"


def test_step_outputs_go_to_pipeline_outputs_or_stay_between_steps() -> None:
    assert parse_output_binding("${{parent.outputs.scores}}", "w") == ParentOutput("scores")
    assert parse_output_binding({"mode": "upload", "path": "${{parent.outputs.s}}"}, "w") == (
        ParentOutput("s")
    )
    assert parse_output_binding({"type": "uri_folder", "mode": "upload"}, "w") is None
    assert parse_output_binding(None, "w") is None
    with pytest.raises(ValidationError, match="fixed path"):
        parse_output_binding("azureml://datastores/ds/paths/out/", "w")


def test_deployment_settings_follow_the_deployment_type() -> None:
    base = {"name": "dep", "endpoint_name": "ep"}
    pipeline = BatchDeploymentCreate.model_validate(
        {**base, "type": "pipeline", "settings": {"continue_on_step_failure": True}}
    )
    assert isinstance(pipeline.settings, PipelineDeploymentSettings)
    assert pipeline.settings.continue_on_step_failure is True
    assert pipeline.settings.max_concurrent_steps == 4
    with pytest.raises(pydantic.ValidationError, match=r"settings\.mini_batch_size"):
        BatchDeploymentCreate.model_validate(
            {**base, "type": "pipeline", "settings": {"mini_batch_size": 5}}
        )
    with pytest.raises(pydantic.ValidationError, match=r"settings\.default_compute"):
        BatchDeploymentCreate.model_validate({**base, "settings": {"default_compute": "c"}})
