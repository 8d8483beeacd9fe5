"""Registered code and models are immutable, uploads are write-once, and nobody's results can
be forged, against a real server with two identities: ``owner``, who deploys, and ``ivan``, an
invoker of the endpoint with ``write data`` on ``workspaceblobstore`` (as CLI users need, to
upload local inputs).

The owner deploys as the SDK does: model and code are uploaded to ``LocalUpload/<md5>/`` and
registered from there. Ivan then tries to change what the owner's next job runs or what the
owner's finished job shows; each attempt is refused and changes nothing. Files changed on disk
behind the server's back are caught when the next job starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluiceway import MLClient
from sluiceway.sdk.uploads import Uploader, scan
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import DS, invoke_body, new_user, read_output, unique, wait_for_job

pytestmark = pytest.mark.slow

ENDPOINT, DEPLOYMENT, PIPELINE = "trusted", "blue", "trusted-steps"
WS = "workspaceblobstore"
SCRIPT = """\
import os

def init():
    global weight
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")) as fh:
        weight = fh.read().strip()

def run(mini_batch):
    return [f"{os.path.basename(p)} genuine-{weight}" for p in mini_batch]
"""
FORGED_SCRIPT = SCRIPT.replace("genuine", "forged")
STEP = "import sys\nopen(sys.argv[1] + '/out.txt', 'w').write('genuine step')\n"
FORGED = b"forged"


@dataclass
class World:
    server: RunningServer
    owner: httpx.Client
    ivan: httpx.Client
    root: Path
    model_uri: str  # where the owner uploaded the model, in LocalUpload/
    code_uri: str  # where the owner uploaded the code, in LocalUpload/
    code_hash: str
    data_uri: str
    job: str  # a finished job of the owner's

    def deployment(self) -> dict[str, Any]:
        r = self.owner.get(f"/batch-endpoints/{ENDPOINT}/deployments/{DEPLOYMENT}")
        return r.raise_for_status().json()  # type: ignore[no-any-return]

    def model(self) -> dict[str, Any]:
        name = self.deployment()["model"].split(":")[1]
        r = self.owner.get(f"/models/{name}/versions/1")
        return r.raise_for_status().json()  # type: ignore[no-any-return]

    def invoke(self, client: httpx.Client, **outputs: Any) -> httpx.Response:
        inputs = {"data": {"JobInputType": "UriFolder", "Uri": self.data_uri}}
        return client.post(f"/endpoints/{ENDPOINT}/jobs", json=invoke_body(inputs, outputs or None))

    def run_job(self) -> dict[str, Any]:
        r = self.invoke(self.owner)
        assert r.status_code == 201, r.text
        return wait_for_job(self.owner, r.json()["name"])


def _path(uri: str) -> str:
    """The datastore path of a workspaceblobstore URI."""
    assert uri.startswith(f"{DS}/"), uri
    return uri[len(DS) + 1 :].rstrip("/")


def _put(client: httpx.Client, path: str, content: bytes, **params: str) -> httpx.Response:
    return client.put(f"/datastores/{WS}/files/{path}", content=content, params=params)


def _get(client: httpx.Client, path: str) -> bytes:
    return client.get(f"/datastores/{WS}/files/{path}").raise_for_status().content


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("trust")
    server = start_server(root / "home")
    owner = server.client()
    ivan = httpx.Client(base_url=server.url, timeout=30.0)
    try:
        model, code = root / "model", root / "code"
        model.mkdir()
        (model / "weights.txt").write_text("7\n")
        code.mkdir()
        (code / "score.py").write_text(SCRIPT)
        with MLClient(endpoint=server.url, token=server.token) as ml_client:
            uploader = Uploader(ml_client.connection)
            model_uri, code_uri = uploader.upload(model), uploader.upload(code)
        model_name = unique("model")
        r = owner.post(
            "/models", json={"name": model_name, "type": "custom_model", "path": model_uri}
        )
        assert r.status_code == 201, r.text
        assert owner.put(f"/batch-endpoints/{ENDPOINT}", json={"name": ENDPOINT}).status_code == 201
        body = {
            "name": DEPLOYMENT,
            "endpoint_name": ENDPOINT,
            "type": "model",
            "model": f"azureml:{model_name}:1",
            "code_configuration": {"code": code_uri, "scoring_script": "score.py"},
        }
        r = owner.put(f"/batch-endpoints/{ENDPOINT}/deployments/{DEPLOYMENT}", json=body)
        assert r.status_code == 201, r.text
        r = owner.patch(
            f"/batch-endpoints/{ENDPOINT}", json={"defaults": {"deployment_name": DEPLOYMENT}}
        )
        r.raise_for_status()
        for i in range(2):
            _put(owner, f"data/in/file-{i}.txt", b"x").raise_for_status()
        token = new_user(
            owner, "ivan", [("invoker", f"endpoint:{ENDPOINT}"), ("invoker", f"datastore:{WS}")]
        )
        ivan.headers["Authorization"] = f"Bearer {token}"
        world = World(
            server,
            owner,
            ivan,
            root,
            model_uri,
            code_uri,
            scan(code).digest,
            f"{DS}/data/in/",
            "",
        )
        job = world.run_job()
        assert job["status"] == "Completed", job
        world.job = job["name"]
        yield world
    finally:
        owner.close()
        ivan.close()
        stop_server(server)


def _genuine(world: World) -> None:
    """The owner's next job runs the registered code and model."""
    job = world.run_job()
    assert job["status"] == "Completed", job
    rows = read_output(world.owner, job["name"])["predictions.csv"]
    assert "genuine-7" in rows and "forged" not in rows, rows


# -- registered code and models ---------------------------------------------------------------


def test_a_deployment_runs_a_snapshot_of_its_code_and_model(world: World) -> None:
    code = world.deployment()["code_configuration"]["code"]
    assert code.startswith(f"{DS}/azureml-registry/sha256/") and code.endswith("/code/"), code
    model = world.model()["path"]
    assert model.startswith(f"{DS}/azureml-registry/sha256/") and model.endswith("/model/")
    assert _get(world.owner, f"{_path(code)}/score.py").decode() == SCRIPT


def test_an_invoker_cannot_replace_a_deployed_score_py(world: World) -> None:
    uploaded = f"{_path(world.code_uri)}/score.py"
    r = _put(world.ivan, uploaded, FORGED_SCRIPT.encode())
    assert r.status_code == 409, r.text
    assert "write-once" in r.json()["error"]["message"]
    r = _put(world.ivan, uploaded, FORGED_SCRIPT.encode(), overwrite="true")
    assert r.status_code == 409, r.text
    snapshot = f"{_path(world.deployment()['code_configuration']['code'])}/score.py"
    r = _put(world.ivan, snapshot, FORGED_SCRIPT.encode())
    assert r.status_code == 403, r.text
    assert "registry" in r.json()["error"]["message"]
    assert _get(world.owner, uploaded).decode() == SCRIPT
    _genuine(world)


def test_an_invoker_cannot_replace_a_registered_model_file(world: World) -> None:
    uploaded = f"{_path(world.model_uri)}/weights.txt"
    assert _put(world.ivan, uploaded, b"666\n").status_code == 409
    snapshot = f"{_path(world.model()['path'])}/weights.txt"
    r = _put(world.ivan, snapshot, b"666\n")
    assert r.status_code == 403, r.text
    # nor add a file next to the registered ones
    assert _put(world.ivan, f"{_path(world.model()['path'])}/extra.py", b"x").status_code == 403
    _genuine(world)


def test_an_upload_record_cannot_be_re_pointed(world: World) -> None:
    forged = world.root / "forged"
    forged.mkdir()
    (forged / "score.py").write_text(FORGED_SCRIPT)
    for path in ("evil/code/score.py", f"LocalUpload/{scan(forged).digest}/code/score.py"):
        _put(world.ivan, path, FORGED_SCRIPT.encode()).raise_for_status()
    for target in ("evil/code/", f"LocalUpload/{scan(forged).digest}/code/"):
        r = world.ivan.put(
            f"/uploads/{world.code_hash}", json={"name": "code", "path": f"{DS}/{target}"}
        )
        assert r.status_code in (400, 409), r.text
    record = world.owner.get(f"/uploads/{world.code_hash}").raise_for_status().json()
    assert record == {"name": "code", "path": world.code_uri}


def test_an_upload_cannot_be_recorded_under_another_hash(world: World) -> None:
    # The hash of some content a victim might upload later: a record under it would make the
    # SDK skip the victim's upload and use these files instead.
    victim = world.root / "victim"
    victim.mkdir()
    (victim / "score.py").write_text("def init(): pass\n")
    digest = scan(victim).digest
    _put(world.ivan, f"LocalUpload/{digest}/victim/score.py", FORGED_SCRIPT.encode())
    r = world.ivan.put(
        f"/uploads/{digest}", json={"name": "victim", "path": f"{DS}/LocalUpload/{digest}/victim/"}
    )
    assert r.status_code == 400, r.text
    assert f"not {digest}" in r.json()["error"]["message"]
    assert world.owner.get(f"/uploads/{digest}").status_code == 404


def test_an_upload_stopped_midway_can_be_sent_again(world: World) -> None:
    folder = world.root / "partial"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    digest = scan(folder).digest
    # the first try sent one file of two, then stopped
    _put(world.ivan, f"LocalUpload/{digest}/partial/a.txt", b"a").raise_for_status()
    with MLClient(endpoint=world.server.url, token=world.server.token) as ml_client:
        uri = Uploader(ml_client.connection).upload(folder)
    assert uri == f"{DS}/LocalUpload/{digest}/partial/"
    assert world.owner.get(f"/uploads/{digest}").json()["path"] == uri
    # once recorded, nothing is added or changed
    assert _put(world.ivan, f"LocalUpload/{digest}/partial/c.txt", b"c").status_code == 409
    assert _put(world.owner, f"LocalUpload/{digest}/partial/a.txt", b"z").status_code == 409


# -- outputs, logs and files -----------------------------------------------------------------


def test_an_invoker_cannot_forge_a_committed_output_or_a_jobs_log(world: World) -> None:
    folder = f"azureml/{world.job}"
    for path in (f"{folder}/score/predictions.csv", f"{folder}/logs/job_progress_overview.txt"):
        before = _get(world.owner, path)
        for params in ({}, {"overwrite": "true"}):
            r = _put(world.ivan, path, FORGED, **params)
            assert r.status_code == 403, r.text
            assert "written by the scheduler alone" in r.json()["error"]["message"]
        assert _get(world.owner, path) == before
    # nor through a job of his own whose output is the owner's job folder
    r = world.invoke(
        world.ivan, score={"JobOutputType": "UriFolder", "Uri": f"{DS}/{folder}/more/"}
    )
    assert r.status_code == 403, r.text
    assert "job's folder" in r.json()["error"]["message"]


def test_a_file_is_replaced_only_by_its_writer_when_asked(world: World) -> None:
    path = f"data/{unique('owned')}.txt"
    _put(world.owner, path, b"v1").raise_for_status()
    r = _put(world.ivan, path, b"forged", overwrite="true")
    assert r.status_code == 409, r.text
    assert path in r.json()["error"]["message"]
    assert _put(world.ivan, path, b"v1").status_code == 200  # the same bytes change nothing
    r = _put(world.owner, path, b"v2")
    assert r.status_code == 409 and "overwrite=true" in r.json()["error"]["message"], r.text
    assert _put(world.owner, path, b"v2", overwrite="true").status_code == 200
    assert _get(world.owner, path) == b"v2"
    # a file no identity wrote through the API (an operator's) has no one to replace it
    (world.server.home / "blobstore" / "data" / "operator.txt").write_text("kept")
    r = _put(world.owner, "data/operator.txt", b"y", overwrite="true")
    assert r.status_code == 409, r.text


# -- files changed behind the server's back ---------------------------------------------------


def _on_disk(world: World, uri: str) -> Path:
    return world.server.home / "blobstore" / _path(uri)


def test_a_job_refuses_registered_code_changed_on_disk(world: World) -> None:
    script = _on_disk(world, world.deployment()["code_configuration"]["code"]) / "score.py"
    script.write_text(FORGED_SCRIPT)
    try:
        job = world.run_job()
        assert job["status"] == "Failed", job
        message = job["error"]["message"]
        assert "'score.py'" in message and "sha256" in message, message
    finally:
        script.write_text(SCRIPT)
    _genuine(world)


def test_a_job_refuses_a_file_added_to_a_registered_model_on_disk(world: World) -> None:
    added = _on_disk(world, world.model()["path"]) / "helper.py"
    added.write_text("print('hello')\n")
    try:
        job = world.run_job()
        assert job["status"] == "Failed", job
        assert "'helper.py' was added" in job["error"]["message"], job["error"]
    finally:
        added.unlink()
    _genuine(world)


def test_a_pipeline_step_refuses_its_code_changed_on_disk(world: World) -> None:
    code = world.root / "step"
    code.mkdir()
    (code / "step.py").write_text(STEP)
    with MLClient(endpoint=world.server.url, token=world.server.token) as ml_client:
        code_uri = Uploader(ml_client.connection).upload(code)
    component = {
        "type": "pipeline",
        "outputs": {"result": {"type": "uri_folder"}},
        "jobs": {
            "write": {
                "component": {
                    "type": "command",
                    "code": code_uri,
                    "command": "python step.py ${{outputs.result}}",
                    "outputs": {"result": {"type": "uri_folder"}},
                },
                "outputs": {"result": "${{parent.outputs.result}}"},
            }
        },
    }
    owner = world.owner
    assert owner.put(f"/batch-endpoints/{PIPELINE}", json={"name": PIPELINE}).status_code == 201
    body = {"name": "steps", "endpoint_name": PIPELINE, "type": "pipeline", "component": component}
    r = owner.put(f"/batch-endpoints/{PIPELINE}/deployments/steps", json=body)
    assert r.status_code == 201, r.text
    owner.patch(
        f"/batch-endpoints/{PIPELINE}", json={"defaults": {"deployment_name": "steps"}}
    ).raise_for_status()
    name = r.json()["component"].split(":")[1]
    stored = owner.get(f"/components/{name}/versions/1").raise_for_status().json()
    snapshot = stored["jobs"]["write"]["component"]["code"]
    assert "/azureml-registry/sha256/" in snapshot, snapshot

    def run() -> dict[str, Any]:
        r = owner.post(f"/endpoints/{PIPELINE}/jobs", json={"properties": {}})
        assert r.status_code == 201, r.text
        return wait_for_job(owner, r.json()["name"])

    assert run()["status"] == "Completed"
    step = _on_disk(world, snapshot) / "step.py"
    step.write_text(STEP.replace("genuine", "forged"))
    try:
        job = run()
        assert job["status"] == "Failed", job
        assert "'step.py' does not match its recorded sha256" in str(job["error"]), job["error"]
    finally:
        step.write_text(STEP)
    assert run()["status"] == "Completed"
