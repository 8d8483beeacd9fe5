"""Helpers for integration tests that drive a server over plain REST."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx

DS = "azureml://datastores/workspaceblobstore/paths"

# A scoring script that reports, for each file, which mini-batch (by its first file) it was in.
ECHO_SCRIPT = """\
import os

def init():
    global model_dir
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    assert os.path.isdir(model_dir), model_dir
    assert os.path.isdir(os.environ["AZUREML_BI_OUTPUT_PATH"])

def run(mini_batch):
    first = os.path.basename(mini_batch[0])
    rows = []
    for path in mini_batch:
        with open(path) as fh:
            value = fh.read().strip()
        rows.append(f"{os.path.basename(path)} {value} batch-of-{first} {len(mini_batch)}")
    return rows
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def upload_folder(client: httpx.Client, folder: Path, prefix: str) -> str:
    """PUT every file of ``folder`` under ``prefix`` in workspaceblobstore; its folder URI."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        response = client.put(
            f"/datastores/workspaceblobstore/files/{prefix}/{relative}", content=path.read_bytes()
        )
        response.raise_for_status()
    return f"{DS}/{prefix}/"


def write_numbered_files(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"file-{i:02d}.txt" for i in range(count)]
    for i, name in enumerate(names):
        (folder / name).write_text(f"value-{i}\n")
    return names


def create_script_deployment(
    client: httpx.Client,
    tmp: Path,
    endpoint: str,
    deployment: str,
    *,
    script: str = ECHO_SCRIPT,
    settings: dict[str, Any] | None = None,
    instance_count: int = 1,
    compute: str | None = None,
) -> None:
    """An endpoint with a custom-model deployment running ``script`` (on ``compute``)."""
    model = tmp / "model"
    model.mkdir(exist_ok=True)
    (model / "weights.txt").write_text("1\n")
    code = tmp / "code"
    code.mkdir(exist_ok=True)
    (code / "score.py").write_text(script)
    model_uri = upload_folder(client, model, f"models/{endpoint}")
    code_uri = upload_folder(client, code, f"code/{endpoint}")
    model_name = unique("model")
    r = client.post("/models", json={"name": model_name, "type": "custom_model", "path": model_uri})
    assert r.status_code == 201, r.text
    r = client.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint})
    assert r.status_code in (200, 201), r.text
    body = {
        "name": deployment,
        "endpoint_name": endpoint,
        "type": "model",
        "model": f"azureml:{model_name}:1",
        "code_configuration": {"code": code_uri, "scoring_script": "score.py"},
        "resources": {"instance_count": instance_count},
        "settings": settings or {},
    }
    if compute is not None:
        body["compute"] = compute
    r = client.put(f"/batch-endpoints/{endpoint}/deployments/{deployment}", json=body)
    assert r.status_code == 201, r.text


def invoke_body(
    inputs: dict[str, Any], outputs: dict[str, Any] | None = None, **props: Any
) -> dict[str, Any]:
    properties: dict[str, Any] = {"InputData": inputs, **props}
    if outputs is not None:
        properties["OutputData"] = outputs
    return {"properties": properties}


def wait_for_job(client: httpx.Client, name: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{name}").raise_for_status().json()
        if job["status"] in {"Completed", "Failed", "Canceled"}:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {name} did not end in {timeout} s: {job}")


def read_output(client: httpx.Client, job: str, output: str = "score") -> dict[str, str]:
    listing = client.get(f"/jobs/{job}/outputs/{output}").raise_for_status().json()
    return {
        f["path"]: client.get(f"/jobs/{job}/outputs/{output}/files/{f['path']}").text
        for f in listing["files"]
    }


def datastore_uri(datastore: str, path: str) -> str:
    return f"azureml://datastores/{datastore}/paths/{path}"


def folder_input(uri: str) -> dict[str, str]:
    """A job input of the folder at ``uri``, in the REST face's shape."""
    return {"JobInputType": "UriFolder", "Uri": uri}


def folder_output(uri: str) -> dict[str, str]:
    """A job output to the folder at ``uri``, in the REST face's shape."""
    return {"JobOutputType": "UriFolder", "Uri": uri}


def put_file(client: httpx.Client, datastore: str, path: str, content: str) -> None:
    client.put(f"/datastores/{datastore}/files/{path}", content=content.encode()).raise_for_status()


def grant_role(owner: httpx.Client, name: str, role: str, scope: str) -> None:
    r = owner.post("/roles", json={"identity": name, "role": role, "scope": scope})
    assert r.status_code == 201, r.text


def new_user(owner: httpx.Client, name: str, roles: list[tuple[str, str]]) -> str:
    """A new user with ``(role, scope)`` roles, made over REST by ``owner``; its token."""
    r = owner.post("/identities", json={"name": name, "kind": "user"})
    assert r.status_code == 201, r.text
    for role, scope in roles:
        grant_role(owner, name, role, scope)
    r = owner.post(f"/identities/{name}/tokens", json={"expires_in": 3600})
    assert r.status_code in (200, 201), r.text
    token: str = r.json()["access_token"]
    return token
