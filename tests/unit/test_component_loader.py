"""``load_component`` and pipeline deployment YAML, read into SDK entities."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway import (
    CommandComponent,
    PipelineComponent,
    PipelineComponentBatchDeployment,
    load_batch_deployment,
    load_component,
)
from sluiceway.errors import ValidationError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "batch-scoring-with-preprocessing"


def test_a_pipeline_loads_its_step_components_with_absolute_code_folders() -> None:
    pipeline = load_component(EXAMPLE / "pipeline.yml")
    assert isinstance(pipeline, PipelineComponent)
    assert (pipeline.name, pipeline.version) == ("batch_scoring_with_preprocessing", None)
    assert pipeline.inputs["score_mode"].default == "append"
    assert pipeline.outputs["scores"].type == "uri_folder"
    prepare = pipeline.jobs["prepare"]["component"]
    score = pipeline.jobs["score"]["component"]
    assert isinstance(prepare, CommandComponent) and isinstance(score, CommandComponent)
    assert prepare.code == str(EXAMPLE / "components" / "prepare" / "src")
    assert score.inputs["score_mode"].enum == ["append", "prediction_only"]
    assert "${{inputs.model}}" in (score.command or "")
    # A registered model bound in the pipeline stays a reference.
    assert pipeline.jobs["score"]["inputs"]["model"] == {
        "type": "custom_model",
        "path": "azureml:heart-classifier-linear@latest",
    }
    yaml_shape = pipeline._to_dict()
    assert yaml_shape["jobs"]["prepare"]["component"]["name"] == "uci_heart_prepare"


def test_a_pipeline_deployment_loads_its_local_component() -> None:
    deployment = load_batch_deployment(EXAMPLE / "deployment.yml")
    assert isinstance(deployment, PipelineComponentBatchDeployment)
    assert (deployment.name, deployment.endpoint_name) == ("prepros-linear", "heart-prepros-batch")
    assert isinstance(deployment.component, PipelineComponent)
    assert deployment.settings == {
        "continue_on_step_failure": False,
        "default_compute": "batch-cluster",
    }


def test_inline_and_referenced_components(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "deployment.yml").write_text(
        "name: dep\nendpoint_name: ep\ntype: pipeline\n"
        "component:\n"
        "  type: pipeline\n"
        "  jobs:\n"
        "    only:\n"
        "      component:\n"
        "        command: python run.py\n"
        "        code: src\n"
        "      inputs:\n"
        "        data: {type: uri_folder, path: ./data}\n"
    )
    deployment = load_batch_deployment(tmp_path / "deployment.yml")
    assert isinstance(deployment, PipelineComponentBatchDeployment)
    assert isinstance(deployment.component, PipelineComponent)
    step = deployment.component.jobs["only"]
    assert isinstance(step["component"], CommandComponent)
    assert step["component"].code == str(tmp_path / "src")
    assert step["inputs"]["data"]["path"] == str(tmp_path / "data")

    (tmp_path / "ref.yml").write_text(
        "name: dep\nendpoint_name: ep\ntype: pipeline\ncomponent: azureml:hello@latest\n"
    )
    assert load_batch_deployment(tmp_path / "ref.yml").component == "azureml:hello@latest"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type: pipeline\njobs:\n  a:\n    component: ./missing.yml\n", "does not exist"),
        ("type: command\ncommand: x\nresources: {}\n", "unknown key 'resources'"),
        ("type: sweep\n", "use command or pipeline"),
        ("- a list\n", "holds a mapping"),
    ],
)
def test_bad_component_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "c.yml").write_text(text)
    with pytest.raises(ValidationError, match=message):
        load_component(tmp_path / "c.yml")


def test_model_keys_in_a_pipeline_deployment_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d.yml").write_text(
        "name: dep\nendpoint_name: ep\ntype: pipeline\ncomponent: azureml:c:1\nmodel: azureml:m:1\n"
    )
    with pytest.raises(ValidationError, match="'model' belongs to model deployments"):
        load_batch_deployment(tmp_path / "d.yml")
    (tmp_path / "s.yml").write_text(
        "name: dep\nendpoint_name: ep\ntype: pipeline\ncomponent: azureml:c:1\n"
        "settings: {mini_batch_size: 3}\n"
    )
    with pytest.raises(ValidationError, match=r"unknown key 'settings\.mini_batch_size'"):
        load_batch_deployment(tmp_path / "s.yml")
