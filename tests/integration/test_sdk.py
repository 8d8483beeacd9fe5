"""The SDK against a real server: the reference page's Python code with only the import changed."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluiceway import (
    BatchDeployment,
    BatchEndpoint,
    CodeConfiguration,
    Data,
    Input,
    MLClient,
    Model,
    Output,
    load_batch_deployment,
    load_batch_endpoint,
    load_data,
)
from sluiceway.constants import AssetTypes
from sluiceway.errors import AuthenticationError, ResourceNotFoundError, ValidationError
from sluiceway.sdk import JobFailedError
from sluiceway.sdk.uploads import scan
from tests.integration.conftest import RunningServer
from tests.integration.helpers import ECHO_SCRIPT, unique, write_numbered_files


class CountingTransport(httpx.HTTPTransport):
    """The real network transport, remembering which requests went out."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return super().handle_request(request)


def quiet(client: MLClient) -> list[str]:
    lines: list[str] = []
    client.jobs._out = lines.append
    return lines


def predictions(folder: Path) -> list[str]:
    return sorted((folder / "predictions.csv").read_text().splitlines())


@pytest.fixture
def ml_client(server: RunningServer) -> Iterator[MLClient]:
    with MLClient(endpoint=server.url, token=server.token) as client:
        quiet(client)
        yield client


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Azure-style files: data, a model folder, scoring code and the YAML that names them."""
    write_numbered_files(tmp_path / "data", 5)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.txt").write_text("1\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text(ECHO_SCRIPT)
    return tmp_path


def deploy_echo(ml_client: MLClient, project: Path, endpoint: str) -> None:
    (project / "endpoint.yml").write_text(
        textwrap.dedent(
            f"""
            $schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json
            name: {endpoint}
            description: Echoes its input files
            auth_mode: aad_token
            """
        )
    )
    (project / "deployment.yml").write_text(
        textwrap.dedent(
            f"""
            $schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
            name: echo-dpl
            endpoint_name: {endpoint}
            type: model
            model:
              name: {endpoint}-model
              path: model
            code_configuration:
              code: code
              scoring_script: score.py
            environment:
              image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
              conda_file: conda.yaml
            compute: azureml:batch-cluster
            resources:
              instance_count: 1
            settings:
              mini_batch_size: 2
              output_action: append_row
              output_file_name: predictions.csv
              retry_settings:
                max_retries: 1
                timeout: 30
            """
        )
    )
    (project / "conda.yaml").write_text("name: env\ndependencies: [python=3.11]\n")
    endpoint_entity = load_batch_endpoint(project / "endpoint.yml")
    ml_client.batch_endpoints.begin_create_or_update(endpoint_entity).result()
    deployment = load_batch_deployment(project / "deployment.yml")
    ml_client.batch_deployments.begin_create_or_update(deployment).result()


def test_the_reference_page_with_every_input_form(
    ml_client: MLClient, project: Path, tmp_path: Path
) -> None:
    endpoint_name = unique("sdk-ref")
    deploy_echo(ml_client, project, endpoint_name)
    endpoint = ml_client.batch_endpoints.get(endpoint_name)
    assert endpoint.defaults.deployment_name == "echo-dpl"
    assert endpoint.scoring_uri is not None
    assert endpoint.scoring_uri.endswith(f"/endpoints/{endpoint_name}/jobs")
    deployment = ml_client.batch_deployments.get("echo-dpl", endpoint_name)
    assert deployment.model == f"azureml:{endpoint_name}-model:1"
    assert deployment.mini_batch_size == 2

    # Input data from a data asset
    dataset_name = unique("heart-dataset-unlabeled")
    (project / "data.yml").write_text(
        f"name: {dataset_name}\ntype: uri_folder\npath: data\ndescription: An unlabeled dataset.\n"
    )
    ml_client.data.create_or_update(load_data(project / "data.yml"))
    dataset = ml_client.data.get(name=dataset_name, label="latest")
    assert dataset.id is not None
    expected = sorted(f"file-{i:02d}.txt value-{i}" for i in range(5))

    asset_job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint_name, inputs={"heart_dataset": Input(path=dataset.id)}
    )
    ml_client.jobs.stream(asset_job.name)
    ml_client.jobs.download(name=asset_job.name, output_name="score", download_path=tmp_path / "a")
    rows = predictions(tmp_path / "a" / "named-outputs" / "score")
    assert sorted(" ".join(r.split()[:2]) for r in rows) == expected

    # Input data from a data store, with the output in a place of our own
    default_ds = ml_client.datastores.get_default()
    assert default_ds.name == "workspaceblobstore"
    assert dataset.path is not None
    assert dataset.path.startswith("azureml://datastores/workspaceblobstore/paths/")
    data_path = dataset.path.removeprefix("azureml://datastores/workspaceblobstore/paths/")
    output_path = f"batch-jobs/{unique('out')}"
    store_job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint_name,
        input=Input(type=AssetTypes.URI_FOLDER, path=f"{default_ds.id}/paths/{data_path}"),
        outputs={
            "score": Output(type=AssetTypes.URI_FOLDER, path=f"{default_ds.id}/paths/{output_path}")
        },
        params_override=[{"mini_batch_size": "5"}, {"output_file_name": "echo.csv"}],
    )
    ml_client.jobs.stream(store_job.name)
    finished = ml_client.jobs.get(store_job.name)
    assert finished.status == "Completed"
    assert finished.progress.mini_batches_total == 1
    assert finished.outputs["score"].path is not None
    assert output_path in finished.outputs["score"].path
    ml_client.jobs.download(store_job.name, download_path=tmp_path / "s", output_name="score")
    assert (tmp_path / "s" / "named-outputs" / "score" / "echo.csv").is_file()

    # A local folder, uploaded first; the short form with input=
    local_job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint_name, deployment_name="echo-dpl", input=str(project / "data")
    )
    assert local_job.deployment_name == "echo-dpl"
    ml_client.jobs.stream(local_job.name)
    (scoring_job,) = ml_client.jobs.list(parent_job_name=local_job.name)
    ml_client.jobs.download(name=scoring_job.name, download_path=tmp_path / "l", all=True)
    rows = predictions(tmp_path / "l" / "named-outputs" / "score")
    assert len(rows) == 5
    assert any((tmp_path / "l" / "artifacts").rglob("*.txt"))

    jobs = {j.name for j in ml_client.batch_endpoints.list_jobs(endpoint_name)}
    assert {asset_job.name, store_job.name, local_job.name} <= jobs
    assert {j.name for j in ml_client.batch_deployments.list_jobs(endpoint_name, name="echo-dpl")}
    assert {j.name for j in ml_client.jobs.list(endpoint_name=endpoint_name)} == jobs


def test_local_content_is_uploaded_once(server: RunningServer, project: Path) -> None:
    transport = CountingTransport()
    with MLClient(endpoint=server.url, token=server.token, transport=transport) as client:
        check_uploaded_once(client, transport, project)


def check_uploaded_once(client: MLClient, transport: CountingTransport, project: Path) -> None:
    # Unique content, so that no earlier test uploaded it.
    (project / "data" / "marker.txt").write_text(unique("marker"))
    first = client.data.create_or_update(Data(name=unique("once"), path=str(project / "data")))
    file_puts = [r for r in transport.requests if r[0] == "PUT" and "/files/" in r[1]]
    assert len(file_puts) == 6
    second = client.data.create_or_update(Data(name=unique("twice"), path=str(project / "data")))
    assert first.path == second.path
    assert first.path == scan(project / "data").uri
    assert len([r for r in transport.requests if r[0] == "PUT" and "/files/" in r[1]]) == 6


def test_python_entities_and_set_default(ml_client: MLClient, project: Path) -> None:
    endpoint_name = unique("sdk-py")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint_name)).result()
    model = ml_client.models.create_or_update(
        Model(name=unique("echo"), path=project / "model", type=AssetTypes.CUSTOM_MODEL)
    )
    for name in ("first", "second"):
        ml_client.batch_deployments.begin_create_or_update(
            BatchDeployment(
                name=name,
                endpoint_name=endpoint_name,
                model=model,
                code_configuration=CodeConfiguration(
                    code=project / "code", scoring_script="score.py"
                ),
                mini_batch_size=3,
            ),
            set_default=name == "second",
        ).result()
    assert ml_client.batch_endpoints.get(endpoint_name).defaults.deployment_name == "second"
    assert {d.name for d in ml_client.batch_deployments.list(endpoint_name)} == {
        "first",
        "second",
    }
    # Azure's docs change the default through the endpoint
    endpoint = ml_client.batch_endpoints.get(endpoint_name)
    endpoint.defaults.deployment_name = "first"
    ml_client.batch_endpoints.begin_create_or_update(endpoint).result()
    assert ml_client.batch_endpoints.get(endpoint_name).defaults.deployment_name == "first"
    ml_client.batch_deployments.begin_delete("second", endpoint_name).wait()
    ml_client.batch_endpoints.begin_delete(endpoint_name).wait()
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_endpoints.get(endpoint_name)


def test_a_failed_job_raises_with_its_error(ml_client: MLClient, project: Path) -> None:
    endpoint_name = unique("sdk-fail")
    (project / "code" / "score.py").write_text(
        "def init():\n    pass\n\ndef run(mini_batch):\n    raise ZeroDivisionError('no luck')\n"
    )
    deploy_echo(ml_client, project, endpoint_name)
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint_name,
        input=str(project / "data"),
        params_override=[{"retry_settings.max_retries": 0}, {"error_threshold": 0}],
    )
    lines = quiet(ml_client)
    with pytest.raises(JobFailedError) as info:
        ml_client.jobs.stream(job.name)
    assert info.value.job.status == "Failed"
    assert info.value.job.error is not None
    assert f"Job {job.name} failed" in info.value.message
    assert lines[-2:] == ["Status: Failed", f"Error: {info.value.job.error.message}"]


def test_server_errors_arrive_as_sluiceway_errors(
    ml_client: MLClient, server: RunningServer
) -> None:
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_endpoints.get(unique("missing"))
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_endpoints.invoke(
            endpoint_name=unique("missing"),
            input="azureml://datastores/workspaceblobstore/paths/x/",
        )
    with pytest.raises(ValidationError):
        ml_client.data.create_or_update(
            Data(name=unique("d"), path="azureml://datastores/workspaceblobstore/paths/nope/")
        )
    with (
        MLClient(endpoint=server.url, token="not-a-token") as stranger,
        pytest.raises(AuthenticationError),
    ):
        stranger.datastores.list()


def test_the_client_finds_the_local_server_by_itself(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SLUICEWAY_ENDPOINT", raising=False)
    monkeypatch.delenv("SLUICEWAY_TOKEN", raising=False)
    monkeypatch.setenv("SLUICEWAY_HOME", str(server.home))
    monkeypatch.chdir(tmp_path)
    with MLClient.from_config() as client:
        assert client.endpoint == server.url
        assert client.datastores.get_default().name == "workspaceblobstore"
