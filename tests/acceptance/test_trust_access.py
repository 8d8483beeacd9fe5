"""The invoker's rights, checked wherever its job touches data, against a real server.

Identities, roles and tokens are made over REST as an owner would. A job's outputs are read
only by those who may read the datastore they are in, and only inside the output; every output
an invocation writes, its default ones too, takes ``write data`` on its datastore; the invoker's
rights are checked again when a queued job starts and before it commits, so a role taken back
in between stops the job. Roles and jobs are bound to what they were granted on and to who
started them, not to names that a new resource or identity can take. The workspace's database
is readable by the server's user only, and a SAS in an input URL is not stored in clear.
"""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration import storage_services as svc
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    grant_role,
    invoke_body,
    new_user,
    put_file,
    unique,
    wait_for_job,
)
from tests.integration.helpers import datastore_uri as ds
from tests.integration.helpers import folder_input as folder
from tests.integration.helpers import folder_output as out

pytestmark = pytest.mark.slow

# Echoes each file's value; a file that says "slow" keeps its mini-batch running a while, so a
# job can be caught running.
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
            time.sleep(4)
        rows.append(f"{os.path.basename(path)} {value}")
    return rows
"""
ALPHA, DEPLOYMENT = "alpha", "blue"
TEAM_A, TEAM_B = "team_a", "team_b"
DEFAULT = "workspaceblobstore"


def refused(response: httpx.Response, identity: str, *needles: str) -> str:
    """Assert a 403 that names the identity and each needle; return its message."""
    assert response.status_code == 403, f"{response.status_code}: {response.text}"
    message: str = response.json()["error"]["message"]
    assert message.startswith(f"Identity {identity!r} may not "), message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def revoke(owner: httpx.Client, name: str, role: str, scope: str) -> None:
    r = owner.delete("/roles", params={"identity": name, "role": role, "scope": scope})
    assert r.status_code == 204, r.text


def deploy_alpha(owner: httpx.Client, root: Path) -> None:
    """Endpoint alpha, with the echo script as its default deployment."""
    (root / ALPHA).mkdir()
    create_script_deployment(owner, root / ALPHA, ALPHA, DEPLOYMENT, script=SCRIPT)
    owner.patch(
        f"/batch-endpoints/{ALPHA}", json={"defaults": {"deployment_name": DEPLOYMENT}}
    ).raise_for_status()


def make_datastore(owner: httpx.Client, root: Path, name: str) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    body = {"name": name, "type": "local", "root": str(root / name)}
    r = owner.put(f"/datastores/{name}", json=body)
    assert r.status_code == 201, r.text


@dataclass
class World:
    server: RunningServer
    root: Path  # local datastores may be made below it
    owner: httpx.Client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("trust-access")
    server = start_server(root / "home", extra_env={"SLUICEWAY_LOCAL_DATASTORE_ROOTS": str(root)})
    owner = server.client()
    try:
        for name in (TEAM_A, TEAM_B):
            make_datastore(owner, root, name)
            for i in range(2):
                put_file(owner, name, f"in/file-{i}.txt", f"{name}-{i}")
            put_file(owner, name, "secret/keep.txt", f"{name} secret")
            put_file(owner, name, "slow/file.txt", "slow")
        deploy_alpha(owner, root)
        yield World(server, root, owner)
    finally:
        owner.close()
        stop_server(server)


# -- the workspace's files ------------------------------------------------------------------


def test_the_database_and_its_wal_files_are_private(world: World) -> None:
    world.owner.post("/identities", json={"name": unique("u"), "kind": "user"}).raise_for_status()
    home = world.server.home
    found = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.glob("workspace.db*")}
    assert {"workspace.db", "workspace.db-wal", "workspace.db-shm"} <= set(found), found
    assert all(mode == 0o600 for mode in found.values()), {k: oct(v) for k, v in found.items()}


def test_a_database_made_before_is_made_private_on_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "workspace.db") as conn:  # made with the umask: 0644
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE scratch (x)")
    (home / "workspace.db").chmod(0o644)
    server = start_server(home)
    try:
        with server.client() as owner:
            owner.post("/identities", json={"name": unique("u"), "kind": "user"}).raise_for_status()
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.glob("workspace.db*")}
        assert modes and all(mode == 0o600 for mode in modes.values()), modes
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def blob_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = svc.server_env()
    server = start_server(tmp_path_factory.mktemp("trust-sas") / "home", extra_env=env)
    try:
        yield server
    finally:
        stop_server(server)


def test_a_sas_in_an_input_url_is_not_stored_in_clear(
    blob_server: RunningServer, tmp_path: Path
) -> None:
    container = svc.make_container("sealed")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("from-blob\n")
    svc.upload_to_container(container, data, "in")
    sas = svc.container_sas(container)
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    url = f"{svc.azurite_url()}/{svc.AZURITE_ACCOUNT}/{container}/in?{sas}"
    with blob_server.client() as owner:
        create_script_deployment(owner, tmp_path, "sas-ep", DEPLOYMENT, script=SCRIPT)
        r = owner.post(
            "/endpoints/sas-ep/jobs",
            json=invoke_body({"data": folder(url)}),
            headers={"azureml-model-deployment": DEPLOYMENT},
        )
        assert r.status_code == 201, r.text
        job = wait_for_job(owner, r.json()["name"])
        assert job["status"] == "Completed", job
        rows = owner.get(f"/jobs/{job['name']}/outputs/score/files/predictions.csv").text
        assert rows.strip() == "a.txt from-blob"
    with sqlite3.connect(blob_server.home / "workspace.db") as conn:
        (spec,) = conn.execute("SELECT spec FROM jobs WHERE name = ?", (job["name"],)).fetchone()
    assert signature not in spec and sas not in spec
    assert "REDACTED" in spec


def _wait_status(client: httpx.Client, name: str, wanted: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"/jobs/{name}").json()["status"] == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"job {name} did not reach {wanted}")


# -- reading a job's outputs ----------------------------------------------------------------


def test_reading_a_job_does_not_read_the_datastore_its_output_went_to(world: World) -> None:
    """``read jobs`` on an endpoint shows its jobs; their outputs take ``read data`` where
    they are."""
    owner = world.owner
    target = f"out/{unique('owner')}/"
    r = owner.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body({"data": folder(ds(TEAM_A, "in/"))}, {"score": out(ds(TEAM_B, target))}),
    )
    assert r.status_code == 201, r.text
    job = r.json()["name"]
    assert wait_for_job(owner, job)["status"] == "Completed"
    name = unique("rhea")
    token = new_user(owner, name, [("reader", f"endpoint:{ALPHA}")])
    with world.server.client(token) as rhea:
        assert rhea.get(f"/jobs/{job}").status_code == 200
        refused(
            rhea.get(f"/jobs/{job}/outputs/score"),
            name,
            f"read data on datastore:{TEAM_B}",
            f"output 'score' of job {job!r}",
        )
        refused(rhea.get(f"/jobs/{job}/outputs/score/files/predictions.csv"), name, "read data")
        assert rhea.get(f"/jobs/{job}/logs").status_code == 200  # the job's own logs
        grant_role(owner, name, "reader", f"datastore:{TEAM_B}")
        listing = rhea.get(f"/jobs/{job}/outputs/score").raise_for_status().json()
        assert [f["path"] for f in listing["files"]] == ["predictions.csv"]
        rows = rhea.get(f"/jobs/{job}/outputs/score/files/predictions.csv").text
        assert sorted(rows.splitlines()) == [f"file-{i}.txt {TEAM_A}-{i}" for i in range(2)]


def test_an_output_shows_its_own_files_only(world: World) -> None:
    owner = world.owner
    # A UriFile output is one file, whatever else its folder holds.
    where = f"single/{unique('f')}"
    put_file(owner, TEAM_A, f"{where}/other.txt", "not the job's")
    r = owner.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body(
            {"data": folder(ds(TEAM_A, "in/"))},
            {"score": {"JobOutputType": "UriFile", "Uri": ds(TEAM_A, f"{where}/rows.csv")}},
        ),
    )
    assert r.status_code == 201, r.text
    job = r.json()["name"]
    assert wait_for_job(owner, job)["status"] == "Completed"
    listing = owner.get(f"/jobs/{job}/outputs/score").raise_for_status().json()
    assert [f["path"] for f in listing["files"]] == ["rows.csv"]
    assert owner.get(f"/jobs/{job}/outputs/score/files/rows.csv").status_code == 200
    r = owner.get(f"/jobs/{job}/outputs/score/files/other.txt")
    assert r.status_code == 404, r.text
    for trick in ("../in/file-0.txt", "..%2Fin%2Ffile-0.txt", "%2e%2e/in/file-0.txt"):
        r = owner.get(f"/jobs/{job}/outputs/score/files/{trick}")
        assert r.status_code in (400, 404), (trick, r.status_code, r.text)
        assert f"{TEAM_A}-0" not in r.text

    # An output at a datastore's root would be the whole datastore: refused.
    for uri in (ds(TEAM_B, ""), f"azureml://datastores/{TEAM_B}/paths/./"):
        r = owner.post(
            f"/endpoints/{ALPHA}/jobs",
            json=invoke_body({"data": folder(ds(TEAM_A, "in/"))}, {"score": out(uri)}),
        )
        assert r.status_code == 400, r.text
        assert "root of datastore" in r.json()["error"]["message"]


# -- writing a job's outputs ----------------------------------------------------------------


def test_an_endpoint_contributor_writes_only_where_it_may(world: World) -> None:
    """A contributor on an endpoint may invoke it, but its job writes only into datastores
    the contributor may write: a named output and the default one alike."""
    owner = world.owner
    name = unique("cleo")
    token = new_user(
        owner, name, [("contributor", f"endpoint:{ALPHA}"), ("reader", f"datastore:{TEAM_A}")]
    )
    data = {"data": folder(ds(TEAM_A, "in/"))}
    before = {j["name"] for j in owner.get("/jobs", params={"limit": 1000}).json()}
    with world.server.client(token) as cleo:
        r = cleo.post(f"/endpoints/{ALPHA}/jobs", json=invoke_body(data))
        refused(r, name, f"write data on datastore:{DEFAULT}", "(output 'score')")
        r = cleo.post(
            f"/endpoints/{ALPHA}/jobs",
            json=invoke_body(data, {"score": out(ds(TEAM_B, f"out/{unique('c')}/"))}),
        )
        refused(r, name, f"write data on datastore:{TEAM_B}", "(output 'score')")
        after = {j["name"] for j in owner.get("/jobs", params={"limit": 1000}).json()}
        assert after == before
        # With write data on a datastore, it writes there.
        grant_role(owner, name, "invoker", f"datastore:{TEAM_B}")
        r = cleo.post(
            f"/endpoints/{ALPHA}/jobs",
            json=invoke_body(data, {"score": out(ds(TEAM_B, f"out/{unique('c')}/"))}),
        )
        assert r.status_code == 201, r.text
        assert wait_for_job(cleo, r.json()["name"])["status"] == "Completed"


# -- roles and jobs are bound to ids, not names -----------------------------------------------


def _held(client: httpx.Client) -> set[tuple[str, str]]:
    me = client.get("/whoami").raise_for_status().json()
    return {(r["scope"], r["role"]) for r in me["roles"]}


def test_a_new_endpoint_or_datastore_of_a_deleted_ones_name_has_none_of_its_roles(
    world: World,
) -> None:
    owner = world.owner
    endpoint, datastore = unique("gamma"), f"store_{unique('c').replace('-', '_')}"
    owner.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint}).raise_for_status()
    make_datastore(owner, world.root, datastore)
    put_file(owner, datastore, "in/a.txt", "first")
    name = unique("rita")
    token = new_user(
        owner, name, [("contributor", f"endpoint:{endpoint}"), ("reader", f"datastore:{datastore}")]
    )
    with world.server.client(token) as rita:
        assert _held(rita) == {
            (f"endpoint:{endpoint}", "contributor"),
            (f"datastore:{datastore}", "reader"),
        }
        assert rita.get(f"/datastores/{datastore}/files/in/a.txt").text == "first"

        assert owner.delete(f"/batch-endpoints/{endpoint}").status_code in (200, 202, 204)
        assert owner.delete(f"/datastores/{datastore}").status_code in (200, 204)
        assert _held(rita) == set()
        assert owner.get("/roles", params={"identity": name}).json() == []

        # New ones of the same names: the old grants do not reach them.
        owner.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint}).raise_for_status()
        make_datastore(owner, world.root / "again", datastore)
        put_file(owner, datastore, "in/a.txt", "second")
        assert _held(rita) == set()
        refused(rita.get(f"/batch-endpoints/{endpoint}"), name, f"endpoint:{endpoint}")
        refused(
            rita.patch(f"/batch-endpoints/{endpoint}", json={"description": "mine"}),
            name,
            "manage",
        )
        refused(rita.get(f"/datastores/{datastore}/files/in/a.txt"), name, "read data")
        # Granted again, on the new ones, they hold.
        grant_role(owner, name, "reader", f"datastore:{datastore}")
        assert rita.get(f"/datastores/{datastore}/files/in/a.txt").text == "second"


def test_a_new_identity_of_a_deleted_ones_name_has_none_of_its_jobs(world: World) -> None:
    owner = world.owner
    name = unique("jack")
    roles = [("invoker", f"endpoint:{ALPHA}"), ("invoker", f"datastore:{TEAM_A}")]
    token = new_user(owner, name, roles)
    with world.server.client(token) as jack:
        r = jack.post(
            f"/endpoints/{ALPHA}/jobs",
            json=invoke_body(
                {"data": folder(ds(TEAM_A, "in/"))}, {"score": out(ds(TEAM_A, unique("out")))}
            ),
        )
        assert r.status_code == 201, r.text
        job = r.json()["name"]
        assert wait_for_job(jack, job)["status"] == "Completed"
    assert owner.delete(f"/identities/{name}").status_code == 204

    token = new_user(owner, name, roles)  # another identity, of the same name and roles
    with world.server.client(token) as impostor:
        refused(impostor.get(f"/jobs/{job}"), name, f"read jobs on endpoint:{ALPHA}")
        refused(impostor.get(f"/jobs/{job}/outputs/score"), name, "read jobs")
        refused(impostor.post(f"/jobs/{job}/cancel"), name, "cancel jobs")
        assert job not in {j["name"] for j in impostor.get("/jobs").json()}
        assert job not in {j["name"] for j in impostor.get(f"/endpoints/{ALPHA}/jobs").json()}
    # The job still shows who started it.
    assert owner.get(f"/jobs/{job}").json()["creation_context"]["created_by"] == name


# -- the invoker's rights at the time of use --------------------------------------------------


@pytest.fixture
def one_job_at_a_time(tmp_path: Path) -> Iterator[World]:
    """A server that runs one job at a time, so a job can be held in the queue."""
    root = tmp_path / "root"
    server = start_server(
        root / "home",
        extra_env={
            "SLUICEWAY_LOCAL_DATASTORE_ROOTS": str(root),
            "SLUICEWAY_MAX_CONCURRENT_JOBS": "1",
        },
    )
    owner = server.client()
    try:
        make_datastore(owner, root, TEAM_A)
        for i in range(2):
            put_file(owner, TEAM_A, f"in/file-{i}.txt", f"{TEAM_A}-{i}")
        put_file(owner, TEAM_A, "slow/file.txt", "slow")
        deploy_alpha(owner, root)
        yield World(server, root, owner)
    finally:
        owner.close()
        stop_server(server)


def _invoke(client: httpx.Client, data: str, output: str) -> str:
    r = client.post(
        f"/endpoints/{ALPHA}/jobs",
        json=invoke_body({"data": folder(ds(TEAM_A, data))}, {"score": out(ds(TEAM_A, output))}),
    )
    assert r.status_code == 201, r.text
    name: str = r.json()["name"]
    return name


def test_rights_taken_back_after_queueing_stop_the_job(one_job_at_a_time: World) -> None:
    world = one_job_at_a_time
    owner, root = world.owner, world.root
    roles = [("invoker", f"endpoint:{ALPHA}"), ("invoker", f"datastore:{TEAM_A}")]
    olga, gone = unique("olga"), unique("gone")
    clients = {n: world.server.client(new_user(owner, n, roles)) for n in (olga, gone)}
    try:
        # Held in the queue behind a slow job of the owner's.
        blocker = _invoke(owner, "slow/", unique("blocker"))
        _wait_status(owner, blocker, "Running")
        queued = {n: _invoke(c, "in/", f"out-{n}") for n, c in clients.items()}
        assert {owner.get(f"/jobs/{j}").json()["status"] for j in queued.values()} == {"Queued"}
        revoke(owner, olga, "invoker", f"datastore:{TEAM_A}")
        assert owner.delete(f"/identities/{gone}").status_code == 204
        assert wait_for_job(owner, blocker)["status"] == "Completed"

        job = wait_for_job(owner, queued[olga])
        assert job["status"] == "Failed", job
        message = job["error"]["message"]
        assert message.startswith("The job cannot start: "), message
        assert f"may not read data on datastore:{TEAM_A} (input 'data')" in message
        job = wait_for_job(owner, queued[gone])
        assert job["status"] == "Failed", job
        assert f"identity {gone!r}, no longer exists" in job["error"]["message"]
        for name in (olga, gone):
            assert not (root / TEAM_A / f"out-{name}").exists()
            assert owner.get(f"/jobs/{queued[name]}").json()["progress"]["mini_batches_total"] == 0

        # Taken back while the job runs: it commits nothing.
        grant_role(owner, olga, "invoker", f"datastore:{TEAM_A}")
        running = _invoke(clients[olga], "slow/", f"late-{olga}")
        _wait_status(owner, running, "Running")
        revoke(owner, olga, "invoker", f"datastore:{TEAM_A}")
        job = wait_for_job(owner, running)
        assert job["status"] == "Failed", job
        assert job["error"]["message"].startswith("The job cannot commit its outputs: ")
        assert not (root / TEAM_A / f"late-{olga}" / "predictions.csv").exists()
    finally:
        for client in clients.values():
            client.close()


def test_a_writer_of_a_deleted_datastore_cannot_replace_files_in_a_new_one(world: World) -> None:
    owner = world.owner
    datastore = f"store_{unique('w').replace('-', '_')}"
    make_datastore(owner, world.root / "writers", datastore)
    name = unique("wendy")
    token = new_user(owner, name, [("invoker", f"datastore:{datastore}")])
    with world.server.client(token) as wendy:
        path = f"/datastores/{datastore}/files/in/mine.txt"
        assert wendy.put(path, content=b"v1").status_code == 200
        assert wendy.put(path, content=b"v2", params={"overwrite": "true"}).status_code == 200

        # The same folder registered again under the same name is a new datastore: what Wendy
        # wrote into the old one is not hers to replace in it.
        assert owner.delete(f"/datastores/{datastore}").status_code in (200, 204)
        make_datastore(owner, world.root / "writers", datastore)
        grant_role(owner, name, "invoker", f"datastore:{datastore}")
        r = wendy.put(path, content=b"v3", params={"overwrite": "true"})
        assert r.status_code == 409, r.text
        assert owner.get(path).content == b"v2"
