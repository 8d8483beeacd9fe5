"""A deployment's code cannot reach the server's secrets: its scoring script and its pipeline's
command steps run with a scrubbed environment and, when the server runs as root, as another
user that cannot open the workspace home's ``token``, ``secret.key`` or ``workspace.db``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    read_output,
    unique,
    upload_folder,
    wait_for_job,
)

CANARIES = {
    "AWS_SECRET_ACCESS_KEY": "canary-aws",
    "AZURE_STORAGE_KEY": "canary-azure",
    "SLUICEWAY_WORKER_CANARY": "canary-sluiceway",
}
SECRETS = ("token", "secret.key", "workspace.db", "workspace.db-wal", "workspace.db-shm")

PROBE = """
import json, os

SECRETS = SECRETS_HERE

def probe(home):
    files = {}
    for name in SECRETS:
        try:
            with open(os.path.join(home, name), "rb") as fh:
                fh.read(16)
            files[name] = "read"
        except OSError as exc:
            files[name] = type(exc).__name__
    try:
        listing = sorted(os.listdir(home))
    except OSError as exc:
        listing = type(exc).__name__
    return {"files": files, "listing": listing, "environ": dict(os.environ), "uid": os.getuid()}
""".replace("SECRETS_HERE", repr(SECRETS))

SCORING_SCRIPT = (
    PROBE
    + """
def init():
    global seen
    seen = probe(os.environ["PROBE_HOME"])

def run(mini_batch):
    out = os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "probe.json")
    with open(out, "w") as fh:
        json.dump(seen, fh)
    return ["probed" for _ in mini_batch]
"""
)

STEP_SCRIPT = (
    PROBE
    + """
import sys
home, out = sys.argv[1], sys.argv[2]
with open(os.path.join(out, "probe.json"), "w") as fh:
    json.dump(probe(home), fh)
"""
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose own environment holds credentials and a Sluiceway setting."""
    running = start_server(tmp_path_factory.mktemp("trust") / "home", extra_env=CANARIES)
    yield running
    stop_server(running)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def run_on_one_file(client: httpx.Client, tmp_path: Path, endpoint: str) -> dict[str, Any]:
    """Invoke ``endpoint`` on a folder of one file; the job, which must complete."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "one.txt").write_text("1\n")
    uri = upload_folder(client, data, f"data/{endpoint}")
    body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
    r = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["name"])
    assert job["status"] == "Completed", job.get("error")
    return job


def check_probe(seen: dict[str, Any], server: RunningServer) -> None:
    environ = seen["environ"]
    leaked = sorted(
        name
        for name in environ
        if name.startswith(("SLUICEWAY_", "AWS_", "AZURE_")) or name in CANARIES
    )
    assert not leaked, f"the worker saw {leaked}"
    assert not set(environ.values()) & set(CANARIES.values())
    assert environ.get("HOME") != os.environ.get("HOME")
    assert environ.get("DEPLOYMENT_SETTING") == "kept"
    if os.geteuid() != 0:
        return  # workers run as the server's user: only the environment is scrubbed
    assert seen["uid"] != 0
    assert all(result != "read" for result in seen["files"].values()), seen["files"]
    listing = seen["listing"]
    assert isinstance(listing, str) or not set(listing) & set(SECRETS), listing
    # The secrets are there: the worker could not reach them.
    assert (server.home / "token").is_file() and (server.home / "secret.key").is_file()


def test_a_scoring_script_cannot_read_the_servers_secrets_or_environment(
    client: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    endpoint = unique("trust")
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "blue",
        script=SCORING_SCRIPT,
        settings={
            "environment_variables": {
                "PROBE_HOME": str(server.home),
                "DEPLOYMENT_SETTING": "kept",
            }
        },
    )
    job = run_on_one_file(client, tmp_path, endpoint)
    seen = json.loads(read_output(client, job["name"])["probe.json"])
    check_probe(seen, server)


def test_a_pipeline_step_cannot_read_the_servers_secrets_or_environment(
    client: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(STEP_SCRIPT)
    code_uri = upload_folder(client, code, f"code/{unique('probe')}")
    step = {
        "type": "command",
        "code": code_uri,
        "command": f"python probe.py {server.home} ${{{{outputs.seen}}}}",
        "environment_variables": {"DEPLOYMENT_SETTING": "kept"},
        "outputs": {"seen": {"type": "uri_folder"}},
    }
    pipeline = {
        "name": unique("probe"),
        "type": "pipeline",
        "outputs": {"seen": {"type": "uri_folder"}},
        "jobs": {"probe": {"component": step, "outputs": {"seen": "${{parent.outputs.seen}}"}}},
    }
    endpoint = unique("trustpl")
    r = client.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint})
    assert r.status_code == 201, r.text
    body = {"name": "pipe", "endpoint_name": endpoint, "type": "pipeline", "component": pipeline}
    r = client.put(f"/batch-endpoints/{endpoint}/deployments/pipe", json=body)
    assert r.status_code == 201, r.text
    r = client.post(f"/endpoints/{endpoint}/jobs", json=invoke_body({}))
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["name"])
    assert job["status"] == "Completed", job.get("error")
    seen = json.loads(client.get(f"/jobs/{job['name']}/outputs/seen/files/probe.json").text)
    check_probe(seen, server)


LINKING_SCRIPT = """
import os

def init():
    pass

def run(mini_batch):
    home = os.environ["PROBE_HOME"]
    out = os.environ["AZUREML_BI_OUTPUT_PATH"]
    os.symlink(os.path.join(home, "token"), os.path.join(out, "leak.txt"))
    os.symlink(home, os.path.join(out, "home"))
    return ["linked" for _ in mini_batch]
"""


def test_links_a_script_leaves_in_its_output_are_not_followed_by_the_commit(
    client: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    endpoint = unique("links")
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "blue",
        script=LINKING_SCRIPT,
        settings={"environment_variables": {"PROBE_HOME": str(server.home)}},
    )
    job = run_on_one_file(client, tmp_path, endpoint)
    files = read_output(client, job["name"])
    token = (server.home / "token").read_text().strip()
    assert "leak.txt" not in files
    assert not any(token in text for text in files.values())
