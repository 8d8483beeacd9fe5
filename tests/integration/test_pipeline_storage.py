"""Pipeline jobs over remote storage, against a real server, Azurite (Azure Blob) and an S3
server: data inputs in every reference form, a code folder in S3 and outputs committed to
remote datastores. Each job's outputs must equal those of the same job over local data."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration import storage_services as svc
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import DS, invoke_body, read_output, unique, upload_folder
from tests.integration.helpers import wait_for_job as wait

pytestmark = pytest.mark.slow

STEPS_SCRIPT = r"""
import hashlib, pathlib, sys

command, args = sys.argv[1], sys.argv[2:]
if command == "summarize":  # summarize <table folder> <settings file> <out>
    table, settings, out = pathlib.Path(args[0]), pathlib.Path(args[1]), pathlib.Path(args[2])
    assert settings.is_file(), settings
    rows = [
        f"{p.relative_to(table).as_posix()} {hashlib.md5(p.read_bytes()).hexdigest()}"
        for p in sorted(table.rglob("*")) if p.is_file()
    ]
    (out / "summary.txt").write_text("\n".join(rows) + "\n")
    (out / "nested").mkdir()
    (out / "nested" / "settings.txt").write_text(settings.read_text().upper())
elif command == "report":  # report <summary folder> <out>
    source, out = pathlib.Path(args[0]), pathlib.Path(args[1])
    lines = (source / "summary.txt").read_text().splitlines()
    settings = (source / "nested" / "settings.txt").read_text()
    (out / "report.txt").write_text(f"{len(lines)} files, settings {settings}")
"""

# Binary and nested files, so a truncated, decoded or flattened copy shows in the md5 list.
TABLE = {
    "a.csv": b"x,y\n1,2\n",
    "b.csv": b"x,y\n3,4\n",
    "sub/c.bin": bytes(range(256)) * 64,
}
SETTINGS = b"threshold=0.5\n"


@dataclass(frozen=True)
class Setup:
    server: RunningServer
    client: httpx.Client
    container: str  # Azurite, registered as blob_ds
    bucket: str  # S3, registered as s3_ds
    local_table: str  # the same files in the default (local) datastore
    local_settings: str
    endpoint: str  # its pipeline's code folder is in S3


def _pipeline(code: str) -> dict[str, Any]:
    def step(line: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "command",
            "code": code,
            "command": f"python steps.py {line}",
            "inputs": inputs,
            "outputs": {"out": {"type": "uri_folder"}},
        }

    return {
        "name": unique("remote"),
        "type": "pipeline",
        "inputs": {"table": {"type": "uri_folder"}, "settings": {"type": "uri_file"}},
        "outputs": {"summary": {"type": "uri_folder"}, "report": {"type": "uri_folder"}},
        "jobs": {
            "summarize": {
                "component": step(
                    "summarize ${{inputs.table}} ${{inputs.settings}} ${{outputs.out}}",
                    {"table": {"type": "uri_folder"}, "settings": {"type": "uri_file"}},
                ),
                "inputs": {
                    "table": "${{parent.inputs.table}}",
                    "settings": "${{parent.inputs.settings}}",
                },
                "outputs": {"out": "${{parent.outputs.summary}}"},
            },
            "report": {
                "component": step(
                    "report ${{inputs.source}} ${{outputs.out}}", {"source": {"type": "uri_folder"}}
                ),
                "inputs": {"source": "${{parent.jobs.summarize.outputs.out}}"},
                "outputs": {"out": "${{parent.outputs.report}}"},
            },
        },
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    env = {**svc.server_env(), "SLUICEWAY_MAX_CONCURRENT_JOBS": "2"}
    server = start_server(tmp_path_factory.mktemp("pipeline-storage-home"), extra_env=env)
    client = server.client()
    try:
        files = tmp_path_factory.mktemp("files")
        for name, content in TABLE.items():
            (files / "table" / name).parent.mkdir(parents=True, exist_ok=True)
            (files / "table" / name).write_bytes(content)
        (files / "settings" / "settings.txt").parent.mkdir()
        (files / "settings" / "settings.txt").write_bytes(SETTINGS)
        (files / "code" / "steps.py").parent.mkdir()
        (files / "code" / "steps.py").write_text(STEPS_SCRIPT)

        container, bucket = svc.make_container("pipe"), svc.make_bucket("pipe")
        for store, upload in ((container, svc.upload_to_container), (bucket, svc.upload_to_bucket)):
            upload(store, files / "table", "tables")
            upload(store, files / "settings", "settings")
        svc.upload_to_bucket(bucket, files / "code", "code/steps")
        for body in (
            svc.blob_datastore_yaml("blob_ds", container),
            svc.s3_datastore_yaml("s3_ds", bucket),
        ):
            r = client.put(f"/datastores/{body['name']}", json=body)
            assert r.status_code == 201, r.text

        prefix = unique("local")
        local_table = upload_folder(client, files / "table", f"{prefix}/table")
        upload_folder(client, files / "settings", f"{prefix}/settings")

        endpoint = unique("plremote")
        r = client.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint})
        assert r.status_code == 201, r.text
        body = {
            "name": "pipe",
            "endpoint_name": endpoint,
            "type": "pipeline",
            "component": _pipeline("azureml://datastores/s3_ds/paths/code/steps/"),
        }
        r = client.put(f"/batch-endpoints/{endpoint}/deployments/pipe", json=body)
        assert r.status_code == 201, r.text
        yield Setup(
            server,
            client,
            container,
            bucket,
            local_table,
            f"{DS}/{prefix}/settings/settings.txt",
            endpoint,
        )
    finally:
        client.close()
        stop_server(server)


def _folder(uri: str) -> dict[str, str]:
    return {"JobInputType": "UriFolder", "Uri": uri}


def _file(uri: str) -> dict[str, str]:
    return {"JobInputType": "UriFile", "Uri": uri}


def _invoke(setup: Setup, inputs: dict[str, Any], outputs: dict[str, Any] | None = None) -> str:
    r = setup.client.post(
        f"/endpoints/{setup.endpoint}/jobs", json=invoke_body(inputs, outputs=outputs)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["name"])


def _results(setup: Setup, job: str) -> dict[str, dict[str, str]]:
    done = wait(setup.client, job, timeout=120)
    assert done["status"] == "Completed", done["error"]
    return {out: read_output(setup.client, job, out) for out in ("summary", "report")}


def test_remote_inputs_code_and_outputs_match_the_same_job_over_local_data(setup: Setup) -> None:
    out = unique("out")
    remote_outputs = {
        "summary": {
            "JobOutputType": "UriFolder",
            "Uri": f"azureml://datastores/blob_ds/paths/{out}/",
        },
        "report": {
            "JobOutputType": "UriFolder",
            "Uri": f"azureml://datastores/s3_ds/paths/{out}/report/",
        },
    }
    asset = unique("settings")
    r = setup.client.post(
        "/data",
        json={
            "name": asset,
            "version": "1",
            "type": "uri_file",
            "path": "azureml://datastores/blob_ds/paths/settings/settings.txt",
        },
    )
    assert r.status_code == 201, r.text

    # A storage URL of S3 and a data asset in Azurite; outputs to Azurite and S3.
    from_urls = _invoke(
        setup,
        {"table": _folder(f"s3://{setup.bucket}/tables/"), "settings": _file(f"azureml:{asset}:1")},
        remote_outputs,
    )
    # Datastore paths in Azurite and S3; outputs to the default datastore.
    from_paths = _invoke(
        setup,
        {
            "table": _folder("azureml://datastores/blob_ds/paths/tables/"),
            "settings": _file("azureml://datastores/s3_ds/paths/settings/settings.txt"),
        },
    )
    local = _invoke(
        setup, {"table": _folder(setup.local_table), "settings": _file(setup.local_settings)}
    )

    expected = _results(setup, local)
    summary = "".join(
        f"{name} {hashlib.md5(content).hexdigest()}\n" for name, content in sorted(TABLE.items())
    )
    assert expected["summary"] == {
        "summary.txt": summary,
        "nested/settings.txt": SETTINGS.decode().upper(),
    }
    assert expected["report"] == {"report.txt": f"3 files, settings {SETTINGS.decode().upper()}"}
    assert _results(setup, from_urls) == expected
    assert _results(setup, from_paths) == expected

    # The overridden outputs are in the remote stores themselves.
    s3 = svc.s3_filesystem()
    assert (
        s3.cat(f"{setup.bucket}/{out}/report/report.txt").decode()
        == (expected["report"]["report.txt"])
    )
    blob = svc.container_client(setup.container)
    assert blob.download_blob(f"{out}/summary.txt").readall().decode() == summary
    # Everything staged for the jobs is gone once they end.
    staged = setup.server.home / "staging"
    assert staged.is_dir()
    assert not any((staged / job).exists() for job in (from_urls, from_paths, local))


def test_remote_inputs_are_checked_when_the_job_is_created(setup: Setup) -> None:
    cases = [
        (_folder("azureml://datastores/s3_ds/paths/no-such-folder/"), "does not exist"),
        (_folder("azureml://datastores/blob_ds/paths/settings/settings.txt"), "use uri_file"),
    ]
    for table, says in cases:
        r = setup.client.post(
            f"/endpoints/{setup.endpoint}/jobs",
            json=invoke_body(
                {"table": table, "settings": _file(f"s3://{setup.bucket}/settings/settings.txt")}
            ),
        )
        assert r.status_code in (400, 404, 422), r.text
        assert "'table'" in r.text and says in r.text, r.text
    # A remote output folder that already holds files is refused, as for a local one.
    r = setup.client.post(
        f"/endpoints/{setup.endpoint}/jobs",
        json=invoke_body(
            {"table": _folder(setup.local_table), "settings": _file(setup.local_settings)},
            outputs={
                "report": {
                    "JobOutputType": "UriFolder",
                    "Uri": "azureml://datastores/s3_ds/paths/tables/",
                }
            },
        ),
    )
    assert r.status_code == 409, r.text
    assert "OutputData.report" in r.text, r.text
