"""Who may do what, against a real server: an owner, an invoker limited to one endpoint and one
datastore, a reader of the whole workspace, and an identity with no role at all.

Identities, roles and tokens are made over REST (``POST /identities``, ``POST /roles``,
``POST /identities/{name}/tokens``) as an owner would. Each allowed action works; each forbidden
one is a 403 that names the identity, the action, the scope and the roles that would allow it,
and changes nothing: no job is created, no role granted, nothing cancelled. A sweep over every
route of the API checks that none is open to an identity without roles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from sluiceway import Input, MLClient
from sluiceway.errors import PermissionDeniedError
from sluiceway.sdk.uploads import Uploader, scan
from sluiceway.server.openapi import AzureErrorResponse, ErrorResponse
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    new_user,
    put_file,
    read_output,
    unique,
    wait_for_job,
)
from tests.integration.helpers import datastore_uri as ds
from tests.integration.helpers import folder_input as folder
from tests.integration.helpers import folder_output as out

pytestmark = pytest.mark.slow

# Echoes each file's value; a file that says "slow" keeps its mini-batch running, so that a job
# can be caught before it ends.
SCRIPT = """\
import os
import time

def init():
    pass

def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path) as fh:
            value = fh.read().strip()
        if value == "slow":
            time.sleep(300)
        rows.append(f"{os.path.basename(path)} {value}")
    return rows
"""
ALPHA, BETA, DEPLOYMENT = "alpha", "beta", "blue"
TEAM_A, TEAM_B = "team_a", "team_b"


@dataclass
class World:
    server: RunningServer
    owner: httpx.Client
    ivy: httpx.Client  # invoker on endpoint:alpha and datastore:team_a
    rex: httpx.Client  # reader on the workspace
    nobody: httpx.Client  # no role at all
    tokens: dict[str, str]
    owner_job: str  # a finished job of the owner's on alpha
    upload_hash: str  # a finished upload the owner recorded

    def job_names(self) -> set[str]:
        jobs = self.owner.get("/jobs", params={"limit": 1000}).raise_for_status().json()
        return {job["name"] for job in jobs}


def refused(
    response: httpx.Response,
    identity: str,
    *needles: str,
    shape: type[ErrorResponse | AzureErrorResponse] = ErrorResponse,
) -> str:
    """Assert a 403 of the error ``shape`` (the REST face's, or the Azure ML dialect's) that
    names the identity and each needle; return its message."""
    assert response.status_code == 403, f"{response.status_code}: {response.text}"
    error = shape.model_validate_json(response.content).model_dump()["error"]
    assert error["code"] == "Forbidden"
    message: str = error["message"]
    assert message.startswith(f"Identity {identity!r} may not "), message
    assert "it needs the role" in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("access")
    # The two datastores are local folders next to the home, which the operator allows.
    server = start_server(root / "home", extra_env={"SLUICEWAY_LOCAL_DATASTORE_ROOTS": str(root)})
    clients: list[httpx.Client] = []
    try:
        owner = server.client()
        clients.append(owner)
        for name in (TEAM_A, TEAM_B):
            (root / name).mkdir()
            body = {"name": name, "type": "local", "root": str(root / name)}
            r = owner.put(f"/datastores/{name}", json=body)
            assert r.status_code == 201, r.text
            for i in range(3):
                put_file(owner, name, f"in/file-{i}.txt", f"{name}-{i}")
            put_file(owner, name, "slow/file.txt", "slow")
        put_file(owner, "workspaceblobstore", "shared/in/file-0.txt", "shared-0")
        put_file(owner, "workspaceblobstore", "shared/slow/file.txt", "slow")
        for endpoint in (ALPHA, BETA):
            (root / endpoint).mkdir()
            create_script_deployment(owner, root / endpoint, endpoint, DEPLOYMENT, script=SCRIPT)
            owner.patch(
                f"/batch-endpoints/{endpoint}", json={"defaults": {"deployment_name": DEPLOYMENT}}
            ).raise_for_status()
        r = owner.post(
            f"/endpoints/{ALPHA}/jobs",
            json=invoke_body({"data": folder(ds("workspaceblobstore", "shared/in/"))}),
        )
        assert r.status_code == 201, r.text
        owner_job = r.json()["name"]
        assert wait_for_job(owner, owner_job)["status"] == "Completed"
        uploaded = root / "in"
        uploaded.mkdir()
        (uploaded / "file-0.txt").write_text("shared-0")
        with MLClient(endpoint=server.url, token=server.token) as ml_client:
            Uploader(ml_client.connection).upload(uploaded)

        tokens = {
            "ivy": new_user(
                owner, "ivy", [("invoker", f"endpoint:{ALPHA}"), ("invoker", f"datastore:{TEAM_A}")]
            ),
            "rex": new_user(owner, "rex", [("reader", "workspace")]),
            "nobody": new_user(owner, "nobody", []),
        }
        ivy, rex, nobody = (server.client(tokens[n]) for n in ("ivy", "rex", "nobody"))
        clients += [ivy, rex, nobody]
        yield World(
            server,
            owner,
            ivy,
            rex,
            nobody,
            tokens,
            owner_job,
            scan(uploaded).digest,
        )
    finally:
        for client in clients:
            client.close()
        stop_server(server)


# -- the invoker ------------------------------------------------------------------------------


def test_an_invoker_runs_its_endpoint_on_its_datastore_and_sees_only_its_jobs(
    world: World,
) -> None:
    ivy = world.ivy
    me = ivy.get("/whoami").raise_for_status().json()
    assert me["name"] == "ivy"
    assert {(r["scope"], r["role"]) for r in me["roles"]} == {
        (f"endpoint:{ALPHA}", "invoker"),
        (f"datastore:{TEAM_A}", "invoker"),
    }
    target = f"out/{unique('ivy')}/"
    r = ivy.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body({"data": folder(ds(TEAM_A, "in/"))}, {"score": out(ds(TEAM_A, target))}),
    )
    assert r.status_code == 201, r.text
    named = r.json()["name"]
    # The default output goes to the job's folder in the default datastore, which ivy may not
    # write: it names an output in its own datastore instead.
    r = ivy.post(f"/endpoints/{ALPHA}/jobs", json=invoke_body({"data": folder(ds(TEAM_A, "in/"))}))
    refused(r, "ivy", "write data on datastore:workspaceblobstore", "(output 'score')")
    r = ivy.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body(
            {"data": folder(ds(TEAM_A, "in/"))},
            {"score": out(ds(TEAM_A, f"out/{unique('ivy')}/"))},
        ),
    )
    assert r.status_code == 201, r.text
    default = r.json()["name"]
    for name in (named, default):
        job = wait_for_job(ivy, name)
        assert job["status"] == "Completed", job.get("error")
        assert job["creation_context"]["created_by"] == "ivy"
        rows = read_output(ivy, name)["predictions.csv"].splitlines()
        assert sorted(rows) == [f"file-{i}.txt {TEAM_A}-{i}" for i in range(3)]
        assert ivy.get(f"/jobs/{name}/logs").status_code == 200
    files = ivy.get(f"/datastores/{TEAM_A}/list", params={"path": target}).raise_for_status()
    assert f"{target}predictions.csv" in [f["path"] for f in files.json()]

    # Lists hold its own jobs only, though the owner ran one on the same endpoint.
    for route in ("/jobs", f"/endpoints/{ALPHA}/jobs", f"/batch-endpoints/{ALPHA}/jobs"):
        listed = {j["name"] for j in ivy.get(route).raise_for_status().json()}
        assert {named, default} <= listed and world.owner_job not in listed, route
        assert listed <= world.job_names()
    assert world.owner_job in {j["name"] for j in world.owner.get("/jobs").json()}
    # It sees the endpoint and datastore it holds a role on, and no other.
    assert [e["name"] for e in ivy.get("/batch-endpoints").json()] == [ALPHA]
    assert [d["name"] for d in ivy.get("/datastores").json()] == [TEAM_A]
    assert ivy.get(f"/batch-endpoints/{ALPHA}/deployments/{DEPLOYMENT}").status_code == 200
    assert ivy.get(f"/datastores/{TEAM_A}/files/in/file-0.txt").text == f"{TEAM_A}-0"


def test_an_invoker_is_refused_everything_else_and_nothing_is_created(world: World) -> None:
    ivy = world.ivy
    before = world.job_names()
    data_a = {"data": folder(ds(TEAM_A, "in/"))}

    r = ivy.post(f"/endpoints/{BETA}/jobs", json=invoke_body(data_a))
    refused(r, "ivy", f"may not invoke on endpoint:{BETA}", "owner, contributor or invoker")

    r = ivy.post(f"/endpoints/{ALPHA}/jobs", json=invoke_body({"data": folder(ds(TEAM_B, "in/"))}))
    message = refused(r, "ivy", f"read data on datastore:{TEAM_B}", "(input 'data')")
    assert r.json()["error"]["target"] == "input 'data'"
    assert f"on datastore:{TEAM_B} (or on the workspace)" in message

    r = ivy.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body(data_a, {"score": out(ds(TEAM_B, f"out/{unique('x')}/"))}),
    )
    refused(r, "ivy", f"write data on datastore:{TEAM_B}", "(output 'score')")

    # A data asset is read where its path is.
    asset = unique("team-b-data")
    r = world.owner.post("/data", json={"name": asset, "version": "1", "path": ds(TEAM_B, "in/")})
    assert r.status_code == 201, r.text
    r = ivy.post(
        f"/endpoints/{ALPHA}/jobs", json=invoke_body({"data": folder(f"azureml:{asset}:1")})
    )
    refused(r, "ivy", f"read data on datastore:{TEAM_B}", "(input 'data')")
    # A storage URL that no datastore covers is read with the server's own credentials: it
    # takes a role on the whole workspace.
    r = ivy.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body({"data": folder("s3://some-public-bucket/data/")}),
    )
    refused(r, "ivy", "read data on the workspace", "(input 'data')")
    # The default datastore is no more its own than team_b.
    r = ivy.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body({"data": folder(ds("workspaceblobstore", "shared/in/"))}),
    )
    refused(r, "ivy", "read data on datastore:workspaceblobstore")
    assert world.job_names() == before

    # Another identity's job: not readable, not cancellable, not rerunnable.
    job = world.owner_job
    refused(ivy.get(f"/jobs/{job}"), "ivy", f"read jobs on endpoint:{ALPHA}", f"job {job!r}")
    refused(ivy.get(f"/jobs/{job}/outputs/score"), "ivy", "read jobs")
    refused(ivy.get(f"/jobs/{job}/outputs/score/files/predictions.csv"), "ivy", "read jobs")
    refused(ivy.get(f"/jobs/{job}/logs"), "ivy", "read jobs")
    refused(ivy.get(f"/jobs/{job}/logs/job_progress_overview.txt"), "ivy", "read jobs")
    refused(ivy.post(f"/jobs/{job}/cancel"), "ivy", f"cancel jobs on endpoint:{ALPHA}")
    refused(ivy.post(f"/jobs/{job}/rerun-failed"), "ivy", "read jobs")

    # Files of another datastore, and writing where it may not.
    refused(ivy.get(f"/datastores/{TEAM_B}/files/in/file-0.txt"), "ivy", "read data")
    refused(ivy.get(f"/datastores/{TEAM_B}/list"), "ivy", f"read data on datastore:{TEAM_B}")
    refused(ivy.put(f"/datastores/{TEAM_B}/files/x.txt", content=b"x"), "ivy", "write data")
    refused(ivy.get(f"/datastores/{TEAM_B}"), "ivy", f"may not read on datastore:{TEAM_B}")
    refused(ivy.get(f"/uploads/{world.upload_hash}"), "ivy", "datastore:workspaceblobstore")
    assert world.owner.get(f"/datastores/{TEAM_B}/list").json()[0]["path"] == "in/file-0.txt"

    # Creating and changing resources.
    name = unique("ep")
    refused(
        ivy.put(f"/batch-endpoints/{name}", json={"name": name}),
        "ivy",
        "manage on the workspace",
        f"(new endpoint {name!r})",
        "owner or contributor on the workspace",
    )
    refused(ivy.put(f"/batch-endpoints/{ALPHA}", json={"name": ALPHA}), "ivy", "manage")
    refused(ivy.patch(f"/batch-endpoints/{ALPHA}", json={"description": "x"}), "ivy", "manage")
    refused(ivy.delete(f"/batch-endpoints/{ALPHA}/deployments/{DEPLOYMENT}"), "ivy", "manage")
    refused(ivy.post("/data", json={"name": "d", "path": ds(TEAM_A, "in/")}), "ivy", "manage")
    refused(ivy.get("/data"), "ivy", "may not read on the workspace")
    store = {"name": "mine", "type": "local", "root": str(world.server.home.parent / TEAM_A)}
    refused(ivy.put("/datastores/mine", json=store), "ivy", "(new datastore 'mine')")
    refused(ivy.delete(f"/datastores/{TEAM_A}"), "ivy", f"manage on datastore:{TEAM_A}")

    # Granting itself more.
    grant = {"identity": "ivy", "role": "owner", "scope": "workspace"}
    refused(ivy.post("/roles", json=grant), "ivy", "administer", "role owner on the workspace")
    roles = world.owner.get("/roles", params={"identity": "ivy"}).raise_for_status().json()
    assert {(r["scope"], r["role"]) for r in roles} == {
        (f"endpoint:{ALPHA}", "invoker"),
        (f"datastore:{TEAM_A}", "invoker"),
    }
    assert world.owner.get(f"/jobs/{job}").json()["status"] == "Completed"
    assert world.owner.get(f"/batch-endpoints/{ALPHA}").json()["description"] is None
    assert world.job_names() == before


# -- the reader ---------------------------------------------------------------------------------


def test_a_reader_reads_everything_and_changes_nothing(world: World) -> None:
    rex, before = world.rex, world.job_names()
    job = world.owner_job
    assert rex.get(f"/jobs/{job}").json()["status"] == "Completed"
    assert "predictions.csv" in read_output(rex, job)
    assert {j["name"] for j in rex.get("/jobs", params={"limit": 1000}).json()} == before
    assert {e["name"] for e in rex.get("/batch-endpoints").json()} >= {ALPHA, BETA}
    assert {d["name"] for d in rex.get("/datastores").json()} >= {TEAM_A, TEAM_B}
    assert rex.get(f"/datastores/{TEAM_B}/files/in/file-1.txt").text == f"{TEAM_B}-1"
    assert rex.get("/models").status_code == 200

    data_a = {"data": folder(ds(TEAM_A, "in/"))}
    refused(
        rex.post(f"/endpoints/{ALPHA}/jobs", json=invoke_body(data_a)),
        "rex",
        f"invoke on endpoint:{ALPHA}",
    )
    refused(rex.post(f"/jobs/{job}/cancel"), "rex", f"cancel jobs on endpoint:{ALPHA}")
    refused(rex.put(f"/datastores/{TEAM_A}/files/x.txt", content=b"x"), "rex", "write data")
    name = unique("ep")
    refused(
        rex.put(f"/batch-endpoints/{name}", json={"name": name}),
        "rex",
        "manage on the workspace",
    )
    refused(rex.post("/components", json={"name": "c"}), "rex", "manage on the workspace")
    refused(
        rex.post("/roles", json={"identity": "rex", "role": "owner", "scope": "workspace"}),
        "rex",
        "administer",
    )
    refused(rex.post("/identities", json={"name": "eve", "kind": "user"}), "rex", "administer")
    assert world.job_names() == before


# -- cancelling -----------------------------------------------------------------------------


def _running(client: httpx.Client, name: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if client.get(f"/jobs/{name}").json()["status"] == "Running":
            return
        time.sleep(0.3)
    raise AssertionError(f"job {name} did not start")


def test_only_the_invoker_or_a_canceller_of_the_endpoint_cancels_a_job(world: World) -> None:
    owner, ivy, rex = world.owner, world.ivy, world.rex
    r = owner.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body({"data": folder(ds("workspaceblobstore", "shared/slow/"))}),
    )
    assert r.status_code == 201, r.text
    owners = r.json()["name"]
    r = ivy.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body(
            {"data": folder(ds(TEAM_A, "slow/"))}, {"score": out(ds(TEAM_A, unique("out")))}
        ),
    )
    assert r.status_code == 201, r.text
    ivys = r.json()["name"]
    _running(owner, owners)

    refused(ivy.post(f"/jobs/{owners}/cancel"), "ivy", "cancel jobs", f"job {owners!r}")
    refused(rex.post(f"/jobs/{owners}/cancel"), "rex", "cancel jobs")
    refused(rex.post(f"/jobs/{ivys}/cancel"), "rex", "cancel jobs", f"job {ivys!r}")
    assert owner.get(f"/jobs/{owners}").json()["status"] == "Running"
    assert rex.get(f"/jobs/{ivys}").status_code == 200  # a reader reads anyone's job

    r = ivy.post(f"/jobs/{ivys}/cancel")
    assert r.status_code == 202, r.text
    r = owner.post(f"/jobs/{owners}/cancel")
    assert r.status_code == 202, r.text
    assert wait_for_job(ivy, ivys)["status"] == "Canceled"
    assert wait_for_job(owner, owners)["status"] == "Canceled"


# -- the SDK and the CLI ------------------------------------------------------------------------


def test_the_sdk_and_cli_show_the_refusal(world: World, tmp_path: Path) -> None:
    asset = unique("team-a-data")
    r = world.owner.post("/data", json={"name": asset, "version": "1", "path": ds(TEAM_A, "in/")})
    assert r.status_code == 201, r.text
    with MLClient(endpoint=world.server.url, token=world.tokens["ivy"]) as ml:
        # Without a type the SDK reads the asset to learn it, which takes a workspace role; the
        # refusal says how to do without.
        with pytest.raises(PermissionDeniedError, match="Give the Input a type") as denied:
            ml.batch_endpoints.invoke(endpoint_name=ALPHA, inputs={"data": f"azureml:{asset}:1"})
        assert "may not read on the workspace" in denied.value.message
        job = ml.batch_endpoints.invoke(
            endpoint_name=ALPHA,
            input=Input(type="uri_folder", path=f"azureml:{asset}:1"),
            outputs={"score": ds(TEAM_A, f"out/{unique('sdk')}/")},
        )
        assert ml.jobs.get(job.name).name == job.name
        with pytest.raises(PermissionDeniedError, match=f"may not invoke on endpoint:{BETA}"):
            ml.batch_endpoints.invoke(
                endpoint_name=BETA, input=Input(type="uri_folder", path=ds(TEAM_A, "in/"))
            )
        with pytest.raises(PermissionDeniedError, match="read jobs on endpoint:alpha"):
            ml.jobs.get(world.owner_job)
        # A local folder is uploaded to the default datastore first, which ivy may not write.
        (tmp_path / "local").mkdir()
        (tmp_path / "local" / "a.txt").write_text("local\n")
        with pytest.raises(PermissionDeniedError, match="write data on datastore:workspaceblob"):
            ml.batch_endpoints.invoke(
                endpoint_name=ALPHA, input=Input(type="uri_folder", path=str(tmp_path / "local"))
            )
    env = {
        **os.environ,
        "SLUICEWAY_ENDPOINT": world.server.url,
        "SLUICEWAY_TOKEN": world.tokens["ivy"],
    }
    done = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli.main", "job", "show", "-n", world.owner_job],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done
    assert done.stderr.startswith("ERROR: Identity 'ivy' may not read jobs on endpoint:alpha")
    assert "it needs the role owner, contributor or reader" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_contributor_uploads_local_data_and_invokes(world: World, tmp_path: Path) -> None:
    token = new_user(world.owner, unique("carl"), [("contributor", "workspace")])
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "a.txt").write_text("local\n")
    with MLClient(endpoint=world.server.url, token=token) as ml:
        job = ml.batch_endpoints.invoke(
            endpoint_name=ALPHA, input=Input(type="uri_folder", path=str(tmp_path / "local"))
        )
    with world.server.client(token) as carl:
        done = wait_for_job(carl, job.name)
        assert done["status"] == "Completed", done
        assert read_output(carl, job.name)["predictions.csv"].strip() == "a.txt local"


# -- every route --------------------------------------------------------------------------------

ARM = (
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.MachineLearningServices/workspaces/{workspace}"
)
HISTORY = "/azureml/history/v1.0" + ARM
# Routes that take no bearer token, each for its reason; test_public_routes_... checks that
# those with a credential of their own give nothing away without it.
PUBLIC = {
    ("GET", "/healthz"),  # liveness, nothing of the workspace
    ("GET", "/readyz"),  # whether the database and the default datastore answer
    ("POST", "/oauth2/token"),  # the token grant: its client's secret is the credential
    ("GET", "/metadata/endpoints"),  # the cloud's URLs, which azure-identity reads first
    ("GET", "/adfs/.well-known/openid-configuration"),  # where the ADFS token route is
    ("GET", "/azureml/discovery"),  # the data plane's URL, which the SDK reads without a token
    ("GET", "/msi/token"),  # authenticated by its X-IDENTITY-HEADER, an identity's own token
    ("GET", "/azureml/logs/{job}/{path}"),  # signed links, which the SDK fetches without one
}
# What an identity without roles gets where it is not a 403: its own identity, the workspace's
# coordinates (which the SDK reads before streaming a job), and lists that hold only what it
# may read (nothing).
OPEN_TO_ANY_TOKEN = {("GET", "/whoami"): 200, ("GET", ARM): 200}
FILTERED_LISTS = {
    ("GET", "/datastores"),
    ("GET", "/batch-endpoints"),
    ("GET", "/jobs"),
    ("GET", ARM + "/datastores"),
    ("GET", ARM + "/batchEndpoints"),
}
# The Azure ML dialect, whose errors have Azure's shape.
AZURE_ROUTES = ("/subscriptions/", "/azureml/", "/msi/", "/metadata/", "/adfs/")


def _requests(world: World) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """For each route, a real request at existing resources: its URL and httpx arguments."""
    job, root = world.owner_job, str(world.server.home.parent / TEAM_B)
    ep, dep = ALPHA, DEPLOYMENT
    no_body: dict[str, Any] = {}
    return {
        ("GET", "/whoami"): ("/whoami", no_body),
        ("GET", "/metrics"): ("/metrics", no_body),
        ("GET", "/datastores"): ("/datastores", no_body),
        ("GET", "/datastores/{name}"): (f"/datastores/{TEAM_B}", no_body),
        ("PUT", "/datastores/{name}"): (
            f"/datastores/{TEAM_B}",
            {"json": {"name": TEAM_B, "type": "local", "root": root}},
        ),
        ("DELETE", "/datastores/{name}"): (f"/datastores/{TEAM_B}", no_body),
        ("PUT", "/datastores/{name}/files/{path}"): (
            f"/datastores/{TEAM_B}/files/in/file-0.txt",
            {"content": b"overwritten"},
        ),
        ("GET", "/datastores/{name}/files/{path}"): (
            f"/datastores/{TEAM_B}/files/in/file-0.txt",
            no_body,
        ),
        ("GET", "/datastores/{name}/list"): (f"/datastores/{TEAM_B}/list", no_body),
        ("GET", "/uploads/{content_hash}"): (f"/uploads/{world.upload_hash}", no_body),
        ("PUT", "/uploads/{content_hash}"): (
            f"/uploads/{'f' * 32}",
            {"json": {"name": "in", "path": ds("workspaceblobstore", "shared/in/")}},
        ),
        ("POST", "/data"): ("/data", {"json": {"name": "d", "path": ds(TEAM_B, "in/")}}),
        ("GET", "/data"): ("/data", no_body),
        ("GET", "/data/{name}/versions"): ("/data/d/versions", no_body),
        ("GET", "/data/{name}/versions/{version}"): ("/data/d/versions/1", no_body),
        ("GET", "/data/{name}/labels/{label}"): ("/data/d/labels/latest", no_body),
        ("POST", "/models"): ("/models", {"json": {"name": "m", "path": ds(TEAM_B, "in/")}}),
        ("GET", "/models"): ("/models", no_body),
        ("GET", "/models/{name}/versions"): ("/models/m/versions", no_body),
        ("GET", "/models/{name}/versions/{version}"): ("/models/m/versions/1", no_body),
        ("GET", "/models/{name}/labels/{label}"): ("/models/m/labels/latest", no_body),
        ("POST", "/components"): ("/components", {"json": {"name": "c", "type": "command"}}),
        ("GET", "/components"): ("/components", no_body),
        ("GET", "/components/{name}/versions"): ("/components/c/versions", no_body),
        ("GET", "/components/{name}/versions/{version}"): ("/components/c/versions/1", no_body),
        ("GET", "/components/{name}/labels/{label}"): ("/components/c/labels/latest", no_body),
        ("GET", "/computes"): ("/computes", no_body),
        ("GET", "/computes/{name}"): ("/computes/local", no_body),
        ("PUT", "/computes/{name}"): (
            "/computes/cluster",
            {"json": {"name": "cluster", "type": "ray", "address": "127.0.0.1:1"}},
        ),
        ("DELETE", "/computes/{name}"): ("/computes/local", no_body),
        ("POST", "/environments"): ("/environments", {"json": {"name": "e"}}),
        ("GET", "/environments"): ("/environments", no_body),
        ("GET", "/environments/{name}/versions"): ("/environments/e/versions", no_body),
        ("GET", "/environments/{name}/versions/{version}"): ("/environments/e/versions/1", no_body),
        ("GET", "/environments/{name}/labels/{label}"): ("/environments/e/labels/latest", no_body),
        ("GET", "/environments/{name}/versions/{version}/build-log"): (
            "/environments/e/versions/1/build-log",
            no_body,
        ),
        ("GET", "/environment-builds/{content_hash}/log"): (
            "/environment-builds/0123456789abcdef0123456789abcdef/log",
            no_body,
        ),
        ("POST", "/environments/{name}/archive"): ("/environments/e/archive", no_body),
        ("POST", "/environments/{name}/restore"): ("/environments/e/restore", no_body),
        ("DELETE", "/environments/{name}"): ("/environments/e", no_body),
        ("DELETE", "/environments/{name}/versions/{version}"): (
            "/environments/e/versions/1",
            no_body,
        ),
        ("GET", "/batch-endpoints"): ("/batch-endpoints", no_body),
        ("PUT", "/batch-endpoints/{name}"): (f"/batch-endpoints/{ep}", {"json": {"name": ep}}),
        ("PATCH", "/batch-endpoints/{name}"): (
            f"/batch-endpoints/{ep}",
            {"json": {"description": "x"}},
        ),
        ("GET", "/batch-endpoints/{name}"): (f"/batch-endpoints/{ep}", no_body),
        ("DELETE", "/batch-endpoints/{name}"): (f"/batch-endpoints/{ep}", no_body),
        ("GET", "/batch-endpoints/{name}/jobs"): (f"/batch-endpoints/{ep}/jobs", no_body),
        ("PUT", "/batch-endpoints/{endpoint}/deployments/{name}"): (
            f"/batch-endpoints/{ep}/deployments/{dep}",
            {"json": {"name": dep, "endpoint_name": ep, "type": "model", "model": "azureml:m:1"}},
        ),
        ("GET", "/batch-endpoints/{endpoint}/deployments"): (
            f"/batch-endpoints/{ep}/deployments",
            no_body,
        ),
        ("GET", "/batch-endpoints/{endpoint}/deployments/{name}"): (
            f"/batch-endpoints/{ep}/deployments/{dep}",
            no_body,
        ),
        ("DELETE", "/batch-endpoints/{endpoint}/deployments/{name}"): (
            f"/batch-endpoints/{ep}/deployments/{dep}",
            no_body,
        ),
        ("GET", "/batch-endpoints/{endpoint}/deployments/{name}/jobs"): (
            f"/batch-endpoints/{ep}/deployments/{dep}/jobs",
            no_body,
        ),
        ("POST", "/endpoints/{endpoint}/jobs"): (
            f"/endpoints/{ep}/jobs",
            {"json": invoke_body({"data": folder(ds("workspaceblobstore", "shared/in/"))})},
        ),
        ("GET", "/endpoints/{endpoint}/jobs"): (f"/endpoints/{ep}/jobs", no_body),
        ("GET", "/jobs"): ("/jobs", no_body),
        ("GET", "/jobs/{name}"): (f"/jobs/{job}", no_body),
        ("GET", "/jobs/{name}/outputs/{output}"): (f"/jobs/{job}/outputs/score", no_body),
        ("GET", "/jobs/{name}/outputs/{output}/files/{path}"): (
            f"/jobs/{job}/outputs/score/files/predictions.csv",
            no_body,
        ),
        ("GET", "/jobs/{name}/logs"): (f"/jobs/{job}/logs", no_body),
        ("GET", "/jobs/{name}/logs/{path}"): (
            f"/jobs/{job}/logs/job_progress_overview.txt",
            no_body,
        ),
        ("POST", "/jobs/{name}/cancel"): (f"/jobs/{job}/cancel", no_body),
        ("POST", "/jobs/{name}/rerun-failed"): (f"/jobs/{job}/rerun-failed", no_body),
        ("POST", "/identities"): ("/identities", {"json": {"name": "mallory", "kind": "user"}}),
        ("GET", "/identities"): ("/identities", no_body),
        ("GET", "/identities/{name}"): ("/identities/owner", no_body),
        ("DELETE", "/identities/{name}"): ("/identities/owner", no_body),
        ("POST", "/identities/{name}/secret"): ("/identities/owner/secret", no_body),
        ("POST", "/identities/{name}/tokens"): ("/identities/owner/tokens", no_body),
        ("DELETE", "/identities/{name}/tokens"): ("/identities/owner/tokens", no_body),
        ("GET", "/roles"): ("/roles", no_body),
        ("POST", "/roles"): (
            "/roles",
            {"json": {"identity": "nobody", "role": "owner", "scope": "workspace"}},
        ),
        ("DELETE", "/roles"): (
            "/roles",
            {"params": {"identity": "owner", "role": "owner", "scope": "workspace"}},
        ),
    }


def _arm_requests(world: World) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """The same for the Azure ML dialect's routes, at the workspace's own ARM path."""
    ws = world.owner.get("/azureml/discovery").raise_for_status().json()["workspaceId"]
    job, ep, dep = world.owner_job, ALPHA, DEPLOYMENT
    version = {"params": {"api-version": "2024-10-01"}}
    r = world.owner.post("/data", json={"name": "swept", "path": ds(TEAM_B, "in/")})
    assert r.status_code in (200, 201), r.text
    blob = {
        "datastoreType": "AzureBlob",
        "accountName": "account",
        "containerName": "container",
        "credentials": {"credentialsType": "None"},
    }
    model = {"modelUri": ds(TEAM_B, "in/"), "modelType": "custom_model"}
    output = (
        f"azureml://locations/local/workspaces/w/data/azureml_{job}_output_data_score/versions/1"
    )
    return {
        ("GET", ARM): (ws, version),
        ("GET", ARM + "/datastores"): (f"{ws}/datastores", version),
        ("GET", ARM + "/datastores/{name}"): (f"{ws}/datastores/{TEAM_B}", version),
        ("PUT", ARM + "/datastores/{name}"): (
            f"{ws}/datastores/{TEAM_B}",
            {**version, "json": {"properties": blob}},
        ),
        ("POST", ARM + "/datastores/{name}/listSecrets"): (
            f"{ws}/datastores/{TEAM_B}/listSecrets",
            version,
        ),
        ("GET", ARM + "/batchEndpoints"): (f"{ws}/batchEndpoints", version),
        ("GET", ARM + "/batchEndpoints/{name}"): (f"{ws}/batchEndpoints/{ep}", version),
        ("PUT", ARM + "/batchEndpoints/{name}"): (
            f"{ws}/batchEndpoints/{ep}",
            {**version, "json": {"properties": {"description": "x"}}},
        ),
        ("DELETE", ARM + "/batchEndpoints/{name}"): (f"{ws}/batchEndpoints/{ep}", version),
        ("GET", ARM + "/batchEndpoints/{endpoint}/deployments"): (
            f"{ws}/batchEndpoints/{ep}/deployments",
            version,
        ),
        ("GET", ARM + "/batchEndpoints/{endpoint}/deployments/{name}"): (
            f"{ws}/batchEndpoints/{ep}/deployments/{dep}",
            version,
        ),
        ("PUT", ARM + "/batchEndpoints/{endpoint}/deployments/{name}"): (
            f"{ws}/batchEndpoints/{ep}/deployments/{dep}",
            {**version, "json": {"properties": {"description": "x"}}},
        ),
        ("DELETE", ARM + "/batchEndpoints/{endpoint}/deployments/{name}"): (
            f"{ws}/batchEndpoints/{ep}/deployments/{dep}",
            version,
        ),
        ("GET", ARM + "/jobs/{name}"): (f"{ws}/jobs/{job}", version),
        ("GET", ARM + "/{kind}"): (f"{ws}/data", version),
        ("GET", ARM + "/{kind}/{name}"): (f"{ws}/data/swept", version),
        ("GET", ARM + "/{kind}/{name}/versions"): (f"{ws}/data/swept/versions", version),
        ("GET", ARM + "/{kind}/{name}/versions/{version}"): (
            f"{ws}/data/swept/versions/1",
            version,
        ),
        ("PUT", ARM + "/{kind}/{name}/versions/{version}"): (
            f"{ws}/models/swept/versions/1",
            {**version, "json": {"properties": model}},
        ),
        ("GET", HISTORY + "/runs/{run_id}"): (f"/azureml/history/v1.0{ws}/runs/{job}", {}),
        ("GET", HISTORY + "/runs/{run_id}/details"): (
            f"/azureml/history/v1.0{ws}/runs/{job}/details",
            {},
        ),
        ("GET", HISTORY + "/runs/{run_id}/children"): (
            f"/azureml/history/v1.0{ws}/runs/{job}-batchscoring/children",
            {},
        ),
        ("POST", HISTORY + "/rundata"): (
            f"/azureml/history/v1.0{ws}/rundata",
            {"json": {"runId": f"{job}-batchscoring"}},
        ),
        ("POST", "/azureml/data/v1.0" + ARM + "/dataversion/batchGetResolvedUris"): (
            f"/azureml/data/v1.0{ws}/dataversion/batchGetResolvedUris",
            {"json": {"values": [output]}},
        ),
        ("GET", "/azureml/mferp/managementfrontend" + ARM + "/batchEndpoints/{endpoint}/jobs"): (
            f"/azureml/mferp/managementfrontend{ws}/batchEndpoints/{ep}/jobs",
            {},
        ),
        ("GET", "/azureml/operations/{resource}"): (
            f"/azureml/operations/batchEndpoints/{ep}/deployments/{dep}",
            {},
        ),
    }


def test_no_route_is_open_to_an_identity_without_roles(world: World) -> None:
    spec = world.owner.get("/openapi.json").raise_for_status().json()
    routes = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }
    requests = {**_requests(world), **_arm_requests(world)}
    # A new route must be added here, with what an identity without roles gets from it.
    assert routes - PUBLIC == set(requests), (routes - PUBLIC) ^ set(requests)
    before = world.job_names()
    for (method, template), (url, kwargs) in sorted(requests.items()):
        r = world.nobody.request(method, url, **kwargs)
        azure = template.startswith(AZURE_ROUTES)
        if (method, template) in OPEN_TO_ANY_TOKEN:
            assert r.status_code == OPEN_TO_ANY_TOKEN[method, template], (template, r.text)
        elif (method, template) in FILTERED_LISTS:
            empty = {"value": [], "nextLink": None} if azure else []
            assert r.status_code == 200 and r.json() == empty, (template, r.text)
        else:
            try:
                refused(r, "nobody", shape=AzureErrorResponse if azure else ErrorResponse)
            except AssertionError as exc:
                raise AssertionError(f"{method} {template}: {exc}") from None
    # A datastore's SAS is refused before the datastore is looked up: one without roles learns
    # nothing of which datastores exist.
    ws = world.owner.get("/azureml/discovery").json()["workspaceId"]
    secrets = f"{ws}/datastores/{unique('none')}/listSecrets"
    r = world.nobody.post(secrets, params={"api-version": "2024-10-01"})
    refused(r, "nobody", "read data on datastore:none", shape=AzureErrorResponse)
    # The blob face (Azure Storage's API, which the document does not describe) refuses its
    # token as the data routes do, in Azure Storage's shape.
    blob = f"/azureml/blob/{ws.rsplit('/', 1)[1]}.blob.local/{TEAM_B}"
    for method, url, params, content in (
        ("GET", blob, {"restype": "container", "comp": "list"}, None),
        ("HEAD", blob, {"restype": "container"}, None),
        ("GET", f"{blob}/in/file-0.txt", {}, None),
        ("HEAD", f"{blob}/in/file-0.txt", {}, None),
        ("PUT", f"{blob}/in/file-0.txt", {}, b"overwritten"),
    ):
        headers = {"x-ms-blob-type": "BlockBlob"} if content else {}
        r = world.nobody.request(method, url, params=params, content=content, headers=headers)
        assert r.status_code == 403, (method, url, r.status_code, r.text)
        assert r.headers["x-ms-error-code"] == "AuthorizationPermissionMismatch", (method, url)
        assert method == "HEAD" or "Identity 'nobody' may not" in r.text, r.text
    # Nothing changed.
    assert world.nobody.get("/whoami").json()["roles"] == []
    assert world.job_names() == before
    assert world.owner.get(f"/jobs/{world.owner_job}").json()["status"] == "Completed"
    assert world.owner.get(f"/batch-endpoints/{ALPHA}").json()["defaults"] == {
        "deployment_name": DEPLOYMENT
    }
    owner_file = world.owner.get(f"/datastores/{TEAM_B}/files/in/file-0.txt")
    assert owner_file.text == f"{TEAM_B}-0"
    assert world.owner.get("/identities/owner").status_code == 200
    assert world.owner.get("/models/swept/versions").status_code == 404
    assert world.owner.get(f"/batch-endpoints/{ALPHA}").json()["description"] is None


def test_public_routes_give_nothing_away_without_their_own_credential(world: World) -> None:
    anonymous = httpx.Client(base_url=world.server.url, timeout=30)
    with anonymous:
        # What azure-identity and the SDK read before they have a token: URLs, no secret.
        cloud = anonymous.get("/metadata/endpoints").raise_for_status().text
        adfs = anonymous.get("/adfs/.well-known/openid-configuration").raise_for_status()
        discovery = anonymous.get("/azureml/discovery").raise_for_status().json()
        assert set(discovery) == {
            "api", "catalog", "experimentation", "history", "modelmanagement", "pipelines",
            "workspaceId",
        }  # fmt: skip
        for text in (cloud, adfs.text, json.dumps(discovery)):
            assert world.server.token not in text and "access_token" not in text, text

        # The managed-identity route: only with an identity's own token, and only that one's.
        msi = {"api-version": "2019-08-01", "resource": world.server.url}
        for header in ({}, {"X-IDENTITY-HEADER": "not-a-token"}):
            r = anonymous.get("/msi/token", params=msi, headers=header)
            assert r.status_code == 401, r.text
            assert AzureErrorResponse.model_validate_json(r.content).error.code == "Unauthorized"
            assert "access_token" not in r.text
        own = {"X-IDENTITY-HEADER": world.tokens["nobody"]}
        r = anonymous.get("/msi/token", params=msi, headers=own)
        assert r.status_code == 200, r.text
        issued = r.json()["access_token"]
        with world.server.client(issued) as issued_client:
            me = issued_client.get("/whoami").raise_for_status().json()
            assert me["name"] == "nobody" and me["roles"] == []

        # Log links: signed for one identity and one job, for a while, and only as signed.
        ws = anonymous.get("/azureml/discovery").json()["workspaceId"]
        details = world.rex.get(f"/azureml/history/v1.0{ws}/runs/{world.owner_job}/details")
        files = details.raise_for_status().json()["logFiles"]
        link = urlsplit(files["logs/azureml/executionlogs.txt"])
        query = dict(parse_qsl(link.query))
        assert anonymous.get(link.path, params=query).status_code == 200
        r = world.owner.post(
            f"/endpoints/{ALPHA}/jobs",
            json=invoke_body({"data": folder(ds("workspaceblobstore", "shared/in/"))}),
        )
        assert r.status_code == 201, r.text
        other = link.path.replace(world.owner_job, r.json()["name"])
        past = "2020-01-01T00:00:00Z"
        for path, changed, why in (
            (link.path, {"sig": None}, "lacks sig"),
            (link.path, {"sig": query["sig"][:-2] + "AA"}, "does not match"),
            (link.path, {"se": "2999-01-01T00:00:00Z"}, "does not match"),
            (link.path, {"sp": "rw"}, "does not match"),
            (link.path, {"se": past}, "expired"),
            (other, {}, "does not match"),  # another job's logs
        ):
            params = {k: v for k, v in {**query, **changed}.items() if v is not None}
            r = anonymous.get(path, params=params)
            assert r.status_code == 401, (changed, r.text)
            error = AzureErrorResponse.model_validate_json(r.content).error
            assert why in error.message, (changed, error)
