"""``settings.output_format``: jobs whose rows are written as Parquet or JSON Lines, read back
with pandas and pyarrow after ``jobs download``; and a value the server and the CLI refuse."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluiceway import MLClient
from tests.integration.conftest import RunningServer
from tests.integration.helpers import (
    create_script_deployment,
    folder_input,
    invoke_body,
    unique,
    upload_folder,
    wait_for_job,
)
from tests.integration.test_cli import Cli

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

# Rows with the input's file name and row number, as a script that wants them returns them.
FRAME_SCRIPT = """\
import os
import pandas as pd

def init():
    pass

def run(mini_batch):
    frames = []
    for path in mini_batch:
        data = pd.read_csv(path)
        frames.append(pd.DataFrame({
            "file_name": os.path.basename(path),
            "row": range(len(data)),
            "double": data["x"] * 2,
        }))
    return pd.concat(frames, ignore_index=True)
"""

LIST_SCRIPT = """\
import os

def init():
    pass

def run(mini_batch):
    return [f"{os.path.basename(path)} has {os.path.getsize(path)} bytes" for path in mini_batch]
"""

# Three files: "weight" holds integers in one and floats in another, so the Parquet parts of
# one job have different types for it, which the join unifies.
INPUTS = {
    "a.csv": "x,y,weight\n0,1,1\n1,0,2\n2,1,3\n",
    "b.csv": "x,y,weight\n10,0,0.5\n11,1,1.5\n",
    "c.csv": "x,y,weight\n5,5,7\n",
}
ROWS = 6


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def ml_client(server: RunningServer) -> Iterator[MLClient]:
    with MLClient(endpoint=server.url, token=server.token) as client:
        yield client


def _inputs(http: httpx.Client, tmp_path: Path) -> str:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name, text in INPUTS.items():
        (folder / name).write_text(text)
    return upload_folder(http, folder, f"inputs/{unique('formats')}")


def _mlflow_model(folder: Path) -> Path:
    """A scikit-learn MLflow model (pickled, as ``mlflow.sklearn`` saves it): 2x + 0y."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        ColumnTransformer([("xy", "passthrough", ["x", "y"])]), LinearRegression()
    )
    model.fit(pd.DataFrame({"x": [0, 1, 2, 3], "y": [1, 0, 1, 0]}), [0.0, 2.0, 4.0, 6.0])
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "MLmodel").write_text(
        "flavors:\n"
        "  python_function: {loader_module: mlflow.sklearn, model_path: model.pkl}\n"
        "  sklearn: {serialization_format: pickle, pickled_model: model.pkl}\n"
    )
    return folder


def _mlflow_deployment(
    http: httpx.Client, tmp_path: Path, endpoint: str, deployment: str, settings: dict[str, Any]
) -> None:
    pytest.importorskip("sklearn")
    model_uri = upload_folder(http, _mlflow_model(tmp_path / deployment), f"models/{endpoint}")
    name = unique("model")
    r = http.post("/models", json={"name": name, "type": "mlflow_model", "path": model_uri})
    assert r.status_code == 201, r.text
    r = http.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint})
    assert r.status_code in (200, 201), r.text
    body = {
        "name": deployment,
        "endpoint_name": endpoint,
        "model": f"azureml:{name}:1",
        "settings": {"mini_batch_size": 1, **settings},
    }
    r = http.put(f"/batch-endpoints/{endpoint}/deployments/{deployment}", json=body)
    assert r.status_code == 201, r.text


def _run_job(
    http: httpx.Client, ml_client: MLClient, endpoint: str, deployment: str, data: str, to: Path
) -> Path:
    """Invoke, wait, download with the SDK; the downloaded ``score`` folder."""
    r = http.post(
        f"/endpoints/{endpoint}/jobs",
        json=invoke_body({"data": folder_input(data)}),
        headers={"azureml-model-deployment": deployment},
    )
    assert r.status_code in (200, 201, 202), r.text
    job = wait_for_job(http, r.json()["name"])
    assert job["status"] == "Completed", job
    ml_client.jobs.download(job["name"], download_path=to, output_name="score")
    return to / "named-outputs" / "score"


def test_an_mlflow_deployment_writes_one_parquet_file_with_the_inputs_columns(
    http: httpx.Client, ml_client: MLClient, tmp_path: Path
) -> None:
    endpoint, deployment = unique("formats"), "parquet"
    _mlflow_deployment(
        http,
        tmp_path,
        endpoint,
        deployment,
        {"output_format": "parquet", "include_input_columns": True},
    )
    shown = http.get(f"/batch-endpoints/{endpoint}/deployments/{deployment}").json()
    assert shown["settings"]["output_format"] == "parquet"
    assert shown["settings"]["include_input_columns"] is True

    score = _run_job(http, ml_client, endpoint, deployment, _inputs(http, tmp_path), tmp_path)

    assert sorted(p.name for p in score.iterdir()) == ["predictions.parquet"]
    parquet = pq.ParquetFile(score / "predictions.parquet")  # one valid file, one footer
    assert parquet.metadata.num_rows == ROWS
    assert parquet.schema_arrow.field("weight").type == pa.float64()  # int and float parts
    table = pd.read_parquet(score / "predictions.parquet")
    assert list(table.columns) == ["row", "prediction", "file_name", "x", "y", "weight"]
    table = table.sort_values(["file_name", "row"]).reset_index(drop=True)
    assert table["file_name"].tolist() == ["a.csv"] * 3 + ["b.csv"] * 2 + ["c.csv"]
    assert table["row"].tolist() == [0, 1, 2, 0, 1, 0]
    assert table["x"].tolist() == [0, 1, 2, 10, 11, 5]
    assert table["weight"].tolist() == [1.0, 2.0, 3.0, 0.5, 1.5, 7.0]
    assert table["prediction"].round(6).tolist() == [0.0, 2.0, 4.0, 20.0, 22.0, 10.0]


def test_an_mlflow_deployment_writes_json_lines(
    http: httpx.Client, ml_client: MLClient, tmp_path: Path
) -> None:
    endpoint, deployment = unique("formats"), "jsonl"
    _mlflow_deployment(http, tmp_path, endpoint, deployment, {"output_format": "jsonl"})

    score = _run_job(http, ml_client, endpoint, deployment, _inputs(http, tmp_path), tmp_path)

    lines = (score / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == ROWS
    assert all(set(json.loads(line)) == {"row", "prediction", "file_name"} for line in lines)
    table = pd.read_json(score / "predictions.jsonl", lines=True)
    assert sorted(zip(table["file_name"], table["row"], strict=True))[:2] == [
        ("a.csv", 0),
        ("a.csv", 1),
    ]


def test_scoring_scripts_results_as_parquet_and_json_lines(
    http: httpx.Client, ml_client: MLClient, tmp_path: Path
) -> None:
    data = _inputs(http, tmp_path)
    endpoint, other = unique("formats"), unique("formats")
    (tmp_path / "frame").mkdir()
    (tmp_path / "list").mkdir()
    create_script_deployment(
        http,
        tmp_path / "frame",
        endpoint,
        "frame",
        script=FRAME_SCRIPT,
        settings={"mini_batch_size": 2, "output_format": "parquet", "output_file_name": "s.pq"},
    )
    score = _run_job(http, ml_client, endpoint, "frame", data, tmp_path / "frame-out")
    table = pq.read_table(score / "s.pq").to_pandas()
    assert list(table.columns) == ["file_name", "row", "double"]
    assert len(table) == ROWS
    assert sorted(table["double"].tolist()) == [0, 2, 4, 10, 20, 22]

    create_script_deployment(
        http,
        tmp_path / "list",
        other,
        "list",
        script=LIST_SCRIPT,
        settings={"output_format": "jsonl"},
    )
    score = _run_job(http, ml_client, other, "list", data, tmp_path / "list-out")
    rows = [json.loads(line) for line in (score / "predictions.jsonl").read_text().splitlines()]
    assert sorted(rows, key=lambda r: r["result"]) == [
        {"result": f"{name} has {len(text)} bytes"} for name, text in sorted(INPUTS.items())
    ]


def test_a_format_that_does_not_exist_is_refused_with_the_accepted_ones(
    http: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("formats")
    http.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint}).raise_for_status()
    body = {
        "name": "bad",
        "endpoint_name": endpoint,
        "model": "azureml:whatever:1",
        "settings": {"output_format": "csv"},
    }
    r = http.put(f"/batch-endpoints/{endpoint}/deployments/bad", json=body)
    assert r.status_code == 400, r.text
    message = r.text
    assert "output_format" in message and "'csv'" in message
    assert "text, parquet, jsonl" in message

    body["settings"] = {"include_input_columns": True}
    r = http.put(f"/batch-endpoints/{endpoint}/deployments/bad", json=body)
    assert r.status_code == 400, r.text
    assert "include_input_columns needs settings.output_format parquet or jsonl" in r.text
    assert http.get(f"/batch-endpoints/{endpoint}/deployments/bad").status_code == 404


def test_a_scoring_script_cannot_ask_for_the_input_columns(
    http: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("formats")
    with pytest.raises(AssertionError, match="include_input_columns applies to MLflow"):
        create_script_deployment(
            http,
            tmp_path,
            endpoint,
            "script",
            settings={"output_format": "parquet", "include_input_columns": True},
        )


def test_the_cli_refuses_a_format_that_does_not_exist(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", server.url)
    monkeypatch.setenv("SLUICEWAY_TOKEN", server.token)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deployment.yml").write_text(
        f"name: bad\nendpoint_name: {unique('formats')}\ntype: model\n"
        "model: azureml:whatever:1\nsettings:\n  output_format: xlsx\n"
    )
    err = Cli(capsys).fails("batch-deployment", "create", "-f", "deployment.yml")
    assert "settings.output_format 'xlsx' is not accepted" in err
    assert "text, parquet, jsonl" in err


def test_a_parquet_output_in_an_s3_datastore(tmp_path: Path) -> None:
    """The join writes one Parquet file into a remote datastore, as it writes Azure's text."""
    from tests.integration import storage_services as svc
    from tests.integration.conftest import start_server, stop_server

    bucket = svc.make_bucket("formats")
    default = {k: v for k, v in svc.s3_datastore_yaml("x", bucket).items() if k != "name"}
    env = {**svc.server_env(), "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(default)}
    server = start_server(tmp_path / "home", extra_env=env)
    try:
        with server.client() as client:
            (tmp_path / "dep").mkdir()
            create_script_deployment(
                client,
                tmp_path / "dep",
                "s3-parquet",
                "dep",
                script=FRAME_SCRIPT,
                settings={"mini_batch_size": 1, "output_format": "parquet"},
            )
            data = _inputs(client, tmp_path)
            r = client.post(
                "/endpoints/s3-parquet/jobs", json=invoke_body({"d": folder_input(data)})
            )
            assert r.status_code == 201, r.text
            job = wait_for_job(client, r.json()["name"])
            assert job["status"] == "Completed", job
        content = svc.s3_filesystem().cat(
            f"{bucket}/azureml/{job['name']}/score/predictions.parquet"
        )
        table = pq.read_table(pa.BufferReader(content))
        assert table.num_rows == ROWS
        assert table.column_names == ["file_name", "row", "double"]
    finally:
        stop_server(server)
