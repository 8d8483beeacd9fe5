"""The reference page's data-asset, datastore and storage-account examples, with Azurite and an
S3 server as the storage, against a real Sluiceway server and real worker processes.

Every job scores the heart-disease example's CSV files with its MLflow model; the predictions
must equal those of the same files read from the default (local) datastore.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sluiceway import Input, MLClient, Output
from sluiceway.cli.main import main
from sluiceway.constants import AssetTypes
from sluiceway.entities import AccountKeyConfiguration, AzureBlobDatastore
from sluiceway.errors import ConflictError
from sluiceway.examples.heart import write_example
from tests.integration import storage_services as svc
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    read_output,
    unique,
    upload_folder,
    wait_for_job,
)

pytestmark = pytest.mark.slow

ENDPOINT = "heart-classifier-batch"
HASHER = "file-hasher"
# A cheap scoring script for the forms beyond the reference page's: one row per file, its name
# and the md5 of its bytes, so a wrong or partial file shows.
HASH_SCRIPT = """\
import hashlib
import os


def init():
    pass


def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path, "rb") as fh:
            rows.append(f"{os.path.basename(path)} {hashlib.md5(fh.read()).hexdigest()}")
    return rows
"""
# One worker: light on 2 cores. The MLflow model scores a folder in one mini-batch; the cheap
# hashing script takes five files at a time, so inputs are prefetched while it runs.
LIGHT = {"Compute": {"InstanceCount": 1}}
MINI_BATCH = {ENDPOINT: 10, HASHER: 5}
FILE = "heart-unlabeled-3.csv"


@dataclass(frozen=True)
class Stores:
    """Where the example's data sits, and the datastores that reach it."""

    blob_container: str  # registered as datastore blob_ds
    adls_filesystem: str  # registered as adls_ds
    bucket: str  # registered as s3_ds
    public_container: str  # no datastore: read anonymously
    private_container: str  # no datastore: read with a SAS
    unregistered_bucket: str  # no datastore: the server's ambient AWS credentials


@dataclass(frozen=True)
class Setup:
    server: RunningServer
    client: httpx.Client
    example: Path
    stores: Stores
    baseline: list[str]  # the predictions for the whole folder, read from the local datastore
    hashes: list[str]  # what the hashing endpoint gives for the folder
    ids: dict[str, str]  # datastore name -> ARM id


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    env = svc.server_env()
    env["SLUICEWAY_MAX_CONCURRENT_JOBS"] = "3"
    server = start_server(tmp_path_factory.mktemp("storage-home"), extra_env=env)
    client = server.client()
    try:
        example = write_example(tmp_path_factory.mktemp("heart")).root
        stores = Stores(
            blob_container=svc.make_container("blob"),
            adls_filesystem=svc.make_container("adls"),
            bucket=svc.make_bucket("sluice"),
            public_container=svc.make_container("pub", public=True),
            private_container=svc.make_container("priv"),
            unregistered_bucket=svc.make_bucket("ambient"),
        )
        for container in (
            stores.blob_container,
            stores.adls_filesystem,
            stores.public_container,
            stores.private_container,
        ):
            svc.upload_to_container(container, example / "data", "heart-disease-uci/data")
        for bucket in (stores.bucket, stores.unregistered_bucket):
            svc.upload_to_bucket(bucket, example / "data", "heart-disease-uci/data")
        for body in (
            svc.blob_datastore_yaml("blob_ds", stores.blob_container),
            svc.adls_datastore_yaml("adls_ds", stores.adls_filesystem),
            svc.s3_datastore_yaml("s3_ds", stores.bucket),
        ):
            r = client.put(f"/datastores/{body['name']}", json=body)
            assert r.status_code == 201, r.text
        ids = {d["name"]: d["id"] for d in client.get("/datastores").json()}
        create_script_deployment(
            client,
            tmp_path_factory.mktemp("hasher"),
            HASHER,
            "hash-dpl",
            script=HASH_SCRIPT,
            settings={"mini_batch_size": 5},
        )
        hashes = sorted(
            f"{p.name} {hashlib.md5(p.read_bytes()).hexdigest()}"
            for p in (example / "data").glob("*.csv")
        )

        with MLClient(endpoint=server.url, token=server.token) as ml:
            from sluiceway import Model, load_batch_deployment, load_batch_endpoint

            ml.models.create_or_update(
                Model(name="heart-classifier-mlflow", type="mlflow_model", path=example / "model")
            )
            ml.batch_endpoints.begin_create_or_update(
                load_batch_endpoint(example / "endpoint.yml")
            ).result()
            ml.batch_deployments.begin_create_or_update(
                load_batch_deployment(example / "deployment.yml")
            ).result()
        local = upload_folder(client, example / "data", "heart-local")
        job = invoke(client, "UriFolder", local)
        done = wait_for_job(client, job, timeout=300)
        assert done["status"] == "Completed", done
        baseline = rows(client, job)
        assert len(baseline) == 300
        yield Setup(server, client, example, stores, baseline, hashes, ids)
    finally:
        client.close()
        stop_server(server)


def invoke(
    client: httpx.Client,
    kind: str,
    uri: str,
    outputs: dict[str, Any] | None = None,
    *,
    expect: int = 201,
    endpoint: str = ENDPOINT,
) -> str:
    r = client.post(
        f"/endpoints/{endpoint}/jobs",
        json=invoke_body(
            {"heart_dataset": {"JobInputType": kind, "Uri": uri}},
            outputs,
            MiniBatchSize=MINI_BATCH[endpoint],
            **LIGHT,
        ),
    )
    assert r.status_code == expect, r.text
    return str(r.json().get("name", "")) if expect == 201 else r.text


def rows(client: httpx.Client, job: str) -> list[str]:
    (text,) = read_output(client, job).values()
    return sorted(text.splitlines())


def file_rows(rows: list[str], name: str) -> list[str]:
    """The rows of one file: MLflow rows end with its name, hashing rows start with it."""
    return [r for r in rows if name in (r.split()[0], r.split()[-1])]


def emulator_url(container: str, path: str = "heart-disease-uci/data") -> str:
    return f"{svc.azurite_url()}/{svc.AZURITE_ACCOUNT}/{container}/{path}"


def test_every_input_form_gives_the_local_predictions(setup: Setup) -> None:
    client, stores, ids = setup.client, setup.stores, setup.ids
    acct = svc.AZURITE_ACCOUNT
    data = "heart-disease-uci/data"
    sas = svc.container_sas(stores.private_container)

    # A data asset whose path is a storage URL (the reference page's "heart-dataset-unlabeled").
    asset = unique("heart-dataset-unlabeled")
    r = client.post(
        "/data",
        json={"name": asset, "type": "uri_folder", "path": emulator_url(stores.blob_container)},
    )
    assert r.status_code == 201, r.text
    asset_id = r.json()["id"]
    r = client.post(
        "/data",
        json={
            "name": asset + "-file",
            "type": "uri_file",
            "path": f"s3://{stores.bucket}/{data}/{FILE}",
        },
    )
    assert r.status_code == 201, r.text

    # The reference page's three sources, scored by the MLflow model, folder and file.
    page = {
        "data asset id": ("UriFolder", asset_id),
        "data asset file": ("UriFile", f"azureml:{asset}-file:1"),
        "datastore id": ("UriFolder", f"azureml:{ids['blob_ds']}/paths/{data}"),
        "datastore file": ("UriFile", f"azureml://datastores/blob_ds/paths/{data}/{FILE}"),
        "storage account": ("UriFolder", emulator_url(stores.public_container)),
        "storage account file": (
            "UriFile",
            emulator_url(stores.public_container, f"{data}/{FILE}"),
        ),
    }
    # Every other form, through the hashing endpoint.
    fs, bl = stores.adls_filesystem, stores.blob_container
    more = {
        "data asset latest": ("UriFolder", f"azureml:/{asset}@latest"),
        "adls datastore": ("UriFolder", f"azureml://datastores/adls_ds/paths/{data}/"),
        "s3 datastore": ("UriFolder", f"azureml://datastores/s3_ds/paths/{data}"),
        "private container with SAS": (
            "UriFolder",
            f"{emulator_url(stores.private_container)}?{sas}",
        ),
        "abfss": ("UriFolder", f"abfss://{fs}@{acct}.dfs.core.windows.net/{data}"),
        "wasbs": ("UriFolder", f"wasbs://{bl}@{acct}.blob.core.windows.net/{data}"),
        "s3 ambient credentials": ("UriFolder", f"s3://{stores.unregistered_bucket}/{data}/"),
        "SAS blob file": (
            "UriFile",
            f"{emulator_url(stores.private_container, f'{data}/{FILE}')}?{sas}",
        ),
        "s3 file": ("UriFile", f"s3://{stores.bucket}/{data}/{FILE}"),
        "abfss file": ("UriFile", f"abfss://{fs}@{acct}.dfs.core.windows.net/{data}/{FILE}"),
    }
    jobs = {form: (invoke(client, kind, uri), ENDPOINT) for form, (kind, uri) in page.items()}
    for form, (kind, uri) in more.items():
        jobs[form] = (invoke(client, kind, uri, endpoint=HASHER), HASHER)
    for form, (job, endpoint) in jobs.items():
        done = wait_for_job(client, job, timeout=300)
        assert done["status"] == "Completed", (form, done)
        full = setup.baseline if endpoint == ENDPOINT else setup.hashes
        expected = file_rows(full, FILE) if "file" in form else full
        assert expected and rows(client, job) == expected, form
    # Remote inputs were staged for the job and cleaned up after it.
    assert not any((setup.server.home / "staging").glob("*/inputs/*"))


def test_the_sdk_and_cli_forms_of_the_reference_page(
    setup: Setup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, stores = setup.server, setup.stores
    with MLClient(endpoint=server.url, token=server.token) as ml:
        ml.jobs._out = lambda _line: None
        blob = ml.datastores.get("blob_ds")
        job = ml.batch_endpoints.invoke(
            endpoint_name=ENDPOINT,
            input=Input(type=AssetTypes.URI_FOLDER, path=f"{blob.id}/paths/heart-disease-uci/data"),
            outputs={
                "score": Output(
                    type=AssetTypes.URI_FOLDER,
                    path=f"{ml.datastores.get('s3_ds').id}/paths/batch-jobs/{unique('sdk')}",
                )
            },
            params_override=[{"mini_batch_size": "5"}, {"compute.instance_count": "1"}],
        )
        ml.jobs.stream(job.name)
        ml.jobs.download(name=job.name, output_name="score", download_path=tmp_path / "sdk")
    downloaded = tmp_path / "sdk" / "named-outputs" / "score" / "predictions.csv"
    assert sorted(downloaded.read_text().splitlines()) == setup.baseline

    monkeypatch.setenv("SLUICEWAY_ENDPOINT", server.url)
    monkeypatch.setenv("SLUICEWAY_TOKEN", server.token)
    out_path = f"azureml://datastores/adls_ds/paths/batch-jobs/{unique('cli')}"
    capsys.readouterr()
    code = main(
        [
            "batch-endpoint", "invoke", "--name", HASHER,
            "--set", "inputs.heart_dataset.type", "uri_folder",
            "inputs.heart_dataset.path", emulator_url(stores.public_container),
            "--set", f"outputs.score.path={out_path}",
            "--mini-batch-size", "5", "--instance-count", "1",
        ]
    )  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    name = json.loads(printed.out)["name"]
    assert wait_for_job(setup.client, name, timeout=300)["status"] == "Completed"
    code = main(["job", "download", "-n", name, "--download-path", str(tmp_path / "cli")])
    assert code == 0, capsys.readouterr().err
    text = (tmp_path / "cli" / "named-outputs" / "score" / "predictions.csv").read_text()
    assert sorted(text.splitlines()) == setup.hashes
    in_store = svc.container_client(stores.adls_filesystem).download_blob(
        out_path.split("/paths/", 1)[1] + "/predictions.csv"
    )
    assert in_store.readall().decode() == text


def test_wrong_inputs_are_refused_naming_the_input(setup: Setup) -> None:
    client, stores = setup.client, setup.stores
    before = len(client.get("/jobs", params={"limit": 1000}).json())
    data = "heart-disease-uci/data"
    cases = {
        f"azureml://datastores/blob_ds/paths/{data}/missing/": ("UriFolder", "does not exist"),
        f"azureml://datastores/s3_ds/paths/{data}": ("UriFile", "is a folder"),
        f"s3://{stores.bucket}/{data}/{FILE}": ("UriFolder", "is a file"),
        f"abfss://{stores.adls_filesystem}@devstoreaccount1.dfs.core.windows.net/nothing": (
            "UriFolder",
            "does not exist",
        ),
        # A private container, without a SAS and with no datastore: not readable.
        emulator_url(stores.private_container): ("UriFolder", "cannot be read"),
        "https://example.com/data/heart.csv": ("UriFile", "plain https URL"),
        "azureml://datastores/no_such_ds/paths/x": ("UriFolder", "does not exist"),
        f"azureml://datastores/blob_ds/paths/../{data}": ("UriFolder", "leaves the datastore"),
        f"wasbs://{stores.blob_container}@devstoreaccount1.blob.core.windows.net": (
            "UriFile",
            "is a folder",
        ),
    }
    for uri, (kind, message) in cases.items():
        text = invoke(setup.client, kind, uri, expect=400 if "no_such_ds" not in uri else 404)
        assert message in text, (uri, text)
        assert "heart_dataset" in text or "no_such_ds" in text, (uri, text)
    assert len(client.get("/jobs", params={"limit": 1000}).json()) == before  # no job was made


def test_outputs_land_in_each_datastore_and_are_never_overwritten(setup: Setup) -> None:
    client, stores = setup.client, setup.stores
    source = "azureml://datastores/s3_ds/paths/heart-disease-uci/data"
    folder = unique("out")
    readers = {
        "workspaceblobstore": lambda p: (setup.server.home / "blobstore" / p).read_text(),
        "blob_ds": lambda p: (
            svc.container_client(stores.blob_container).download_blob(p).readall().decode()
        ),
        "adls_ds": lambda p: (
            svc.container_client(stores.adls_filesystem).download_blob(p).readall().decode()
        ),
        "s3_ds": lambda p: svc.s3_filesystem().cat(f"{stores.bucket}/{p}").decode(),
    }
    jobs = {}
    for store in readers:
        outputs = {
            "score": {
                "JobOutputType": "UriFile",
                "Uri": f"azureml://datastores/{store}/paths/{folder}/scores.csv",
            }
        }
        jobs[store] = invoke(client, "UriFolder", source, outputs, endpoint=HASHER)
    for store, job in jobs.items():
        done = wait_for_job(client, job, timeout=300)
        assert done["status"] == "Completed", (store, done)
        text = readers[store](f"{folder}/scores.csv")
        assert sorted(text.splitlines()) == setup.hashes, store

    # The same path again: refused before a job is made, and the file is untouched.
    for store in readers:
        outputs = {
            "score": {
                "JobOutputType": "UriFile",
                "Uri": f"azureml://datastores/{store}/paths/{folder}/scores.csv",
            }
        }
        text = invoke(client, "UriFolder", source, outputs, expect=409, endpoint=HASHER)
        assert "already exists" in text and "never overwritten" in text

    # Two jobs racing for one new path in S3: one writes it, the other fails cleanly.
    race = f"azureml://datastores/s3_ds/paths/{unique('race')}/scores.csv"
    outputs = {"score": {"JobOutputType": "UriFile", "Uri": race}}
    first, second = (
        invoke(client, "UriFolder", source, outputs, endpoint=HASHER) for _ in range(2)
    )
    ended = {job: wait_for_job(client, job, timeout=300) for job in (first, second)}
    statuses = sorted(e["status"] for e in ended.values())
    assert statuses == ["Completed", "Failed"], ended
    failed = next(e for e in ended.values() if e["status"] == "Failed")
    assert "already exists" in failed["error"]["message"]
    written = readers["s3_ds"](race.split("/paths/", 1)[1])
    assert sorted(written.splitlines()) == setup.hashes

    # An https URL is read-only.
    outputs = {
        "score": {"JobOutputType": "UriFolder", "Uri": emulator_url(stores.public_container, "o/")}
    }
    text = invoke(client, "UriFolder", source, outputs, expect=400, endpoint=HASHER)
    assert "read-only" in text and "OutputData.score" in text


def test_datastores_from_yaml_never_show_their_secrets(
    setup: Setup,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, client, stores = setup.server, setup.client, setup.stores
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", server.url)
    monkeypatch.setenv("SLUICEWAY_TOKEN", server.token)
    spec = svc.blob_datastore_yaml("yaml_blob", stores.blob_container, description="From YAML")
    spec["$schema"] = "https://azuremlschemas.azureedge.net/latest/azureBlob.schema.json"
    (tmp_path / "blob.yml").write_text(yaml.safe_dump(spec))
    capsys.readouterr()
    assert main(["datastore", "create", "-f", str(tmp_path / "blob.yml")]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["type"] == "azure_blob" and created["container_name"] == stores.blob_container
    assert created["credentials"] == {"type": "account_key"}

    with MLClient(endpoint=server.url, token=server.token) as ml:
        store = ml.datastores.create_or_update(
            AzureBlobDatastore(
                name="sdk_blob",
                account_name=svc.AZURITE_ACCOUNT,
                container_name=stores.blob_container,
                endpoint=f"{svc.azurite_url()}/{svc.AZURITE_ACCOUNT}",
                credentials=AccountKeyConfiguration(account_key=svc.AZURITE_KEY),
            )
        )
        assert store.container_name == stores.blob_container
        with pytest.raises(ConflictError):
            ml.datastores.delete("workspaceblobstore")
        ml.datastores.delete("sdk_blob")

    answers = [
        client.get("/datastores").text,
        client.get("/datastores/yaml_blob").text,
        client.put("/datastores/yaml_blob", json=spec | {"$schema": None}).text,
    ]
    for text in answers:
        assert svc.AZURITE_KEY not in text and svc.AZURITE_KEY[:20] not in text
    db = (server.home / "workspace.db").read_bytes()
    assert svc.AZURITE_KEY.encode() not in db

    # Settings of another type, and an unknown type, are 4xx naming the field.
    bad = dict(spec, bucket="b")
    r = client.put("/datastores/yaml_blob", json=bad)
    assert r.status_code == 400 and "bucket" in r.json()["error"]["message"]
    r = client.put("/datastores/odd", json={"name": "odd", "type": "ftp"})
    assert r.status_code == 400 and "ftp" in r.json()["error"]["message"]
    r = client.put("/datastores/s3_bad", json={"name": "s3_bad", "type": "s3"})
    assert r.status_code == 400 and "bucket" in r.json()["error"]["message"]

    assert main(["datastore", "delete", "-n", "yaml_blob"]) == 0
    assert client.get("/datastores/yaml_blob").status_code == 404


def test_workspaceblobstore_in_s3(tmp_path: Path) -> None:
    """A server whose default datastore is an S3 bucket keeps uploads, models, logs and
    outputs there; its jobs fetch the model and code once and stream the inputs."""
    from tests.integration.helpers import create_script_deployment, write_numbered_files

    bucket = svc.make_bucket("default")
    default = {k: v for k, v in svc.s3_datastore_yaml("x", bucket).items() if k != "name"}
    env = {**svc.server_env(), "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(default)}
    server = start_server(tmp_path / "home", extra_env=env)
    try:
        with server.client() as client:
            store = client.get("/datastores/workspaceblobstore").json()
            assert store["type"] == "s3" and store["bucket"] == bucket
            create_script_deployment(client, tmp_path, "s3-default", "dep")
            write_numbered_files(tmp_path / "data", 4)
            uri = upload_folder(client, tmp_path / "data", "inputs/numbers")
            job = invoke_job(client, "s3-default", uri)
            done = wait_for_job(client, job, timeout=180)
            assert done["status"] == "Completed", done
            output = read_output(client, job)
            assert len(next(iter(output.values())).splitlines()) == 4
            logs = client.get(f"/jobs/{job}/logs").json()
            assert any(f["path"] == "job_progress_overview.txt" for f in logs)
        fs = svc.s3_filesystem()
        assert fs.exists(f"{bucket}/azureml/{job}/score/predictions.csv")
        assert fs.exists(f"{bucket}/azureml/{job}/logs/job_progress_overview.txt")
        assert not (tmp_path / "home" / "blobstore" / "azureml").exists()
    finally:
        stop_server(server)


def invoke_job(client: httpx.Client, endpoint: str, uri: str) -> str:
    r = client.post(
        f"/endpoints/{endpoint}/jobs",
        json=invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}}),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["name"])
