"""The operation groups of ``MLClient`` against an in-memory server, and the public surface."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sluiceway
import sluiceway.sdk
from sluiceway import (
    BatchDeployment,
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    Data,
    Environment,
    Model,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
)
from sluiceway.constants import AssetTypes, BatchDeploymentOutputAction
from sluiceway.errors import ResourceNotFoundError, ValidationError
from sluiceway.sdk import JobFailedError
from sluiceway.sdk.uploads import scan
from tests.unit.test_sdk_fake_server import ARM, FakeServer

DS = "azureml://datastores/workspaceblobstore/paths"


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


# -- the public surface ------------------------------------------------------------------


def test_public_names() -> None:
    assert set(sluiceway.__all__) >= {
        "MLClient", "Input", "Output", "Data", "Model", "BatchEndpoint", "BatchDeployment",
        "ModelBatchDeployment", "ModelBatchDeploymentSettings", "CodeConfiguration",
        "BatchRetrySettings", "Datastore", "BatchJob", "load_data", "load_model",
        "load_batch_endpoint", "load_batch_deployment",
    }  # fmt: skip
    for name in sluiceway.__all__:
        assert getattr(sluiceway, name) is not None
    assert sluiceway.sdk.JobFailedError is JobFailedError
    assert str(AssetTypes.URI_FOLDER) == "uri_folder"


def test_importing_the_sdk_leaves_the_server_dependencies_alone() -> None:
    code = (
        "import sys, sluiceway, sluiceway.sdk, sluiceway.constants;"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'pandas', 'uvicorn', 'starlette') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# -- data, models, datastores ------------------------------------------------------------


def test_data_create_uploads_a_local_folder_and_registers_it(
    server: FakeServer, tmp_path: Path
) -> None:
    folder = tmp_path / "heart-classifier-mlflow" / "data"
    folder.mkdir(parents=True)
    (folder / "heart.csv").write_text("age\n63\n")
    client = server.client()
    created = client.data.create_or_update(
        Data(
            path=str(folder),
            type=AssetTypes.URI_FOLDER,
            description="An unlabeled dataset for heart classification",
            name="heart-dataset-unlabeled",
        )
    )
    digest = scan(folder).digest
    (call,) = server.calls_to("POST", "/data")
    assert call.body == {
        "name": "heart-dataset-unlabeled",
        "type": "uri_folder",
        "path": f"{DS}/LocalUpload/{digest}/data/",
        "description": "An unlabeled dataset for heart classification",
    }
    assert created.version == "1"
    assert created.id == f"{ARM}/data/heart-dataset-unlabeled/versions/1"
    assert created.creation_context is not None
    assert created.creation_context.created_by == "owner"
    # _to_dict is exactly the server's JSON
    assert created._to_dict() == server.assets["data"]["heart-dataset-unlabeled"][0]

    latest = client.data.get(name="heart-dataset-unlabeled", label="latest")
    assert latest.path == f"{DS}/LocalUpload/{digest}/data/"
    assert client.data.get("heart-dataset-unlabeled", version="1").version == "1"
    assert [d.name for d in client.data.list()] == ["heart-dataset-unlabeled"]
    assert [d.version for d in client.data.list(name="heart-dataset-unlabeled")] == ["1"]


def test_data_create_keeps_remote_paths(server: FakeServer) -> None:
    server.client().data.create_or_update(Data(name="d", path=f"{DS}/x/", version=4))
    (call,) = server.calls_to("POST", "/data")
    assert call.body["path"] == f"{DS}/x/"
    assert call.body["version"] == "4"
    assert not server.calls_to("GET", r"/uploads/.*")


def test_data_create_checks_the_shape_before_sending(server: FakeServer) -> None:
    client = server.client()
    with pytest.raises(ValidationError, match="needs a name"):
        client.data.create_or_update(Data(path=f"{DS}/x/"))
    with pytest.raises(ValidationError, match="name 'bad name' is not valid"):
        client.data.create_or_update(Data(name="bad name", path=f"{DS}/x/"))
    assert not server.calls_to("POST", "/data")


def test_get_takes_a_version_or_the_latest_label(server: FakeServer) -> None:
    client = server.client()
    with pytest.raises(ValidationError, match="not both"):
        client.data.get("d", version="1", label="latest")
    with pytest.raises(ValidationError, match="label 'prod' is not supported"):
        client.data.get("d", label="prod")
    with pytest.raises(ResourceNotFoundError):
        client.data.get("d")


def test_models(server: FakeServer, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    client = server.client()
    model = client.models.create_or_update(
        Model(name="heart-classifier", path=model_dir, type=AssetTypes.MLFLOW_MODEL)
    )
    assert (model.name, model.version, model.type) == ("heart-classifier", "1", "mlflow_model")
    assert model.path == f"{DS}/LocalUpload/{scan(model_dir).digest}/model/"
    assert client.models.get("heart-classifier", label="latest").version == "1"
    assert [m.version for m in client.models.list(name="heart-classifier")] == ["1"]


def test_datastores(server: FakeServer) -> None:
    client = server.client()
    default = client.datastores.get_default()
    assert default.name == "workspaceblobstore"
    assert default.id == f"{ARM}/datastores/workspaceblobstore"
    assert default.is_default
    assert [d.name for d in client.datastores.list()] == ["workspaceblobstore"]
    assert client.datastores.get("workspaceblobstore")._to_dict() == server.datastore_json(
        "workspaceblobstore"
    )


# -- endpoints ---------------------------------------------------------------------------


def test_endpoint_create_get_update_default_and_delete(server: FakeServer) -> None:
    client = server.client()
    poller = client.batch_endpoints.begin_create_or_update(
        BatchEndpoint(name="heart-classifier", description="A heart classifier")
    )
    assert poller.done()
    poller.wait()
    endpoint = poller.result()
    assert endpoint.scoring_uri == "http://sluice.test/endpoints/heart-classifier/jobs"
    assert endpoint.provisioning_state == "Succeeded"
    (call,) = server.calls_to("PUT", "/batch-endpoints/heart-classifier")
    assert call.body == {
        "name": "heart-classifier",
        "description": "A heart classifier",
        "auth_mode": "aad_token",
    }

    # Azure's docs: change the default by editing the fetched endpoint
    endpoint = client.batch_endpoints.get("heart-classifier")
    endpoint.defaults.deployment_name = "dpl-2"
    client.batch_endpoints.begin_create_or_update(endpoint).result()
    assert server.calls[-1].body["defaults"] == {"deployment_name": "dpl-2"}
    # ... or as a dict
    endpoint.defaults = {}
    endpoint.defaults["deployment_name"] = "dpl-3"
    updated = client.batch_endpoints.begin_create_or_update(endpoint).result()
    assert updated.defaults.deployment_name == "dpl-3"
    assert updated._to_dict() == server.endpoints["heart-classifier"]

    assert [e.name for e in client.batch_endpoints.list()] == ["heart-classifier"]
    assert client.batch_endpoints.begin_delete("heart-classifier").result() is None
    with pytest.raises(ResourceNotFoundError):
        client.batch_endpoints.get("heart-classifier")


def test_endpoint_names_are_checked_before_sending(server: FakeServer) -> None:
    with pytest.raises(ValidationError, match="3-32 letters"):
        server.client().batch_endpoints.begin_create_or_update(BatchEndpoint(name="x_"))
    assert not server.calls


# -- deployments -------------------------------------------------------------------------


def make_code(
    folder: Path, script: str = "def init():\n    pass\n\ndef run(b):\n    return b\n"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch_driver.py").write_text(script)
    return folder


def make_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pt").write_bytes(b"weights")
    return folder


def test_deployment_registers_an_inline_model_and_uploads_code(
    server: FakeServer, tmp_path: Path
) -> None:
    client = server.client()
    client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="mnist-batch")).result()
    (tmp_path / "conda.yaml").write_text("name: env\ndependencies: [python=3.11]\n")
    deployment = BatchDeployment(
        name="mnist-torch-dpl",
        endpoint_name="mnist-batch",
        model=Model(name="mnist-classifier-torch", path=make_model(tmp_path / "model")),
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
    result = client.batch_deployments.begin_create_or_update(deployment, set_default=True).result()

    (model_call,) = server.calls_to("POST", "/models")
    assert model_call.body["name"] == "mnist-classifier-torch"
    assert model_call.body["path"] == f"{DS}/LocalUpload/{scan(tmp_path / 'model').digest}/model/"
    (put,) = server.calls_to("PUT", "/batch-endpoints/mnist-batch/deployments/mnist-torch-dpl")
    assert put.params == {"set_default": "true"}
    body = put.body
    assert body["model"] == "azureml:mnist-classifier-torch:1"
    assert body["code_configuration"] == {
        "code": f"{DS}/LocalUpload/{scan(tmp_path / 'code').digest}/code/",
        "scoring_script": "batch_driver.py",
    }
    assert body["environment"]["conda_file"] == {
        "name": "env",
        "dependencies": ["python=3.11"],
    }
    assert body["compute"] == "batch-cluster"
    assert body["resources"] == {"instance_count": 2}
    assert body["settings"] == {
        "max_concurrency_per_instance": 2,
        "mini_batch_size": 10,
        "output_action": "append_row",
        "output_file_name": "predictions.csv",
        "retry_settings": {"max_retries": 3, "timeout": 300},
        "logging_level": "info",
    }
    assert result.model == "azureml:mnist-classifier-torch:1"
    assert result.mini_batch_size == 10
    assert result.settings.error_threshold == -1  # the server's default
    assert result._to_dict() == server.deployments[("mnist-batch", "mnist-torch-dpl")]
    assert server.endpoints["mnist-batch"]["defaults"]["deployment_name"] == "mnist-torch-dpl"

    # Deploying again reuses the model version instead of adding one.
    client.batch_deployments.begin_create_or_update(deployment).result()
    assert len(server.calls_to("POST", "/models")) == 1
    assert len(server.assets["models"]["mnist-classifier-torch"]) == 1


def test_model_batch_deployment_with_settings_and_a_registered_model(
    server: FakeServer, tmp_path: Path
) -> None:
    client = server.client()
    client.batch_endpoints.begin_create_or_update(BatchEndpoint(name="heart")).result()
    model = client.models.create_or_update(
        Model(name="heart-classifier", path=f"{DS}/models/heart/", type="mlflow_model")
    )
    client.batch_deployments.begin_create_or_update(
        ModelBatchDeployment(
            name="heart-mlflow",
            endpoint_name="heart",
            model=model,
            settings=ModelBatchDeploymentSettings(
                mini_batch_size=5, instance_count=3, output_action="summary_only"
            ),
        )
    ).result()
    body = server.calls[-1].body
    assert body["model"] == "azureml:heart-classifier:1"
    assert body["resources"] == {"instance_count": 3}
    assert body["settings"] == {"mini_batch_size": 5, "output_action": "summary_only"}
    assert "code_configuration" not in body


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("azureml:heart:2", "azureml:heart:2"),
        ("heart:2", "azureml:heart:2"),
        ("heart", "azureml:heart@latest"),
        (f"{ARM}/models/heart/versions/2", f"{ARM}/models/heart/versions/2"),
    ],
)
def test_model_references_are_normalised(server: FakeServer, given: str, sent: str) -> None:
    server.endpoints["heart"] = {"defaults": {}}
    server.client().batch_deployments.begin_create_or_update(
        BatchDeployment(name="dpl", endpoint_name="heart", model=given)
    )
    assert server.calls[-1].body["model"] == sent


def test_an_inline_model_dict_without_a_name_gets_one(server: FakeServer, tmp_path: Path) -> None:
    server.endpoints["heart"] = {"defaults": {}}
    server.client().batch_deployments.begin_create_or_update(
        BatchDeployment(
            name="dpl",
            endpoint_name="heart",
            model={"path": str(make_model(tmp_path / "m")), "type": "mlflow_model"},
        )
    )
    assert server.calls_to("POST", "/models")[0].body["name"] == "dpl-model"
    assert server.calls[-1].body["model"] == "azureml:dpl-model:1"


def test_scoring_script_is_compiled_before_anything_is_sent(
    server: FakeServer, tmp_path: Path
) -> None:
    server.endpoints["heart"] = {"defaults": {}}
    code = make_code(tmp_path / "code", script="def run(b:\n")
    deployment = BatchDeployment(
        name="dpl",
        endpoint_name="heart",
        model="azureml:m:1",
        code_configuration=CodeConfiguration(code=code, scoring_script="batch_driver.py"),
    )
    client = server.client()
    with pytest.raises(ValidationError, match="Failed to validate scoring script"):
        client.batch_deployments.begin_create_or_update(deployment)
    assert not server.calls
    client.batch_deployments.begin_create_or_update(deployment, skip_script_validation=True)
    assert server.calls_to("PUT", "/batch-endpoints/heart/deployments/dpl")


def test_missing_code_folder_or_script(server: FakeServer, tmp_path: Path) -> None:
    client = server.client()
    missing_folder = BatchDeployment(
        name="dpl",
        endpoint_name="heart",
        code_configuration=CodeConfiguration(code=tmp_path / "nope", scoring_script="s.py"),
    )
    with pytest.raises(ValidationError, match="is not a local folder"):
        client.batch_deployments.begin_create_or_update(missing_folder)
    missing_script = BatchDeployment(
        name="dpl",
        endpoint_name="heart",
        code_configuration=CodeConfiguration(code=make_code(tmp_path / "c"), scoring_script="x.py"),
    )
    with pytest.raises(ValidationError, match=r"'x\.py' is not in the code folder"):
        client.batch_deployments.begin_create_or_update(missing_script)


def test_deployment_needs_name_and_endpoint(server: FakeServer) -> None:
    client = server.client()
    with pytest.raises(ValidationError, match="needs a name"):
        client.batch_deployments.begin_create_or_update(BatchDeployment(endpoint_name="e"))
    with pytest.raises(ValidationError, match="needs endpoint_name"):
        client.batch_deployments.begin_create_or_update(BatchDeployment(name="dpl"))


def test_instance_count_and_resources_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="Can't set instance_count when resources"):
        BatchDeployment(name="d", resources={"instance_count": 1}, instance_count=2)


def test_flat_settings_win_over_settings_and_share_one_object() -> None:
    deployment = BatchDeployment(
        name="d", settings={"mini_batch_size": 3, "logging_level": "debug"}, mini_batch_size=7
    )
    assert deployment.settings.mini_batch_size == 7
    deployment.settings.error_threshold = 5
    assert deployment.error_threshold == 5
    deployment.output_file_name = "p.csv"
    assert deployment.model_deployment_settings.output_file_name == "p.csv"


def test_deployment_reads_lists_and_deletes(server: FakeServer) -> None:
    server.endpoints["heart"] = {"defaults": {}}
    client = server.client()
    client.batch_deployments.begin_create_or_update(
        BatchDeployment(name="dpl", endpoint_name="heart", model="azureml:m:1")
    ).result()
    assert client.batch_deployments.get("dpl", "heart").model == "azureml:m:1"
    assert [d.name for d in client.batch_deployments.list("heart")] == ["dpl"]
    client.batch_deployments.begin_delete("dpl", "heart").wait()
    assert client.batch_deployments.list("heart") == []


# -- jobs --------------------------------------------------------------------------------


def progress(done: int, total: int = 4, failed: int = 0) -> dict[str, int]:
    return {
        "mini_batches_total": total,
        "mini_batches_succeeded": done,
        "mini_batches_failed": failed,
        "items_succeeded": done * 10,
    }


def test_jobs_list_and_list_jobs(server: FakeServer) -> None:
    server.endpoints["heart"] = {}
    client = server.client()
    job = client.batch_endpoints.invoke(endpoint_name="heart", input=f"{DS}/data/")
    assert [j.name for j in client.jobs.list()] == [job.name]
    assert [j.name for j in client.batch_endpoints.list_jobs("heart")] == [job.name]
    assert [j.name for j in client.batch_deployments.list_jobs("heart", name="dpl")] == [job.name]
    assert [j.name for j in client.batch_deployments.list_jobs("heart")] == [job.name]
    # Azure reaches the scoring step through parent_job_name; here the job is its own step
    assert [j.name for j in client.jobs.list(parent_job_name=job.name)] == [job.name]
    client.jobs.list(endpoint_name="heart", status="Completed", limit=5)
    assert server.calls[-1].params == {
        "endpoint_name": "heart",
        "status": "Completed",
        "limit": "5",
    }


def test_job_entity_has_azures_attributes(server: FakeServer) -> None:
    server.jobs["j1"] = server.job_json(
        "j1",
        "Running",
        inputs={
            "heart": {"type": "uri_folder", "path": f"{DS}/data/"},
            "mode": {"type": "string", "value": "append"},
        },
        progress=progress(1),
        start_time="2024-05-01T12:00:01+00:00",
    )
    job = server.client().jobs.get("j1")
    assert (job.name, job.status, job.endpoint_name) == ("j1", "Running", "heart")
    assert job.inputs["heart"].path == f"{DS}/data/"
    assert job.inputs["mode"].default == "append"
    assert job.outputs["score"].path == f"{DS}/azureml/j1/score/"
    assert job.progress.mini_batches_done == 1
    assert job.studio_url == "http://sluice.test/ui/jobs/j1"
    assert job.start_time is not None and job.start_time.second == 1
    assert not job.is_terminal
    assert job._to_dict() == server.jobs["j1"]


def test_stream_prints_status_changes_and_progress(server: FakeServer) -> None:
    server.job_script["j1"] = [
        server.job_json("j1", "Queued"),
        server.job_json("j1", "Running", progress=progress(1)),
        server.job_json("j1", "Running", progress=progress(1)),
        server.job_json("j1", "Running", progress=progress(3)),
        server.job_json("j1", "Completed", progress=progress(4)),
    ]
    client = server.client()
    lines: list[str] = []
    sleeps: list[float] = []
    client.jobs._out = lines.append
    client.jobs._sleep = sleeps.append
    client.jobs.stream("j1", poll_interval=0.5)
    assert lines[0] == "RunId: j1"
    assert lines[1] == "Web View: http://sluice.test/ui/jobs/j1"
    statuses = [line for line in lines if line.startswith("Status: ")]
    assert statuses == [
        "Status: Queued",
        "Status: Running",
        "Status: Completed",
        "Status: Completed",
    ]
    progress_lines = [line for line in lines if line.startswith("Progress: ")]
    assert progress_lines == [
        "Progress: mini-batches 1/4 (0 failed, 0 retried), items 10 succeeded / 0 failed",
        "Progress: mini-batches 3/4 (0 failed, 0 retried), items 30 succeeded / 0 failed",
        "Progress: mini-batches 4/4 (0 failed, 0 retried), items 40 succeeded / 0 failed",
    ]
    assert "Execution Summary" in lines
    assert sleeps == [0.5] * 4


def test_stream_raises_when_the_job_fails(server: FakeServer) -> None:
    server.job_script["j1"] = [
        server.job_json("j1", "Running", progress=progress(1)),
        server.job_json(
            "j1",
            "Failed",
            progress=progress(1, failed=3),
            error={"code": "UserError", "message": "run() raised ZeroDivisionError"},
        ),
    ]
    client = server.client()
    lines: list[str] = []
    client.jobs._out = lines.append
    client.jobs._sleep = lambda _: None
    with pytest.raises(
        JobFailedError, match="Job j1 failed: run\\(\\) raised ZeroDivision"
    ) as info:
        client.jobs.stream("j1")
    assert info.value.job.status == "Failed"
    assert "Error: run() raised ZeroDivisionError" in lines


def test_download_lays_outputs_out_like_azure(server: FakeServer, tmp_path: Path) -> None:
    server.jobs["j1"] = server.job_json("j1", "Completed")
    server.job_files[("j1", "score")] = {"predictions.csv": b"1 0 a.csv\n", "sub/x.txt": b"x"}
    server.job_logs["j1"] = {"logs/job_progress_overview.txt": b"done\n"}
    client = server.client()
    client.jobs.download(name="j1", output_name="score", download_path=tmp_path)
    assert (tmp_path / "named-outputs/score/predictions.csv").read_bytes() == b"1 0 a.csv\n"
    assert (tmp_path / "named-outputs/score/sub/x.txt").read_bytes() == b"x"
    assert not (tmp_path / "artifacts").exists()
    client.jobs.download("j1", tmp_path / "all", all=True)
    assert (tmp_path / "all/named-outputs/score/predictions.csv").exists()
    assert (tmp_path / "all/artifacts/logs/job_progress_overview.txt").read_text() == "done\n"


def test_download_of_an_unknown_output(server: FakeServer, tmp_path: Path) -> None:
    server.jobs["j1"] = server.job_json("j1", "Completed")
    with pytest.raises(ResourceNotFoundError, match="no output 'other'"):
        server.client().jobs.download("j1", tmp_path, output_name="other")


def test_download_refuses_paths_that_leave_the_folder(server: FakeServer, tmp_path: Path) -> None:
    server.jobs["j1"] = server.job_json("j1", "Completed")
    server.job_files[("j1", "score")] = {"../escape.txt": b"x"}
    with pytest.raises(ValidationError, match="outside the output folder"):
        server.client().jobs.download("j1", tmp_path / "d", output_name="score")
    assert not (tmp_path / "escape.txt").exists()
