"""The invoke body: every input form of the reference page, outputs, and ``params_override``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluiceway import Data, Input, Output
from sluiceway.constants import AssetTypes
from sluiceway.errors import ValidationError
from sluiceway.sdk.invoke import (
    as_input,
    build_invoke_body,
    collect_inputs,
    map_params_override,
)

ARM = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sluiceway"
    "/providers/Microsoft.MachineLearningServices/workspaces/default"
)
DATASTORE_PATH = "azureml://datastores/workspaceblobstore/paths/heart-disease-uci-unlabeled"
HTTPS_FOLDER = "https://azuremlexampledata.blob.core.windows.net/data/heart-disease-uci/data"


def body_for(**kwargs: Any) -> dict[str, Any]:
    inputs = collect_inputs(kwargs.pop("inputs", None), kwargs.pop("input", None))
    return build_invoke_body(inputs=inputs, **kwargs)


# -- inputs ------------------------------------------------------------------------------


def test_single_input_of_a_model_deployment() -> None:
    body = body_for(input=Input(type=AssetTypes.URI_FOLDER, path=DATASTORE_PATH))
    assert body == {
        "properties": {
            "InputData": {"input_data": {"JobInputType": "UriFolder", "Uri": DATASTORE_PATH}}
        }
    }


def test_named_inputs_keep_their_names_and_types() -> None:
    body = body_for(
        inputs={
            "heart_dataset": Input(type=AssetTypes.URI_FILE, path=f"{HTTPS_FOLDER}/heart.csv"),
            "folder": Input(type="uri_folder", path=DATASTORE_PATH, mode="ro_mount"),
        }
    )
    assert body["properties"]["InputData"] == {
        "heart_dataset": {"JobInputType": "UriFile", "Uri": f"{HTTPS_FOLDER}/heart.csv"},
        "folder": {"JobInputType": "UriFolder", "Uri": DATASTORE_PATH, "Mode": "ro_mount"},
    }


def test_data_asset_id_input_of_the_reference_page() -> None:
    asset_id = f"{ARM}/data/heart-dataset-unlabeled/versions/1"
    body = body_for(inputs={"heart_dataset": Input(path=asset_id)})
    assert body["properties"]["InputData"]["heart_dataset"] == {
        "JobInputType": "UriFolder",
        "Uri": asset_id,
    }


def test_datastore_id_input_of_the_reference_page() -> None:
    default_ds_id = f"{ARM}/datastores/workspaceblobstore"
    path = f"{default_ds_id}/paths/heart-disease-uci-unlabeled"
    body = body_for(input=Input(type=AssetTypes.URI_FOLDER, path=path))
    assert body["properties"]["InputData"]["input_data"]["Uri"] == path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Input(type="string", default="append"), {"JobInputType": "Literal", "Value": "append"}),
        (Input(type="integer", default=5), {"JobInputType": "Literal", "Value": 5}),
        (Input(type="float", default=0.5), {"JobInputType": "Literal", "Value": 0.5}),
        (Input(type="number", default=2.5), {"JobInputType": "Literal", "Value": 2.5}),
        (Input(type="boolean", default=False), {"JobInputType": "Literal", "Value": False}),
        ("append", {"JobInputType": "Literal", "Value": "append"}),
        (7, {"JobInputType": "Literal", "Value": 7}),
        (1.5, {"JobInputType": "Literal", "Value": 1.5}),
        (True, {"JobInputType": "Literal", "Value": True}),
    ],
)
def test_literal_inputs(value: Any, expected: dict[str, Any]) -> None:
    body = body_for(inputs={"score_mode": value})
    assert body["properties"]["InputData"]["score_mode"] == expected


def test_a_url_string_is_a_data_input() -> None:
    # the reference page passes input="https://..." straight into inputs={...}
    body = body_for(inputs={"heart_dataset": HTTPS_FOLDER})
    assert body["properties"]["InputData"]["heart_dataset"] == {
        "JobInputType": "UriFolder",
        "Uri": HTTPS_FOLDER,
    }


def test_strings_become_data_or_literals(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.csv").write_text("a\n")
    assert as_input(str(tmp_path / "folder"), "x").type == "uri_folder"
    assert as_input(str(tmp_path / "file.csv"), "x").type == "uri_file"
    assert as_input("azureml:heart@latest", "x").type is None  # the asset's own type
    assert as_input("not-a-path", "x").is_literal
    # input= is always data
    single = as_input("missing/folder", "input", data_only=True)
    assert (single.type, single.path) == ("uri_folder", "missing/folder")


def test_a_registered_data_asset_is_an_input() -> None:
    data = Data._from_rest(
        {
            "id": f"{ARM}/data/d/versions/2",
            "name": "d",
            "version": "2",
            "type": "uri_file",
            "path": "azureml://datastores/workspaceblobstore/paths/d.csv",
        }
    )
    assert as_input(data, "x") == Input(type="uri_file", path=f"{ARM}/data/d/versions/2")
    with pytest.raises(ValidationError, match="not registered"):
        as_input(Data(name="d", path="local"), "x")


def test_input_and_inputs_together_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"either input= .* or inputs="):
        collect_inputs({"a": DATASTORE_PATH}, Input(path=DATASTORE_PATH))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Input(type="string"), "needs its value in default="),
        (Input(type="uri_folder"), "needs a path"),
        (Input(type="table", path=DATASTORE_PATH), "'table' is not accepted"),
    ],
)
def test_bad_inputs_name_the_input(value: Input, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        body_for(inputs={"my_input": value})
    assert "inputs.my_input" in info.value.message


def test_unsupported_value_kind() -> None:
    with pytest.raises(ValidationError, match="list is not accepted"):
        collect_inputs({"x": [1, 2]}, None)  # type: ignore[dict-item]


# -- outputs -----------------------------------------------------------------------------


def test_outputs() -> None:
    out_path = f"{ARM}/datastores/workspaceblobstore/paths/batch-jobs/my-unique-path"
    body = body_for(
        inputs={"heart_dataset": HTTPS_FOLDER},
        outputs={"score": Output(type=AssetTypes.URI_FOLDER, path=out_path), "other": Output()},
    )
    assert body["properties"]["OutputData"] == {
        "score": {"JobOutputType": "UriFolder", "Uri": out_path},
        "other": {"JobOutputType": "UriFolder"},
    }


def test_a_uri_file_output() -> None:
    path = "azureml://datastores/workspaceblobstore/paths/out/p.csv"
    body = build_invoke_body(inputs={}, outputs={"score": Output(type="uri_file", path=path)})
    assert body["properties"]["OutputData"]["score"] == {"JobOutputType": "UriFile", "Uri": path}


def test_a_local_output_path_is_refused() -> None:
    with pytest.raises(ValidationError, match="local path; outputs are written to a datastore"):
        build_invoke_body(inputs={}, outputs={"score": Output(path="./out")})


def test_no_outputs_means_no_output_data() -> None:
    assert "OutputData" not in body_for(input=DATASTORE_PATH)["properties"]


# -- params_override and the rest --------------------------------------------------------


def test_params_override_maps_to_rest_properties() -> None:
    overrides = map_params_override(
        [
            {"mini_batch_size": "20"},
            {"compute.instance_count": "2"},
            {"output_file_name": "x.csv"},
            {"retry_settings.max_retries": 1},
            {"retry_settings.timeout": 60},
            {"error_threshold": 10},
            {"logging_level": "DEBUG"},
        ]
    )
    assert overrides.properties == {
        "MiniBatchSize": 20,
        "Compute": {"InstanceCount": 2},
        "OutputFileName": "x.csv",
        "RetrySettings": {"MaxRetries": 1, "Timeout": "PT60S"},
        "ErrorThreshold": 10,
        "LoggingLevel": "debug",
    }
    assert overrides.outputs == {}


def test_params_override_accepts_nested_mappings_and_iso_timeouts() -> None:
    overrides = map_params_override(
        {"retry_settings": {"timeout": "PT2M", "max_retries": 0}, "instance_count": 3}
    )
    assert overrides.properties == {
        "RetrySettings": {"MaxRetries": 0, "Timeout": "PT120S"},
        "Compute": {"InstanceCount": 3},
    }


@pytest.mark.parametrize(
    ("datastore_id", "store"),
    [
        (f"azureml:{ARM}/datastores/outstore", "outstore"),
        (f"{ARM}/datastores/outstore", "outstore"),
        ("azureml://datastores/outstore", "outstore"),
        ("outstore", "outstore"),
        (None, "workspaceblobstore"),
    ],
)
def test_output_dataset_becomes_the_score_output(datastore_id: str | None, store: str) -> None:
    entry: dict[str, Any] = {"output_dataset.path": "batch/out"}
    if datastore_id is not None:
        entry["output_dataset.datastore_id"] = datastore_id
    body = build_invoke_body(inputs={}, params_override=[entry])
    assert body["properties"]["OutputData"] == {
        "score": {
            "JobOutputType": "UriFolder",
            "Uri": f"azureml://datastores/{store}/paths/batch/out",
        }
    }


def test_output_dataset_and_score_output_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="set twice"):
        build_invoke_body(
            inputs={},
            outputs={"score": Output(path=DATASTORE_PATH)},
            params_override=[{"output_dataset.path": "x"}],
        )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"mini_batch": 3}, "unknown key 'mini_batch'; accepted: mini_batch_size"),
        ({"mini_batch_size": "lots"}, "mini_batch_size: 'lots' is not an integer"),
        ({"mini_batch_size": True}, "is not an integer"),
        ({"logging_level": "verbose"}, "'verbose' is not accepted; use one of warning"),
        ({"retry_settings.timeout": "soon"}, "not a duration"),
        ({"output_dataset.datastore_id": "ds"}, "needs output_dataset.path"),
        ({"output_file_name": ""}, "not a non-empty string"),
    ],
)
def test_bad_params_override(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        map_params_override([entry])


def test_params_override_entries_must_be_mappings() -> None:
    with pytest.raises(ValidationError, match="list of mappings"):
        map_params_override(["mini_batch_size=3"])  # type: ignore[list-item]


def test_job_name_and_experiment_name() -> None:
    body = body_for(input=DATASTORE_PATH, job_name="job-1", experiment_name="exp")
    assert body["name"] == "job-1"
    assert body["properties"]["properties"] == {"experimentName": "exp"}


def test_the_body_parses_on_the_server_side() -> None:
    from sluiceway.schemas.invoke import parse_invoke_body

    body = body_for(
        inputs={"heart": Input(path=DATASTORE_PATH), "mode": "append"},
        outputs={"score": Output(path="azureml://datastores/workspaceblobstore/paths/o/")},
        job_name="j",
        experiment_name="e",
        params_override=[
            {"mini_batch_size": 5},
            {"retry_settings.timeout": 45},
            {"compute.instance_count": 2},
            {"logging_level": "warning"},
        ],
    )
    parsed = parse_invoke_body(body)
    assert parsed.inputs["heart"].uri == DATASTORE_PATH
    assert parsed.inputs["mode"].value == "append"
    assert parsed.outputs["score"].uri == "azureml://datastores/workspaceblobstore/paths/o/"
    assert (parsed.job_name, parsed.experiment_name) == ("j", "e")
    assert parsed.overrides.mini_batch_size == 5
    assert parsed.overrides.timeout == 45
    assert parsed.overrides.instance_count == 2
    assert parsed.overrides.logging_level == "warning"


# -- through BatchEndpointOperations.invoke ----------------------------------------------
