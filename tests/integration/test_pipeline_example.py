"""The shipped example, ``examples/batch-scoring-with-preprocessing``, deployed with the CLI and
invoked from the CLI, the SDK and REST with the literal ``score_mode`` in each of the reference
page's forms; its ``scores`` land at the default path and at an overridden one."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluiceway import Input, MLClient, Output
from sluiceway.cli.main import main
from tests.integration.conftest import RunningServer
from tests.integration.helpers import DS, invoke_body, unique, upload_folder, wait_for_job

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "batch-scoring-with-preprocessing"
DATA = EXAMPLE / "data" / "unlabeled"
CLEAN_ROWS = 30  # 36 rows in the data, 6 of them incomplete
APPEND_HEADER = [
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
    "slope", "ca", "thal", "prediction", "probability",
]  # fmt: skip
PREDICTION_ONLY_HEADER = ["file", "row", "prediction"]


@dataclass(frozen=True)
class Sluice:
    """Runs ``sluice`` in-process against the test server."""

    server: RunningServer

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        flags = ["--endpoint", self.server.url, "--token", self.server.token]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, *flags])
        return code, out.getvalue(), err.getvalue()

    def ok(self, *argv: str) -> str:
        code, out, err = self.run(*argv)
        assert code == 0, f"sluice {' '.join(argv)} exited {code}: {err}"
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self.ok(*argv))


@dataclass(frozen=True)
class Deployed:
    endpoint: str
    sluice: Sluice


@pytest.fixture(scope="module")
def deployed(server: RunningServer) -> Deployed:
    """The example's model, pipeline component, endpoint and deployment, made with the CLI."""
    sluice = Sluice(server)
    model = sluice.json("model", "create", "-f", str(EXAMPLE / "model.yml"))
    assert (model["name"], model["type"]) == ("heart-classifier-linear", "custom_model")
    component = sluice.json("component", "create", "-f", str(EXAMPLE / "pipeline.yml"))
    assert (component["name"], component["type"]) == (
        "batch_scoring_with_preprocessing",
        "pipeline",
    )
    assert list(component["jobs"]) == ["prepare", "score"]
    shown = sluice.json("component", "show", "-n", component["name"], "-v", component["version"])
    assert shown["id"] == component["id"]
    listed = sluice.json("component", "list", "-n", component["name"])
    assert component["version"] in [c["version"] for c in listed]
    score = sluice.json("component", "create", "-f", str(EXAMPLE / "components/score/score.yml"))
    assert (score["name"], score["type"]) == ("uci_heart_score", "command")
    assert score["code"].startswith(
        "azureml://datastores/workspaceblobstore/paths/azureml-registry/sha256/"
    )
    assert score["inputs"]["score_mode"] == {
        "type": "string",
        "optional": False,
        "default": "append",
        "enum": ["append", "prediction_only"],
    }
    latest = sluice.json("component", "show", "-n", "uci_heart_score", "--label", "latest")
    assert latest["version"] == score["version"]
    assert "uci_heart_score" in [c["name"] for c in sluice.json("component", "list")]

    endpoint = unique("heart-prepros")
    sluice.json("batch-endpoint", "create", "-f", str(EXAMPLE / "endpoint.yml"), "-n", endpoint)
    deployment = sluice.json(
        "batch-deployment", "create", "-f", str(EXAMPLE / "deployment.yml"),
        "--endpoint-name", endpoint, "--set-default",
    )  # fmt: skip
    assert deployment["type"] == "pipeline"
    # The deployment's local pipeline.yml is the component registered above: no new version.
    assert deployment["component"] == f"azureml:{component['name']}:{component['version']}"
    assert deployment["settings"]["continue_on_step_failure"] is False
    assert deployment["settings"]["default_compute"] == "batch-cluster"
    return Deployed(endpoint, sluice)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def scores_at(client: httpx.Client, job: str) -> list[list[str]]:
    listing = client.get(f"/jobs/{job}/outputs/scores").raise_for_status().json()
    assert [f["path"] for f in listing["files"]] == ["predictions.csv"]
    return read_csv(client.get(f"/jobs/{job}/outputs/scores/files/predictions.csv").text)


def check_append(rows: list[list[str]]) -> None:
    assert rows[0] == APPEND_HEADER
    assert len(rows) == CLEAN_ROWS + 1
    assert {row[-2] for row in rows[1:]} <= {"0", "1"}
    assert all(0 <= float(row[-1]) <= 1 for row in rows[1:])


def check_prediction_only(rows: list[list[str]]) -> None:
    assert rows[0] == PREDICTION_ONLY_HEADER
    assert len(rows) == CLEAN_ROWS + 1
    assert {row[0] for row in rows[1:]} == {"heart-01.csv", "heart-02.csv", "heart-03.csv"}


def completed(client: httpx.Client, name: str) -> dict[str, Any]:
    job = wait_for_job(client, name)
    assert job["status"] == "Completed", job["error"]
    assert [(s["name"], s["status"], s["exit_code"]) for s in job["steps"]] == [
        ("prepare", "Completed", 0),
        ("score", "Completed", 0),
    ]
    return job


def test_cli_invokes_with_a_file_of_typed_inputs(
    deployed: Deployed, client: httpx.Client, tmp_path: Path
) -> None:
    """``--file inputs.yml`` with ``score_mode: {type: string, default: append}``."""
    sluice = deployed.sluice
    job = sluice.json(
        "batch-endpoint", "invoke", "-n", deployed.endpoint, "-f", str(EXAMPLE / "inputs.yml")
    )
    assert job["inputs"]["score_mode"]["value"] == "append"
    code, out, err = sluice.run("job", "stream", "-n", job["name"])
    assert code == 0, err
    assert "Step prepare: Completed (exit code 0" in out
    assert "Step score: Completed (exit code 0" in out
    shown = sluice.json("job", "show", "-n", job["name"])
    assert [s["status"] for s in shown["steps"]] == ["Completed", "Completed"]
    assert shown["outputs"]["scores"]["path"].endswith(f"/azureml/{job['name']}/scores/")
    sluice.ok("job", "download", "-n", job["name"], "--output-name", "scores", "-p", str(tmp_path))
    check_append(read_csv((tmp_path / "named-outputs/scores/predictions.csv").read_text()))
    stdout = client.get(f"/jobs/{job['name']}/logs/steps/prepare/stdout.txt").text
    assert stdout == "prepared 30 rows, dropped 6 incomplete rows\n"


def test_cli_invokes_with_a_plain_scalar_and_an_output_path(
    deployed: Deployed, client: httpx.Client, tmp_path: Path
) -> None:
    """``--file`` with ``score_mode: prediction_only`` as a plain scalar, and the scores
    written to a path of our choosing."""
    folder = unique("scores-elsewhere")
    inputs = tmp_path / "inputs.yml"
    inputs.write_text(
        "inputs:\n"
        f"  input_data: {{type: uri_folder, path: {DATA}}}\n"
        "  score_mode: prediction_only\n"
        "outputs:\n"
        f"  scores: {{type: uri_folder, path: {DS}/{folder}/}}\n"
    )
    job = deployed.sluice.json(
        "batch-endpoint", "invoke", "-n", deployed.endpoint, "-f", str(inputs)
    )
    assert job["inputs"]["score_mode"]["value"] == "prediction_only"
    done = completed(client, job["name"])
    assert done["outputs"]["scores"]["path"] == f"{DS}/{folder}/"
    text = client.get(f"/datastores/workspaceblobstore/files/{folder}/predictions.csv").text
    check_prediction_only(read_csv(text))


def test_cli_invokes_with_set(deployed: Deployed, client: httpx.Client) -> None:
    """``--set inputs.score_mode.type string inputs.score_mode.default append``."""
    job = deployed.sluice.json(
        "batch-endpoint", "invoke", "-n", deployed.endpoint,
        "--set", "inputs.input_data.type", "uri_folder", "inputs.input_data.path", str(DATA),
        "inputs.score_mode.type", "string", "inputs.score_mode.default", "append",
    )  # fmt: skip
    completed(client, job["name"])
    check_append(scores_at(client, job["name"]))


def test_cli_refuses_a_score_mode_the_component_does_not_accept(deployed: Deployed) -> None:
    code, _, err = deployed.sluice.run(
        "batch-endpoint", "invoke", "-n", deployed.endpoint,
        "--set", "inputs.input_data.path", str(DATA), "inputs.score_mode", "sideways",
    )  # fmt: skip
    assert code == 1
    assert "Input 'score_mode'" in err and "'sideways' is not accepted" in err
    assert "accepted: append, prediction_only" in err


def test_sdk_invokes_with_an_input_literal(
    deployed: Deployed, server: RunningServer, tmp_path: Path
) -> None:
    """``Input(type="string", default="append")``, with an ``Output`` path override."""
    folder = unique("sdk-scores")
    with MLClient(endpoint=server.url, token=server.token) as ml_client:
        lines: list[str] = []
        ml_client.jobs._out = lines.append
        job = ml_client.batch_endpoints.invoke(
            endpoint_name=deployed.endpoint,
            inputs={
                "input_data": Input(type="uri_folder", path=str(DATA)),
                "score_mode": Input(type="string", default="append"),
            },
            outputs={"scores": Output(type="uri_folder", path=f"{DS}/{folder}/")},
        )
        ml_client.jobs.stream(job.name)
        assert "Step score: Completed" in "\n".join(lines)
        done = ml_client.jobs.get(job.name)
        assert done.status == "Completed"
        assert [(s.name, s.exit_code) for s in done.steps] == [("prepare", 0), ("score", 0)]
        assert all(s.duration_seconds is not None for s in done.steps)
        ml_client.jobs.download(job.name, download_path=tmp_path, output_name="scores")
    check_append(read_csv((tmp_path / "named-outputs/scores/predictions.csv").read_text()))


def test_rest_invokes_with_a_literal_input(deployed: Deployed, client: httpx.Client) -> None:
    """``{"JobInputType": "Literal", "Value": "prediction_only"}``."""
    data = upload_folder(client, DATA, f"data/{unique('heart')}")
    body = invoke_body(
        {
            "input_data": {"JobInputType": "UriFolder", "Uri": data},
            "score_mode": {"JobInputType": "Literal", "Value": "prediction_only"},
        }
    )
    r = client.post(f"/endpoints/{deployed.endpoint}/jobs", json=body)
    assert r.status_code == 201, r.text
    job = completed(client, r.json()["name"])
    assert job["properties"]["InputData"]["score_mode"] == {
        "JobInputType": "Literal",
        "Value": "prediction_only",
    }
    check_prediction_only(scores_at(client, job["name"]))
    # The default: score_mode left out is append.
    r = client.post(
        f"/endpoints/{deployed.endpoint}/jobs",
        json=invoke_body({"input_data": {"JobInputType": "UriFolder", "Uri": data}}),
    )
    assert r.status_code == 201, r.text
    check_append(scores_at(client, completed(client, r.json()["name"])["name"]))
