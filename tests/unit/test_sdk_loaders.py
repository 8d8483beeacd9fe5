"""``load_*`` read Azure's YAML files into entities, and name the file and key when they can't."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from sluiceway import (
    BatchDeployment,
    BatchEndpoint,
    Data,
    Model,
    ModelBatchDeployment,
    PipelineComponent,
    load_batch_deployment,
    load_batch_endpoint,
    load_data,
    load_model,
)
from sluiceway.errors import ValidationError


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# -- data and models ---------------------------------------------------------------------


def test_data_yaml_of_the_reference_page(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "heart-dataset-unlabeled.yml",
        """
        $schema: https://azuremlschemas.azureedge.net/latest/data.schema.json
        name: heart-dataset-unlabeled
        description: An unlabeled dataset for heart classification.
        type: uri_folder
        path: heart-classifier-mlflow/data
        """,
    )
    data = load_data(path)
    assert isinstance(data, Data)
    assert data.name == "heart-dataset-unlabeled"
    assert data.type == "uri_folder"
    assert data.description == "An unlabeled dataset for heart classification."
    assert data.version is None
    # relative to the YAML file, not to the current folder
    assert data.path == str(tmp_path / "heart-classifier-mlflow" / "data")


def test_data_yaml_keeps_remote_paths_and_stringifies_versions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        name: remote
        version: 3
        type: uri_file
        path: https://azuremlexampledata.blob.core.windows.net/data/heart-disease-uci/data/heart.csv
        tags: {owner: me, n: 1}
        """,
    )
    data = load_data(path)
    assert data.version == "3"
    assert data.path is not None
    assert data.path.startswith("https://azuremlexampledata")
    assert data.tags == {"owner": "me", "n": "1"}


def test_data_yaml_keeps_datastore_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path, "d.yml", "name: x\npath: azureml://datastores/workspaceblobstore/paths/a/\n"
    )
    assert load_data(path).path == "azureml://datastores/workspaceblobstore/paths/a/"


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bad-data.yml", "name: x\npath: data\nformat: csv\n")
    with pytest.raises(ValidationError) as info:
        load_data(path)
    assert "'format'" in info.value.message
    assert "bad-data.yml" in info.value.message
    assert info.value.target == "format"


def test_data_type_must_be_a_data_type(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", "name: x\npath: data\ntype: mlflow_model\n")
    with pytest.raises(ValidationError, match=r"type 'mlflow_model' is not accepted.*uri_folder"):
        load_data(path)


def test_params_override_sets_dotted_keys_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", "name: x\npath: data\n")
    data = load_data(path, params_override=[{"name": "other"}, {"version": "7"}])
    assert (data.name, data.version) == ("other", "7")


def test_relative_origin_changes_the_base_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "yaml/d.yml", "name: x\npath: data\n")
    data = load_data(path, relative_origin=str(tmp_path / "elsewhere"))
    assert data.path == str(tmp_path / "elsewhere" / "data")


def test_a_stream_is_read_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = load_data(io.StringIO("name: x\npath: data\n"))
    assert data.path == str(tmp_path / "data")


def test_missing_file_and_bad_yaml_are_validation_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        load_data(tmp_path / "nope.yml")
    bad = write(tmp_path, "bad.yml", "name: [unclosed\n")
    with pytest.raises(ValidationError, match="not valid YAML"):
        load_data(bad)
    listed = write(tmp_path, "list.yml", "- a\n- b\n")
    with pytest.raises(ValidationError, match="must hold a mapping"):
        load_data(listed)


def test_model_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model.yml",
        """
        $schema: https://azuremlschemas.azureedge.net/latest/model.schema.json
        name: heart-classifier
        type: mlflow_model
        path: model
        flavors: {python_function: {loader_module: mlflow.sklearn}}
        """,
    )
    model = load_model(path)
    assert isinstance(model, Model)
    assert (model.name, model.type) == ("heart-classifier", "mlflow_model")
    assert model.path == str(tmp_path / "model")
    assert model.flavors == {"python_function": {"loader_module": "mlflow.sklearn"}}


def test_model_type_defaults_to_custom_model(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, "m.yml", "name: m\npath: model\n"))
    assert model.type == "custom_model"


# -- endpoints ---------------------------------------------------------------------------


def test_endpoint_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "endpoint.yml",
        """
        $schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json
        name: heart-classifier-batch
        description: A heart condition classifier for batch inference
        auth_mode: aad_token
        """,
    )
    endpoint = load_batch_endpoint(path)
    assert isinstance(endpoint, BatchEndpoint)
    assert endpoint.name == "heart-classifier-batch"
    assert endpoint.auth_mode == "aad_token"
    assert endpoint.defaults.deployment_name is None
    assert endpoint._to_dict() == {
        "name": "heart-classifier-batch",
        "description": "A heart condition classifier for batch inference",
        "auth_mode": "aad_token",
    }


def test_endpoint_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "e.yml", "name: ep1\ndefaults:\n  deployment_name: d1\n")
    endpoint = load_batch_endpoint(path)
    assert endpoint.defaults.deployment_name == "d1"
    assert endpoint.defaults["deployment_name"] == "d1"


def test_endpoint_unknown_nested_key(tmp_path: Path) -> None:
    path = write(tmp_path, "e.yml", "name: ep1\ndefaults:\n  deployment: d1\n")
    with pytest.raises(ValidationError, match=r"e.yml: unknown key 'defaults.deployment'"):
        load_batch_endpoint(path)


def test_endpoint_auth_mode_is_aad_token(tmp_path: Path) -> None:
    path = write(tmp_path, "e.yml", "name: ep1\nauth_mode: key\n")
    with pytest.raises(ValidationError, match="aad_token"):
        load_batch_endpoint(path)


# -- deployments -------------------------------------------------------------------------

MNIST = """
$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
name: mnist-torch-dpl
description: A deployment using Torch to solve the MNIST classification dataset.
endpoint_name: mnist-batch
type: model
model:
  name: mnist-classifier-torch
  path: model
code_configuration:
  code: code
  scoring_script: batch_driver.py
environment:
  name: batch-torch-py38
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
  conda_file: environment/conda.yaml
compute: azureml:batch-cluster
resources:
  instance_count: 1
settings:
  max_concurrency_per_instance: 2
  mini_batch_size: 10
  output_action: append_row
  output_file_name: predictions.csv
  retry_settings:
    max_retries: 3
    timeout: 30
  error_threshold: -1
  logging_level: info
"""


def test_model_deployment_yaml_of_the_azure_examples(tmp_path: Path) -> None:
    deployment = load_batch_deployment(write(tmp_path, "deployment.yml", MNIST))
    assert isinstance(deployment, ModelBatchDeployment)
    assert deployment.type == "model"
    assert (deployment.name, deployment.endpoint_name) == ("mnist-torch-dpl", "mnist-batch")
    assert isinstance(deployment.model, Model)
    assert deployment.model.name == "mnist-classifier-torch"
    assert deployment.model.path == str(tmp_path / "model")
    assert deployment.code_configuration is not None
    assert deployment.code_configuration.code == str(tmp_path / "code")
    assert deployment.code_configuration.scoring_script == "batch_driver.py"
    assert isinstance(deployment.environment, dict)
    assert deployment.environment["conda_file"] == str(tmp_path / "environment" / "conda.yaml")
    assert deployment.compute == "azureml:batch-cluster"
    assert deployment.instance_count == 1
    settings = deployment.settings
    assert settings.max_concurrency_per_instance == 2
    assert settings.mini_batch_size == 10
    assert settings.output_action == "append_row"
    assert settings.output_file_name == "predictions.csv"
    assert settings.retry_settings is not None
    assert (settings.retry_settings.max_retries, settings.retry_settings.timeout) == (3, 30)
    assert (settings.error_threshold, settings.logging_level) == (-1, "info")
    # the flat (older BatchDeployment) spelling reads the same settings
    assert deployment.mini_batch_size == 10
    assert deployment.max_concurrency_per_instance == 2


def test_legacy_deployment_has_its_settings_at_the_root(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "deployment.yml",
        """
        name: classifier-xgboost
        endpoint_name: heart
        model: azureml:heart-classifier:1
        compute: azureml:batch-cluster
        resources: {instance_count: 2}
        mini_batch_size: 5
        output_action: summary_only
        retry_settings: {max_retries: 1, timeout: 300}
        """,
    )
    deployment = load_batch_deployment(path)
    assert type(deployment) is BatchDeployment
    assert deployment.model == "azureml:heart-classifier:1"
    assert deployment.mini_batch_size == 5
    assert deployment.output_action == "summary_only"
    assert deployment.retry_settings is not None
    assert deployment.retry_settings.timeout == 300
    assert deployment.instance_count == 2


def test_settings_instance_count_goes_to_resources(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        "name: dpl\nendpoint_name: ep1\ntype: model\nmodel: azureml:m:1\n"
        "settings: {instance_count: 3}\n",
    )
    assert load_batch_deployment(path).instance_count == 3


def test_model_deployment_settings_belong_under_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        "name: dpl\nendpoint_name: ep1\ntype: model\nmodel: azureml:m:1\nmini_batch_size: 3\n",
    )
    with pytest.raises(ValidationError, match=r"'mini_batch_size'.*under settings"):
        load_batch_deployment(path)


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("settings: {mini_batch: 3}", "settings.mini_batch"),
        ("settings: {retry_settings: {retries: 3}}", "settings.retry_settings.retries"),
        ("code_configuration: {code: c, script: s.py}", "code_configuration.script"),
        ("resources: {gpus: 1}", "resources.gpus"),
        ("model: {name: m, path: p, framework: torch}", "model.framework"),
        ("scoring: x", "scoring"),
    ],
)
def test_deployment_unknown_keys_are_named(tmp_path: Path, snippet: str, key: str) -> None:
    path = write(tmp_path, "dep.yml", f"name: dpl\nendpoint_name: ep1\ntype: model\n{snippet}\n")
    with pytest.raises(ValidationError) as info:
        load_batch_deployment(path)
    assert f"unknown key {key!r}" in info.value.message
    assert "dep.yml" in info.value.message


def test_deployment_bad_setting_value_names_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dep.yml",
        "name: dpl\nendpoint_name: ep1\ntype: model\nsettings: {mini_batch_size: 0}\n",
    )
    with pytest.raises(ValidationError) as info:
        load_batch_deployment(path)
    assert "dep.yml" in info.value.message
    assert "mini_batch_size" in info.value.message


def test_summary_only_with_output_file_name_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dep.yml",
        "name: dpl\nendpoint_name: ep1\ntype: model\n"
        "settings: {output_action: summary_only, output_file_name: x.csv}\n",
    )
    with pytest.raises(ValidationError, match="output_file_name need not to be specified"):
        load_batch_deployment(path)


def test_output_format_settings_reach_the_request(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dep.yml",
        "name: dpl\nendpoint_name: ep1\ntype: model\nmodel: azureml:m:1\n"
        "settings: {output_format: parquet, include_input_columns: true}\n",
    )
    deployment = load_batch_deployment(path)
    assert deployment.settings.output_format == "parquet"
    assert deployment.settings.include_input_columns is True
    assert deployment._to_dict()["settings"] == {
        "output_format": "parquet",
        "include_input_columns": True,
    }


def test_pipeline_deployment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "deployment.yml",
        """
        name: hello-batch-dpl
        endpoint_name: hello-pipeline-batch
        type: pipeline
        component: azureml:hello_batch@latest
        settings:
          default_compute: batch-cluster
        """,
    )
    deployment = load_batch_deployment(path)
    assert deployment.type == "pipeline"
    assert deployment.component == "azureml:hello_batch@latest"


def test_pipeline_component_file_is_read(tmp_path: Path) -> None:
    write(tmp_path, "pipeline.yml", "type: pipeline\nname: p\njobs: {}\n")
    path = write(
        tmp_path,
        "deployment.yml",
        "name: dpl\nendpoint_name: ep1\ntype: pipeline\ncomponent: pipeline.yml\n",
    )
    component = load_batch_deployment(path).component
    assert isinstance(component, PipelineComponent)
    assert component._to_dict() == {"type": "pipeline", "name": "p"}


def test_deployment_params_override(tmp_path: Path) -> None:
    deployment = load_batch_deployment(
        write(tmp_path, "deployment.yml", MNIST),
        params_override=[{"endpoint_name": "other"}, {"settings.mini_batch_size": 3}],
    )
    assert deployment.endpoint_name == "other"
    assert deployment.mini_batch_size == 3
