"""The unmodified azure-ai-ml and azure-identity packages drive a real TLS server with nothing
but environment variables (from ``sluice azure env``): the reference page's SDK samples, the
managed-identity and the client-secret credential paths, a reader refused on invoke, and
Azure's error shape for what is not supported. The SDK runs in its own process (it keeps state
per process, such as a sticky deployment header) and is never patched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RunningServer, stop_server
from tests.integration.helpers import create_script_deployment, unique
from tests.integration.tls_server import start_tls_server, tls_client, workspace_path

pytest.importorskip("azure.ai.ml", reason="needs the azureml-sdk extra")

ENDPOINT = "heart-ep"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_tls_server(tmp_path_factory.mktemp("tls-home"))
    tmp = tmp_path_factory.mktemp("deployment")
    with tls_client(running) as owner:
        create_script_deployment(owner, tmp, ENDPOINT, "dpl-a")
    yield running
    stop_server(running)


def azure_env(server: RunningServer, *extra: str, token: str | None = None) -> dict[str, str]:
    """The environment `sluice azure env` prints, as a child process would have it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))}
    args = [sys.executable, "-m", "sluiceway.cli.main", "azure", "env"]
    args += ["--home", str(server.home), *extra]
    if token is not None:
        args += ["--token", token]
    printed = subprocess.run(args, capture_output=True, text=True, env=base, check=True).stdout
    env = dict(base)
    for line in printed.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    env.update(AZUREML_RUN_POLLING_INTERVAL_MIN="1", AZUREML_RUN_POLLING_INTERVAL_MAX="1")
    return env


def run_sdk(script: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run ``script`` (which prints one JSON line last) with the real SDK in a fresh process."""
    prelude = (
        "import json, os\n"
        "from azure.ai.ml import MLClient, Input, Output\n"
        "from azure.identity import DefaultAzureCredential\n"
        "ml = MLClient(DefaultAzureCredential(), os.environ['AZURE_SUBSCRIPTION_ID'],\n"
        "              os.environ['AZURE_RESOURCE_GROUP'], os.environ['AZUREML_WORKSPACE_NAME'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + script],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["_stdout"] = done.stdout
    return result


SAMPLES = """
from azure.ai.ml.entities import BatchEndpoint, Data
out = {}
ds = ml.datastores.get_default()
out["default"] = ds.name
data = ml.data.create_or_update(Data(path="heart", type="uri_folder", name="heart-data"))
again = ml.data.create_or_update(Data(path="heart", type="uri_folder", name="heart-data"))
out["data"] = [data.version, again.version, data.path == again.path]
latest = ml.data.get("heart-data", label="latest")
out["latest"] = latest.version
out["endpoints"] = [e.name for e in ml.batch_endpoints.list()]
endpoint = ml.batch_endpoints.get("heart-ep")
out["default_deployment"] = endpoint.defaults.deployment_name
out["deployments"] = [d.name for d in ml.batch_deployments.list(endpoint_name="heart-ep")]
out["model"] = ml.batch_deployments.get("dpl-a", endpoint_name="heart-ep").model
jobs = {}
jobs["asset"] = ml.batch_endpoints.invoke(endpoint_name="heart-ep",
    input=Input(path=latest.id))
jobs["datastore"] = ml.batch_endpoints.invoke(endpoint_name="heart-ep",
    input=Input(path=latest.path, type="uri_folder"))
jobs["local"] = ml.batch_endpoints.invoke(endpoint_name="heart-ep",
    input=Input(path="heart", type="uri_folder"))
jobs["inputs"] = ml.batch_endpoints.invoke(endpoint_name="heart-ep",
    inputs={"heart_dataset": Input(type="uri_folder", path="azureml:heart-data:1")},
    outputs={"score": Output(type="uri_folder",
        path=f"azureml://datastores/workspaceblobstore/paths/batch-jobs/{os.environ['OUT']}")},
    job_name=os.environ["JOB"], experiment_name="exp1")
jobs["named"] = ml.batch_endpoints.invoke(endpoint_name="heart-ep", deployment_name="dpl-a",
    input=Input(path=latest.path, type="uri_folder"))
out["jobs"] = {k: j.name for k, j in jobs.items()}
ml.jobs.stream(jobs["asset"].name)
for name in out["jobs"].values():
    ml.jobs.stream(name)
out["statuses"] = {k: ml.jobs.get(n).status for k, n in out["jobs"].items()}
ml.jobs.download(out["jobs"]["asset"], download_path="dl", output_name="score")
out["downloaded"] = open("dl/predictions.csv").read()
out["listed"] = sorted(j.name for j in ml.batch_endpoints.list_jobs("heart-ep"))
created = ml.batch_endpoints.begin_create_or_update(
    BatchEndpoint(name=os.environ["NEW_EP"], description="made by azure-ai-ml")).result()
out["created"] = [created.name, created.description, created.scoring_uri]
from azure.ai.ml.entities import Model, ModelBatchDeployment
model = ml.models.create_or_update(Model(path="mlmodel", name="mlm", type="mlflow_model"))
deployment = ml.batch_deployments.begin_create_or_update(ModelBatchDeployment(
    name="dpl-mlflow", endpoint_name=os.environ["NEW_EP"], model=model, compute="cpu-cluster"
)).result()
out["deployment"] = [deployment.name, str(deployment.provisioning_state), deployment.model]
print(json.dumps(out))
"""


def write_heart(folder: Path) -> None:
    (folder / "mlmodel").mkdir(parents=True)
    (folder / "mlmodel" / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
        "    model_path: model.pkl\n"
    )
    (folder / "mlmodel" / "model.pkl").write_bytes(b"not loaded until a job runs")
    (folder / "heart").mkdir(parents=True)
    for i in range(3):
        (folder / "heart" / f"part{i}.csv").write_text(f"row-{i}\n")


def test_reference_samples_through_managed_identity(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    write_heart(tmp_path)
    job_name, out_folder, new_endpoint = unique("my-job"), unique("out"), unique("ep")
    env = azure_env(tls_server)
    assert env["IDENTITY_ENDPOINT"].endswith("/msi/token")
    assert env["IDENTITY_HEADER"] == tls_server.token
    env.update(JOB=job_name, OUT=out_folder, NEW_EP=new_endpoint)
    out = run_sdk(SAMPLES, env, tmp_path)

    assert out["default"] == "workspaceblobstore"
    assert out["data"][0] != out["data"][1] and out["data"][2]  # same upload, two versions
    assert out["latest"] == out["data"][1]
    assert ENDPOINT in out["endpoints"]
    assert out["default_deployment"] == "dpl-a"
    assert out["deployments"] == ["dpl-a"]
    assert "/models/" in out["model"]
    assert out["jobs"]["inputs"] == job_name
    assert set(out["statuses"].values()) == {"Completed"}, out["statuses"]
    assert "part0.csv row-0" in out["downloaded"]
    assert set(out["jobs"].values()) <= set(out["listed"])
    assert out["created"][:2] == [new_endpoint, "made by azure-ai-ml"]
    assert "Execution Summary" in out["_stdout"]
    assert out["deployment"][0] == "dpl-mlflow" and "/models/mlm/versions/" in out["deployment"][2]
    assert out["deployment"][1].lower().endswith("succeeded")

    with tls_client(tls_server) as owner:
        job = owner.get(f"/jobs/{job_name}").json()
        assert job["experiment_name"] == "exp1"
        assert job["outputs"]["score"]["path"].endswith(f"batch-jobs/{out_folder}/")
        named = owner.get(f"/jobs/{out['jobs']['named']}").json()
        assert named["deployment_name"] == "dpl-a"
        assert owner.get(f"/batch-endpoints/{new_endpoint}").status_code == 200


CLIENT_SECRET = """
job = ml.batch_endpoints.invoke(endpoint_name="heart-ep",
    input=Input(path="azureml://datastores/workspaceblobstore/paths/sp-data/", type="uri_folder"))
print(json.dumps({"job": job.name, "status": ml.jobs.get(job.name).status}))
"""

REFUSED = """
from azure.core.exceptions import HttpResponseError
try:
    ml.batch_endpoints.invoke(endpoint_name="heart-ep",
        input=Input(path="https://example.com/data/", type="uri_folder"))
    print(json.dumps({"refused": None}))
except HttpResponseError as exc:
    print(json.dumps({"refused": exc.status_code, "message": str(exc)}))
"""


def new_reader(owner: httpx.Client) -> str:
    """A token of a new identity with the reader role on the workspace."""
    name = unique("reader")
    owner.post("/identities", json={"name": name, "kind": "user"}).raise_for_status()
    owner.post(
        "/roles", json={"identity": name, "role": "reader", "scope": "workspace"}
    ).raise_for_status()
    token: str = owner.post(f"/identities/{name}/tokens").json()["access_token"]
    return token


def test_client_secret_path_and_a_refused_reader(tls_server: RunningServer, tmp_path: Path) -> None:
    with tls_client(tls_server) as owner:
        sp = owner.post("/identities", json={"name": unique("ci"), "kind": "service_principal"})
        sp.raise_for_status()
        principal = sp.json()
        owner.post(
            "/roles",
            json={"identity": principal["name"], "role": "contributor", "scope": "workspace"},
        ).raise_for_status()
        owner.put(
            "/datastores/workspaceblobstore/files/sp-data/part0.csv", content=b"x\n"
        ).raise_for_status()
        reader_token = new_reader(owner)

    os.environ["SLUICEWAY_CLIENT_SECRET"] = principal["client_secret"]
    try:
        env = azure_env(tls_server, "--service-principal", principal["name"])
    finally:
        del os.environ["SLUICEWAY_CLIENT_SECRET"]
    assert env["AZURE_TENANT_ID"] == "adfs" and env["AZURE_CLIENT_ID"] == principal["client_id"]
    out = run_sdk(CLIENT_SECRET, env, tmp_path)
    with tls_client(tls_server) as owner:
        job = owner.get(f"/jobs/{out['job']}").json()
    assert job["creation_context"]["created_by"] == principal["name"]

    refused = run_sdk(REFUSED, azure_env(tls_server, token=reader_token), tmp_path)
    assert refused["refused"] == 403
    assert "invoke" in refused["message"]


def test_arm_errors_name_what_is_supported(tls_server: RunningServer) -> None:
    ws = workspace_path(tls_server)
    with tls_client(tls_server) as owner:
        unknown = owner.get(f"{ws}/computes/cpu", params={"api-version": "2024-10-01"})
        assert unknown.status_code == 400
        error = unknown.json()["error"]
        assert error["code"] == "NotSupported" and "batchEndpoints" in error["message"]
        bad_version = owner.get(f"{ws}/batchEndpoints", params={"api-version": "v1.0"})
        assert bad_version.status_code == 400
        assert "api-version" in bad_version.json()["error"]["message"]
        other = ws.replace("/workspaces/", "/workspaces/x")
        elsewhere = owner.get(other, params={"api-version": "2024-10-01"})
        assert elsewhere.status_code == 404 and ws in elsewhere.json()["error"]["message"]
        missing = owner.get(f"{ws}/jobs/{unique('none')}", params={"api-version": "2024-01-01"})
        assert missing.status_code == 404 and "error" in missing.json()
    with tls_client(tls_server, token="x") as no_token:
        assert no_token.get(ws, params={"api-version": "2024-10-01"}).status_code == 401


def test_adls_gen1_is_refused_in_every_face(tls_server: RunningServer, tmp_path: Path) -> None:
    ws = workspace_path(tls_server)
    with tls_client(tls_server) as owner:
        rest = owner.put(
            "/datastores/gen1",
            json={"name": "gen1", "type": "azure_data_lake_gen1", "account_name": "a"},
        )
        arm = owner.put(
            f"{ws}/datastores/gen1",
            params={"api-version": "2024-10-01"},
            json={"properties": {"datastoreType": "AzureDataLakeGen1", "storeName": "a"}},
        )
        invoke = owner.post(
            f"/endpoints/{ENDPOINT}/jobs",
            json={
                "properties": {
                    "InputData": {
                        "x": {
                            "JobInputType": "UriFolder",
                            "Uri": "adl://a.azuredatalakestore.net/d",
                        }
                    }
                }
            },
        )
    for answer in (rest, arm, invoke):
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]["message"]
        assert "retired" in message and "azure_data_lake_gen2" in message, message
    yaml_file = tmp_path / "gen1.yml"
    yaml_file.write_text("name: gen1\ntype: azure_data_lake_gen1\nstore_name: a\n")
    cli = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli.main", "datastore", "create", "-f", str(yaml_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "SLUICEWAY_ENDPOINT": "http://127.0.0.1:9", "SLUICEWAY_TOKEN": "x"},
    )
    assert cli.returncode == 1 and "retired" in cli.stderr, cli.stderr


AZURITE_SAMPLES = """
from azure.ai.ml.entities import Data
out = {}
ds = ml.datastores.get_default()
out["default"] = [ds.name, ds.account_name, ds.container_name]
data = ml.data.create_or_update(Data(path="heart", type="uri_folder", name="az-heart"))
out["data"] = data.path
job = ml.batch_endpoints.invoke(endpoint_name="az-ep", input=Input(path=data.id))
ml.jobs.stream(job.name)
out["status"] = ml.jobs.get(job.name).status
ml.jobs.download(job.name, download_path="dl", output_name="score")
out["downloaded"] = open("dl/predictions.csv").read()
print(json.dumps(out))
"""


@dataclass
class AzuriteWorkspace:
    """A TLS server whose workspaceblobstore is an Azurite container behind a TLS front."""

    server: RunningServer
    front: Any
    container: str
    server_bundle: Path
    client_bundle: Path


@pytest.fixture(scope="module")
def azurite_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteWorkspace]:
    from tests.integration import storage_services as svc
    from tests.integration.tls_server import TlsFront

    tmp = tmp_path_factory.mktemp("azurite-ws")
    front = TlsFront(svc.azurite_url(), tmp / "front")
    container = svc.make_container("wsblob")
    default = {
        "type": "azure_blob",
        "account_name": svc.AZURITE_ACCOUNT,
        "container_name": container,
        "endpoint": f"{front.url}/{svc.AZURITE_ACCOUNT}",
        "credentials": {"account_key": svc.AZURITE_KEY},
    }
    server_bundle = front.bundle(tmp / "front")
    env = {
        **svc.server_env(),
        "SLUICEWAY_BLOB_EMULATOR_ENDPOINTS": f"{front.url},{svc.azurite_url()}",
        "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(default),
        "REQUESTS_CA_BUNDLE": str(server_bundle),
        "SSL_CERT_FILE": str(server_bundle),
    }
    server = start_tls_server(tmp / "home", env)
    try:
        with tls_client(server) as owner:
            create_script_deployment(owner, tmp, "az-ep", "dpl")
        client_bundle = front.bundle(tmp / "front", server.home / "tls" / "cert.pem")
        yield AzuriteWorkspace(server, front, container, server_bundle, client_bundle)
    finally:
        stop_server(server)
        front.close()


def sdk_env(workspace: AzuriteWorkspace) -> dict[str, str]:
    """`sluice azure env`, with a CA bundle that trusts the storage's front too."""
    env = azure_env(workspace.server)
    env["REQUESTS_CA_BUNDLE"] = str(workspace.client_bundle)
    return env


def test_azurite_as_workspaceblobstore(azurite_workspace: AzuriteWorkspace, tmp_path: Path) -> None:
    """A default datastore in Azure Blob storage (Azurite behind TLS) with an account key: the
    SDK reaches it itself with a SAS of the caller's own rights from listSecrets, never the
    key; uploads, a job over them and the download of its output go through Azurite."""
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    from tests.integration import storage_services as svc

    server, front, container = (
        azurite_workspace.server,
        azurite_workspace.front,
        azurite_workspace.container,
    )
    ws = workspace_path(server)
    with tls_client(server) as owner:
        reader_token = new_reader(owner)
        secrets = f"{ws}/datastores/workspaceblobstore/listSecrets"
        version = {"api-version": "2024-10-01-preview"}
        mine = owner.post(secrets, params=version, json={}).json()
    with tls_client(server, token=reader_token) as as_reader:
        theirs = as_reader.post(secrets, params=version, json={}).json()
    for answer in (mine, theirs):
        assert answer["secretsType"] == "Sas" and svc.AZURITE_KEY not in json.dumps(answer)
    assert "sp=racwl" in mine["sasToken"] and "sp=rl" in theirs["sasToken"]
    with (
        ContainerClient(
            f"{front.url}/{svc.AZURITE_ACCOUNT}",
            container,
            credential=theirs["sasToken"],
            connection_verify=str(azurite_workspace.server_bundle),
        ) as sas_client,
        pytest.raises(HttpResponseError) as refused,
    ):
        sas_client.upload_blob("by-a-reader.txt", b"x")
    assert refused.value.status_code == 403

    write_heart(tmp_path)
    out = run_sdk(AZURITE_SAMPLES, sdk_env(azurite_workspace), tmp_path)
    assert out["default"] == [
        "workspaceblobstore",
        f"127.0.0.1:{front.url.rsplit(':', 1)[1]}/{svc.AZURITE_ACCOUNT}#",
        container,
    ]
    assert out["status"] == "Completed"
    assert "part0.csv row-0" in out["downloaded"]
    names = [b.name for b in svc.container_client(container).list_blobs()]
    assert any(n.startswith("LocalUpload/") and n.endswith("/heart/part1.csv") for n in names)
    assert any(n.endswith("/score/predictions.csv") for n in names), names


STEP_SCRIPT = """
import json, pathlib, sys
out, data, *literals = sys.argv[1:]
names = sorted(p.name for p in pathlib.Path(data).rglob("*") if p.is_file())
pathlib.Path(out, "seen.json").write_text(json.dumps({"files": names, "literals": literals}))
"""

LITERAL_SAMPLES = """
out = {}
inputs = {
    "data": Input(type="uri_folder", path=os.environ["HTTPS_INPUT"]),
    "mode": Input(type="string", default="append"),
    "threshold": Input(type="number", default=0.5),
    "n": Input(type="integer", default=3),
    "flag": Input(type="boolean", default=True),
}
job = ml.batch_endpoints.invoke(endpoint_name=os.environ["PIPELINE_EP"], inputs=inputs)
ml.jobs.stream(job.name)
out["status"] = ml.jobs.get(job.name).status
out["children"] = [c.name for c in ml.jobs.list(parent_job_name=job.name)]
ml.jobs.download(job.name, download_path="dl", output_name="score")
out["seen"] = json.load(open("dl/seen.json"))
out["job"] = job.name
print(json.dumps(out))
"""


def test_literal_and_https_url_inputs_and_child_jobs(
    azurite_workspace: AzuriteWorkspace, tmp_path: Path
) -> None:
    """A pipeline deployment invoked through the SDK with its four literal types and an https
    storage URL (an Azurite container with a SAS); ``jobs.list(parent_job_name=...)`` lists
    the job's batch-scoring child."""
    from tests.integration import storage_services as svc
    from tests.integration.helpers import upload_folder

    server, front = azurite_workspace.server, azurite_workspace.front
    inputs_container = svc.make_container("https-in")
    (tmp_path / "in").mkdir()
    for i in range(2):
        (tmp_path / "in" / f"row{i}.csv").write_text(f"{i}\n")
    svc.upload_to_container(inputs_container, tmp_path / "in", "rows")
    url = f"{front.url}/{svc.AZURITE_ACCOUNT}/{inputs_container}/rows?"
    url += svc.container_sas(inputs_container)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "step.py").write_text(STEP_SCRIPT)
    literal_types = {"mode": "string", "threshold": "number", "n": "integer", "flag": "boolean"}
    endpoint = unique("pl")
    with tls_client(server) as owner:
        code = upload_folder(owner, tmp_path / "code", f"code/{endpoint}")
        inputs = {"data": {"type": "uri_folder"}} | {
            k: {"type": t} for k, t in literal_types.items()
        }
        line = " ".join("${{inputs." + k + "}}" for k in literal_types)
        pipeline = {
            "name": unique("literals"),
            "type": "pipeline",
            "inputs": inputs,
            "outputs": {"score": {"type": "uri_folder"}},
            "jobs": {
                "step": {
                    "component": {
                        "type": "command",
                        "code": code,
                        "command": "python step.py ${{outputs.score}} ${{inputs.data}} " + line,
                        "inputs": inputs,
                        "outputs": {"score": {"type": "uri_folder"}},
                    },
                    "inputs": {k: "${{parent.inputs." + k + "}}" for k in inputs},
                    "outputs": {"score": "${{parent.outputs.score}}"},
                }
            },
        }
        owner.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint}).raise_for_status()
        r = owner.put(
            f"/batch-endpoints/{endpoint}/deployments/pipe",
            json={
                "name": "pipe",
                "endpoint_name": endpoint,
                "type": "pipeline",
                "component": pipeline,
            },
        )
        assert r.status_code == 201, r.text
    env = sdk_env(azurite_workspace)
    env.update(HTTPS_INPUT=url, PIPELINE_EP=endpoint)
    out = run_sdk(LITERAL_SAMPLES, env, tmp_path)
    assert out["status"] == "Completed"
    assert out["seen"] == {
        "files": ["row0.csv", "row1.csv"],
        "literals": ["append", "0.5", "3", "True"],
    }
    assert out["children"] == [out["job"] + "-batchscoring"]


STREAM_FINISHED = """
ml.jobs.stream(os.environ["JOB"])
print(json.dumps({}))
"""


def test_stream_prints_the_logs_of_a_job_that_already_ended(
    tls_server: RunningServer, tmp_path: Path
) -> None:
    """``jobs.stream`` prints log lines only inside its poll loop; a job that ended before
    the stream began still has its progress log printed, then its true status."""
    from tests.integration.helpers import invoke_body, wait_for_job

    folder = f"stream-data/{unique('in')}"
    with tls_client(tls_server) as owner:
        owner.put(
            f"/datastores/workspaceblobstore/files/{folder}/part0.csv", content=b"x\n"
        ).raise_for_status()
        uri = f"azureml://datastores/workspaceblobstore/paths/{folder}/"
        created = owner.post(
            f"/endpoints/{ENDPOINT}/jobs",
            json=invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}}),
        )
        assert created.status_code == 201, created.text
        job = wait_for_job(owner, created.json()["name"])
        assert job["status"] == "Completed"
        log = owner.get(f"/jobs/{job['name']}/logs/job_progress_overview.txt")
        log.raise_for_status()
    lines = [line for line in log.text.splitlines() if line.strip()]
    assert lines
    env = azure_env(tls_server)
    env["JOB"] = job["name"]
    out = run_sdk(STREAM_FINISHED, env, tmp_path)
    printed = out["_stdout"]
    assert all(line in printed for line in lines), printed
    assert printed.index(lines[-1]) < printed.index("Execution Summary")
    again = run_sdk(STREAM_FINISHED, env, tmp_path)["_stdout"]  # every stream prints them
    assert all(line in again for line in lines), again
