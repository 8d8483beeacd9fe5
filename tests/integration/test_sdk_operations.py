"""Each ``MLClient`` operation group against a real server, checked against what the server keeps.

tests/integration/test_sdk.py runs the reference page end to end; this file covers the rest of
each operation: local uploads, the entities' fields and ``_to_dict()``, defaults, model
references, inline models, the deployment settings, invoke's input types, job listing filters,
``stream`` and ``download``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluiceway import (
    BatchDeployment,
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Data,
    Environment,
    Input,
    MLClient,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from sluiceway.constants import AssetTypes, BatchDeploymentOutputAction
from sluiceway.errors import ResourceNotFoundError, ValidationError
from sluiceway.sdk.uploads import Uploader, scan
from tests.integration.conftest import RunningServer
from tests.integration.helpers import (
    DS,
    create_script_deployment,
    invoke_body,
    unique,
    upload_folder,
    wait_for_job,
    write_numbered_files,
)

DRIVER = "def init():\n    pass\n\ndef run(mini_batch):\n    return mini_batch\n"


@pytest.fixture
def ml_client(server: RunningServer) -> Iterator[MLClient]:
    with MLClient(endpoint=server.url, token=server.token) as client:
        yield client


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


class RecordingTransport(httpx.HTTPTransport):
    """The real network transport, remembering which requests went out."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return super().handle_request(request)

    def file_puts(self) -> int:
        return sum(1 for m, p in self.requests if m == "PUT" and p.startswith("/datastores/"))


def make_code(folder: Path, script: str = DRIVER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch_driver.py").write_text(script)
    return folder


def make_mlflow_model(folder: Path) -> Path:
    """A folder an ``mlflow_model`` may point at (its deployments need no scoring script)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.pkl").write_text(unique("weights"))
    return folder


def model_deployment(value: object) -> BatchDeployment:
    """A deployment the SDK returned, as the model deployment it must be."""
    assert isinstance(value, BatchDeployment), value
    return value


def workspace_scope(ml_client: MLClient) -> str:
    """The ARM prefix of the server's resource ids."""
    default = ml_client.datastores.get_default()
    assert default.id is not None
    return default.id.rsplit("/datastores/", 1)[0]


# -- data, models, datastores ------------------------------------------------------------


def test_data_create_uploads_a_local_folder_and_registers_it(
    ml_client: MLClient, http: httpx.Client, tmp_path: Path
) -> None:
    name = unique("heart-dataset-unlabeled")
    folder = tmp_path / "heart-classifier-mlflow" / "data"
    folder.mkdir(parents=True)
    content = f"age\n{unique('row')}\n"
    (folder / "heart.csv").write_text(content)
    created = ml_client.data.create_or_update(
        Data(
            path=str(folder),
            type=AssetTypes.URI_FOLDER,
            description="An unlabeled dataset for heart classification",
            name=name,
        )
    )
    digest = scan(folder).digest
    assert created.path == f"{DS}/LocalUpload/{digest}/data/"
    uploaded = http.get(f"/datastores/workspaceblobstore/files/LocalUpload/{digest}/data/heart.csv")
    assert uploaded.text == content
    assert (created.name, created.version, created.type) == (name, "1", "uri_folder")
    assert created.description == "An unlabeled dataset for heart classification"
    assert created.id == f"{workspace_scope(ml_client)}/data/{name}/versions/1"
    assert created.creation_context is not None
    assert created.creation_context.created_by == http.get("/whoami").json()["name"]
    # _to_dict is exactly the server's JSON
    assert created._to_dict() == http.get(f"/data/{name}/versions/1").json()

    latest = ml_client.data.get(name=name, label="latest")
    assert latest.path == created.path
    assert ml_client.data.get(name, version="1").version == "1"
    assert name in [d.name for d in ml_client.data.list()]
    assert [d.version for d in ml_client.data.list(name=name)] == ["1"]


def test_data_create_keeps_remote_paths_and_versions(
    ml_client: MLClient, http: httpx.Client, tmp_path: Path
) -> None:
    write_numbered_files(tmp_path / "files", 1)
    remote = upload_folder(http, tmp_path / "files", unique("remote"))
    name = unique("remote-data")
    created = ml_client.data.create_or_update(Data(name=name, path=remote, version=4))
    assert (created.path, created.version) == (remote, "4")
    assert http.get(f"/data/{name}/versions/4").json()["path"] == remote
    with pytest.raises(ResourceNotFoundError):
        ml_client.data.get(name, version="1")
    with pytest.raises(ResourceNotFoundError):
        ml_client.data.get(unique("missing"))


def test_models(ml_client: MLClient, http: httpx.Client, tmp_path: Path) -> None:
    model_dir = make_mlflow_model(tmp_path / "model")
    name = unique("heart-classifier")
    model = ml_client.models.create_or_update(
        Model(name=name, path=model_dir, type=AssetTypes.MLFLOW_MODEL)
    )
    assert (model.name, model.version, model.type) == (name, "1", "mlflow_model")
    assert model.path.startswith(f"{DS}/azureml-registry/sha256/")  # a copy no caller can write
    assert model.path.endswith("/model/")
    assert model._to_dict() == http.get(f"/models/{name}/versions/1").json()
    assert ml_client.models.get(name, label="latest").version == "1"
    again = ml_client.models.create_or_update(
        Model(name=name, path=model_dir, type=AssetTypes.MLFLOW_MODEL)
    )
    assert again.version == "2"
    assert [m.version for m in ml_client.models.list(name=name)] == ["2", "1"]


def test_datastores(ml_client: MLClient, http: httpx.Client) -> None:
    default = ml_client.datastores.get_default()
    on_server = http.get("/datastores/workspaceblobstore").json()
    assert default.name == "workspaceblobstore"
    assert default.is_default
    assert default.id == on_server["id"]
    assert [d.name for d in ml_client.datastores.list()] == [
        d["name"] for d in http.get("/datastores").json()
    ]
    assert ml_client.datastores.get("workspaceblobstore")._to_dict() == on_server
    with pytest.raises(ResourceNotFoundError):
        ml_client.datastores.get(unique("nostore"))


# -- uploads -----------------------------------------------------------------------------


def stored(http: httpx.Client, uri: str, relative: str = "") -> str:
    """A file's text on the server, by its datastore URI (and path under it)."""
    path = uri.removeprefix(f"{DS}/") + relative
    response = http.get(f"/datastores/workspaceblobstore/files/{path}")
    assert response.status_code == 200, (path, response.text)
    return response.text


def test_a_folder_is_uploaded_file_by_file_then_recorded(
    ml_client: MLClient, http: httpx.Client, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    marker = unique("content")
    (folder / "a.csv").write_text(marker)
    (folder / "sub" / "b.csv").write_text("2")
    (folder / "my file.csv").write_text("spaced")
    lines: list[str] = []
    uri = Uploader(ml_client.connection, report=lines.append).upload(folder)
    digest = scan(folder).digest
    assert uri == f"{DS}/LocalUpload/{digest}/data/"
    assert stored(http, uri, "a.csv") == marker
    assert stored(http, uri, "sub/b.csv") == "2"
    assert stored(http, uri, "my file.csv") == "spaced"
    assert http.get(f"/uploads/{digest}").json() == {"name": "data", "path": uri}
    assert lines[0].startswith(f"Uploading {folder} (3 files")


def test_a_file_is_uploaded_under_its_name_once(
    server: RunningServer, http: httpx.Client, tmp_path: Path
) -> None:
    one = tmp_path / "heart.csv"
    one.write_text(unique("row"))
    same_elsewhere = tmp_path / "elsewhere" / "heart.csv"
    same_elsewhere.parent.mkdir()
    same_elsewhere.write_text(one.read_text())
    renamed = tmp_path / "other.csv"
    renamed.write_text(one.read_text())
    transport = RecordingTransport()
    with MLClient(endpoint=server.url, token=server.token, transport=transport) as client:
        uploader = Uploader(client.connection)
        uri = uploader.upload(one)
        assert uri == f"{DS}/LocalUpload/{scan(one).digest}/heart.csv"
        assert stored(http, uri) == one.read_text()
        assert transport.file_puts() == 1
        # the same content under the same name, elsewhere on disk: not sent again
        assert uploader.upload(same_elsewhere) == uri
        assert transport.file_puts() == 1
        # the same content under another name is
        other = uploader.upload(renamed)
        assert other.endswith("/other.csv") and other != uri
        assert stored(http, other) == one.read_text()
        assert transport.file_puts() == 2


# -- endpoints ---------------------------------------------------------------------------


def test_endpoint_create_get_update_default_and_delete(
    ml_client: MLClient, http: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    name = unique("heart-classifier")
    poller = ml_client.batch_endpoints.begin_create_or_update(
        BatchEndpoint(name=name, description="A heart classifier")
    )
    assert poller.done()
    poller.wait()
    endpoint = poller.result()
    assert endpoint.scoring_uri == f"{server.url}/endpoints/{name}/jobs"
    assert endpoint.provisioning_state == "Succeeded"
    assert (endpoint.description, endpoint.auth_mode) == ("A heart classifier", "aad_token")
    assert endpoint.defaults.deployment_name is None
    assert endpoint._to_dict() == http.get(f"/batch-endpoints/{name}").json()

    model = ml_client.models.create_or_update(
        Model(name=unique("m"), path=make_mlflow_model(tmp_path / "m"), type="mlflow_model")
    )
    for deployment in ("dpl-1", "dpl-2"):
        ml_client.batch_deployments.begin_create_or_update(
            BatchDeployment(name=deployment, endpoint_name=name, model=model)
        ).result()
    assert ml_client.batch_endpoints.get(name).defaults.deployment_name == "dpl-1"
    # Azure's docs also change the default with a dict
    endpoint = ml_client.batch_endpoints.get(name)
    endpoint.defaults = {}
    endpoint.defaults["deployment_name"] = "dpl-2"
    updated = ml_client.batch_endpoints.begin_create_or_update(endpoint).result()
    assert updated.defaults.deployment_name == "dpl-2"
    assert updated.description == "A heart classifier"
    assert updated._to_dict() == http.get(f"/batch-endpoints/{name}").json()
    # A default the endpoint does not have is refused by the server
    endpoint.defaults.deployment_name = "dpl-9"
    with pytest.raises(ResourceNotFoundError, match="dpl-9"):
        ml_client.batch_endpoints.begin_create_or_update(endpoint)
    assert ml_client.batch_endpoints.get(name).defaults.deployment_name == "dpl-2"

    assert name in [e.name for e in ml_client.batch_endpoints.list()]
    assert ml_client.batch_endpoints.begin_delete(name).result() is None
    assert http.get(f"/batch-endpoints/{name}").status_code == 404
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_deployments.list(name)


# -- deployments -------------------------------------------------------------------------


def test_deployment_registers_an_inline_model_and_uploads_code(
    ml_client: MLClient, http: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("mnist-batch")
    model_name = unique("mnist-classifier-torch")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pt").write_text(unique("weights"))
    (tmp_path / "conda.yaml").write_text("name: env\ndependencies: [python=3.11]\n")
    deployment = BatchDeployment(
        name="mnist-torch-dpl",
        endpoint_name=endpoint,
        model=Model(name=model_name, path=model_dir),
        code_configuration=CodeConfiguration(
            code=make_code(tmp_path / "code"), scoring_script="batch_driver.py"
        ),
        environment=Environment(
            name="batch-torch-py38",
            conda_file=tmp_path / "conda.yaml",
            image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
        ),
        compute="batch-cluster",
        instance_count=2,
        max_concurrency_per_instance=2,
        mini_batch_size=10,
        output_action=BatchDeploymentOutputAction.APPEND_ROW,
        output_file_name="predictions.csv",
        retry_settings=BatchRetrySettings(max_retries=3, timeout=300),
        logging_level="info",
    )
    result = model_deployment(
        ml_client.batch_deployments.begin_create_or_update(deployment).result()
    )

    model = ml_client.models.get(model_name, version="1")
    assert model.path.startswith(f"{DS}/azureml-registry/sha256/")
    assert model.path.endswith("/model/")
    on_server = http.get(f"/batch-endpoints/{endpoint}/deployments/mnist-torch-dpl").json()
    assert result._to_dict() == on_server
    assert on_server["model"] == f"azureml:{model_name}:1"
    code = on_server["code_configuration"]
    assert code["scoring_script"] == "batch_driver.py"
    assert code["code"].startswith(f"{DS}/azureml-registry/sha256/")
    assert code["code"].endswith("/code/")
    assert http.get(f"/uploads/{scan(tmp_path / 'code').digest}").status_code == 200
    assert on_server["environment"]["conda_file"] == {
        "name": "env",
        "dependencies": ["python=3.11"],
    }
    assert on_server["compute"] == "batch-cluster"
    assert on_server["resources"]["instance_count"] == 2
    settings = on_server["settings"]
    assert settings["max_concurrency_per_instance"] == 2
    assert settings["mini_batch_size"] == 10
    assert settings["output_action"] == "append_row"
    assert settings["output_file_name"] == "predictions.csv"
    assert settings["retry_settings"] == {"max_retries": 3, "timeout": 300}
    assert settings["logging_level"] == "info"
    assert result.mini_batch_size == 10
    assert result.error_threshold == -1  # the server's default
    # The first deployment of an endpoint is its default
    assert ml_client.batch_endpoints.get(endpoint).defaults.deployment_name == "mnist-torch-dpl"

    # Deploying again reuses the model version instead of adding one; set_default moves it.
    deployment.name = "second"
    ml_client.batch_deployments.begin_create_or_update(deployment, set_default=True).result()
    assert [m.version for m in ml_client.models.list(name=model_name)] == ["1"]
    second = model_deployment(ml_client.batch_deployments.get("second", endpoint))
    assert second.model == f"azureml:{model_name}:1"
    assert ml_client.batch_endpoints.get(endpoint).defaults.deployment_name == "second"

    ml_client.batch_deployments.begin_delete("mnist-torch-dpl", endpoint).wait()
    ml_client.batch_deployments.begin_delete("second", endpoint).wait()
    assert ml_client.batch_deployments.list(endpoint) == []


def test_model_batch_deployment_with_settings_and_a_registered_model(
    ml_client: MLClient, http: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("heart")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    remote = upload_folder(http, make_mlflow_model(tmp_path / "m"), f"models/{endpoint}")
    model = ml_client.models.create_or_update(
        Model(name=unique("heart-classifier"), path=remote, type="mlflow_model")
    )
    result = ml_client.batch_deployments.begin_create_or_update(
        ModelBatchDeployment(
            name="heart-mlflow",
            endpoint_name=endpoint,
            model=model,
            settings=ModelBatchDeploymentSettings(
                mini_batch_size=5, instance_count=3, output_action="summary_only"
            ),
        )
    ).result()
    on_server = http.get(f"/batch-endpoints/{endpoint}/deployments/heart-mlflow").json()
    assert on_server["model"] == f"azureml:{model.name}:1"
    assert on_server["resources"]["instance_count"] == 3
    assert on_server["settings"]["mini_batch_size"] == 5
    assert on_server["settings"]["output_action"] == "summary_only"
    assert on_server.get("code_configuration") is None
    assert result._to_dict() == on_server


def test_model_references_are_normalised(
    ml_client: MLClient, http: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("heart")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    name = unique("heart-model")
    remote = upload_folder(http, make_mlflow_model(tmp_path / "m"), f"models/{name}")
    for _ in range(2):
        ml_client.models.create_or_update(Model(name=name, path=remote, type="mlflow_model"))
    scope = workspace_scope(ml_client)
    forms = [
        (f"azureml:{name}:1", 1),
        (f"{name}:1", 1),
        (name, 2),  # the latest version
        (f"{scope}/models/{name}/versions/1", 1),
    ]
    for given, version in forms:
        result = model_deployment(
            ml_client.batch_deployments.begin_create_or_update(
                BatchDeployment(name="dpl", endpoint_name=endpoint, model=given)
            ).result()
        )
        assert result.model == f"azureml:{name}:{version}", given
        shown = http.get(f"/batch-endpoints/{endpoint}/deployments/dpl").json()
        assert shown["model"] == f"azureml:{name}:{version}", given


def test_an_inline_model_dict_without_a_name_gets_one(
    ml_client: MLClient, http: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("heart")
    deployment = unique("dpl")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    model_dir = make_mlflow_model(tmp_path / "m")
    result = model_deployment(
        ml_client.batch_deployments.begin_create_or_update(
            BatchDeployment(
                name=deployment,
                endpoint_name=endpoint,
                model={"path": str(model_dir), "type": "mlflow_model"},
            )
        ).result()
    )
    registered = ml_client.models.get(f"{deployment}-model", version="1")
    assert registered.path.startswith(f"{DS}/azureml-registry/sha256/")
    assert registered.path.endswith("/m/")
    assert http.get(f"/uploads/{scan(model_dir).digest}").json()["name"] == "m"
    assert result.model == f"azureml:{deployment}-model:1"
    shown = http.get(f"/batch-endpoints/{endpoint}/deployments/{deployment}").json()
    assert shown["model"] == f"azureml:{deployment}-model:1"


def test_scoring_script_is_compiled_before_anything_is_sent(
    ml_client: MLClient, tmp_path: Path
) -> None:
    endpoint = unique("heart")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    model = ml_client.models.create_or_update(
        Model(name=unique("m"), path=make_mlflow_model(tmp_path / "m"), type="mlflow_model")
    )
    deployment = BatchDeployment(
        name="dpl",
        endpoint_name=endpoint,
        model=model,
        code_configuration=CodeConfiguration(
            code=make_code(tmp_path / "code", script="def run(b:\n"),
            scoring_script="batch_driver.py",
        ),
    )
    with pytest.raises(ValidationError, match="Failed to validate scoring script"):
        ml_client.batch_deployments.begin_create_or_update(deployment)
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_deployments.get("dpl", endpoint)
    ml_client.batch_deployments.begin_create_or_update(deployment, skip_script_validation=True)
    created = model_deployment(ml_client.batch_deployments.get("dpl", endpoint))
    assert created.code_configuration is not None


# -- jobs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_endpoint(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, str]:
    """An endpoint whose deployment echoes its files, and an uploaded folder of 4 files."""
    tmp = tmp_path_factory.mktemp("echo")
    endpoint, deployment = unique("sdk-ops"), "echo"
    with server.client() as client:
        create_script_deployment(client, tmp, endpoint, deployment, settings={"mini_batch_size": 2})
        write_numbered_files(tmp / "data", 4)
        data = upload_folder(client, tmp / "data", unique("sdk-ops-data"))
    return endpoint, deployment, data


@pytest.fixture(scope="module")
def finished_jobs(server: RunningServer, echo_endpoint: tuple[str, str, str]) -> list[str]:
    """Two completed jobs of ``echo_endpoint``, oldest first."""
    endpoint, _, data = echo_endpoint
    names = []
    with server.client() as client:
        for _ in range(2):
            body = invoke_body({"heart": {"JobInputType": "UriFolder", "Uri": data}})
            job = client.post(f"/endpoints/{endpoint}/jobs", json=body).raise_for_status().json()
            assert wait_for_job(client, job["name"])["status"] == "Completed"
            names.append(job["name"])
    return names


def test_job_entity_has_azures_attributes(
    ml_client: MLClient,
    http: httpx.Client,
    server: RunningServer,
    echo_endpoint: tuple[str, str, str],
    finished_jobs: list[str],
) -> None:
    endpoint, deployment, data = echo_endpoint
    name = finished_jobs[0]
    job = ml_client.jobs.get(name)
    assert (job.name, job.status) == (name, "Completed")
    assert (job.endpoint_name, job.deployment_name) == (endpoint, deployment)
    assert (job.inputs["heart"].type, job.inputs["heart"].path) == ("uri_folder", data)
    assert job.outputs["score"].path == f"{DS}/azureml/{name}/score/"
    assert job.progress.mini_batches_total == 2
    assert job.progress.mini_batches_done == 2
    assert job.progress.items_succeeded == 4
    assert job.studio_url == f"{server.url}/ui/jobs/{name}"
    assert job.start_time is not None and job.end_time is not None
    assert job.start_time <= job.end_time
    assert job.is_terminal
    assert job._to_dict() == http.get(f"/jobs/{name}").json()
    with pytest.raises(ResourceNotFoundError):
        ml_client.jobs.get(unique("nojob"))


def test_jobs_list_and_list_jobs(
    ml_client: MLClient, echo_endpoint: tuple[str, str, str], finished_jobs: list[str]
) -> None:
    endpoint, deployment, _ = echo_endpoint
    older, newer = finished_jobs
    listed = [j.name for j in ml_client.jobs.list(endpoint_name=endpoint)]
    assert listed.index(newer) < listed.index(older)  # newest first
    assert [j.name for j in ml_client.batch_endpoints.list_jobs(endpoint)] == listed
    assert [j.name for j in ml_client.batch_deployments.list_jobs(endpoint)] == listed
    assert [j.name for j in ml_client.batch_deployments.list_jobs(endpoint, name=deployment)] == (
        listed
    )
    with pytest.raises(ResourceNotFoundError):
        ml_client.batch_deployments.list_jobs(endpoint, name=unique("other"))
    one = ml_client.jobs.list(
        endpoint_name=endpoint, deployment_name=deployment, status="Completed", limit=1
    )
    assert [j.name for j in one] == listed[:1]
    assert ml_client.jobs.list(endpoint_name=endpoint, status="Failed") == []
    # Azure reaches the scoring step through parent_job_name; here the job is its own step
    assert [j.name for j in ml_client.jobs.list(parent_job_name=older)] == [older]


def test_invoke_uploads_a_relative_local_file_as_uri_file(
    ml_client: MLClient,
    http: httpx.Client,
    echo_endpoint: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, _, _ = echo_endpoint
    monkeypatch.chdir(tmp_path)
    Path("heart.csv").write_text(f"{unique('row')}\n")
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint, inputs={"heart": Input(type=None, path="heart.csv")}
    )
    assert job.inputs["heart"].type == "uri_file"
    assert (
        job.inputs["heart"].path
        == f"{DS}/LocalUpload/{scan(tmp_path / 'heart.csv').digest}/heart.csv"
    )
    finished = wait_for_job(http, job.name)
    assert finished["status"] == "Completed"
    assert finished["progress"]["items_succeeded"] == 1


def test_invoke_takes_the_type_of_a_data_asset_given_without_one(
    ml_client: MLClient,
    http: httpx.Client,
    echo_endpoint: tuple[str, str, str],
) -> None:
    endpoint, _, data = echo_endpoint
    name = unique("one-file")
    ml_client.data.create_or_update(Data(name=name, type="uri_file", path=f"{data}file-00.txt"))
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint, inputs={"x": Input(type=None, path=f"azureml:{name}@latest")}
    )
    assert job.inputs["x"].type == "uri_file"
    finished = wait_for_job(http, job.name)
    assert finished["status"] == "Completed"
    assert finished["progress"]["items_succeeded"] == 1


def test_stream_prints_status_changes_and_progress(
    ml_client: MLClient,
    server: RunningServer,
    echo_endpoint: tuple[str, str, str],
    tmp_path: Path,
) -> None:
    endpoint, _, _ = echo_endpoint
    write_numbered_files(tmp_path / "local", 4)
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint, inputs={"heart": Input(path=str(tmp_path / "local"))}
    )
    lines: list[str] = []
    sleeps: list[float] = []
    deadline = time.monotonic() + 120

    def sleep(seconds: float) -> None:
        assert time.monotonic() < deadline, f"job {job.name} did not end: {lines}"
        sleeps.append(seconds)
        time.sleep(seconds)

    ml_client.jobs._out = lines.append
    ml_client.jobs._sleep = sleep
    ml_client.jobs.stream(job.name, poll_interval=0.1)

    assert lines[0] == f"RunId: {job.name}"
    assert lines[1] == f"Web View: {server.url}/ui/jobs/{job.name}"
    summary = lines.index("Execution Summary")
    following = lines[:summary]
    statuses = [line for line in following if line.startswith("Status: ")]
    assert statuses[-1] == "Status: Completed"
    assert all(a != b for a, b in itertools.pairwise(statuses))
    progress = [line for line in following if line.startswith("Progress: ")]
    # The line for the last counts may carry an ETA, when printed while the job still ran.
    assert progress[-1].startswith(
        "Progress: mini-batches 2/2 (0 failed, 0 retried), items 4 succeeded / 0 failed"
    )
    assert all(a != b for a, b in itertools.pairwise(progress))
    assert lines[summary:] == [
        "Execution Summary",
        "=================",
        f"RunId: {job.name}",
        "Status: Completed",
    ]
    assert all(s == 0.1 for s in sleeps)
    assert ml_client.jobs.get(job.name).status == "Completed"


def test_download_lays_outputs_out_like_azure(
    ml_client: MLClient, http: httpx.Client, finished_jobs: list[str], tmp_path: Path
) -> None:
    name = finished_jobs[0]
    predictions = http.get(f"/jobs/{name}/outputs/score/files/predictions.csv").text
    assert len(predictions.splitlines()) == 4
    ml_client.jobs.download(name=name, output_name="score", download_path=tmp_path / "one")
    assert (tmp_path / "one/named-outputs/score/predictions.csv").read_text() == predictions
    assert not (tmp_path / "one/artifacts").exists()

    ml_client.jobs.download(name, tmp_path / "all", all=True)
    assert (tmp_path / "all/named-outputs/score/predictions.csv").read_text() == predictions
    logs: list[dict[str, Any]] = http.get(f"/jobs/{name}/logs").json()
    assert logs
    for log in logs:
        expected = http.get(f"/jobs/{name}/logs/{log['path']}").text
        assert (tmp_path / "all/artifacts" / log["path"]).read_text() == expected


def test_download_of_an_unknown_output(
    ml_client: MLClient, finished_jobs: list[str], tmp_path: Path
) -> None:
    with pytest.raises(ResourceNotFoundError, match="no output 'other'"):
        ml_client.jobs.download(finished_jobs[0], tmp_path, output_name="other")
    assert not (tmp_path / "named-outputs").exists()
