"""Jobs on a Ray cluster, through a real server: the compute resource (create, show asks Ray,
list, delete, an unreachable cluster refused), a deployment's job on Ray actors with the same
output, row for row, as on the local executor, and a job on a compute whose cluster is gone
failing at once, naming the compute and the address.

Needs the Ray cluster the test script starts (a head and one more node); skips locally
without it, and fails in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluiceway import (
    BatchDeployment,
    BatchEndpoint,
    CodeConfiguration,
    Input,
    MLClient,
    Model,
    load_environment,
)
from sluiceway.constants import AssetTypes
from sluiceway.errors import ValidationError
from sluiceway.store.computes import ComputeStore
from sluiceway.store.db import Database
from tests.conftest import service_missing
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    read_output,
    unique,
    upload_folder,
    wait_for_job,
    write_numbered_files,
)
from tests.integration.test_environments import PACKAGE, _project
from tests.integration.test_environments import SCRIPT as PROBE_SCRIPT
from tests.unit.test_environment_cache import make_wheel

SCRIPT = """\
import os

def init():
    print(f"init pid {os.getpid()}", flush=True)

def run(mini_batch):
    rows = []
    for path in mini_batch:
        if os.path.basename(path) == "bad.csv":
            raise ValueError("cannot score bad.csv")
        with open(path) as fh:
            rows += [f"{os.path.basename(path)} {line}" for line in fh.read().splitlines()]
    return rows
"""


# The cluster's nodes may run another Sluiceway than this one: the server sends its own.
SHIP_CODE = {"SLUICEWAY_RAY_SHIP_CODE": "true"}


def ray_address() -> str:
    """The test cluster's GCS address, which the test script exports."""
    return _test_service("SLUICEWAY_TEST_RAY_ADDRESS", "A Ray cluster")


def ray_client_address() -> str:
    """The test cluster's Ray Client address (``ray://``), which the test script exports."""
    return _test_service("SLUICEWAY_TEST_RAY_CLIENT_ADDRESS", "A Ray cluster's Ray Client server")


def _test_service(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        service_missing(f"{what} ({variable})")
    assert value is not None
    return value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_compute(client: httpx.Client, name: str) -> None:
    """Register the test cluster as the compute ``name``."""
    r = client.put(
        f"/computes/{name}", json={"name": name, "type": "ray", "address": ray_address()}
    )
    assert r.status_code == 201, r.text


def add_gone_compute(server: RunningServer, dead: str) -> str:
    """A Ray compute at ``dead``, where nothing answers, as if registered while its cluster
    answered (straight into the server's database); its name."""
    ghost = unique("ghost")
    database = Database(f"sqlite:///{server.home / 'workspace.db'}")
    try:
        ComputeStore(database).put(
            ghost, type_="ray", address=dead, description=None, tags={}, created_by="test"
        )
    finally:
        database.dispose()
    return ghost


def server_with_s3_default(tmp_path: Path, secret: str) -> RunningServer:
    """A server whose default datastore is a fresh bucket of the S3 server, read with
    ``secret``."""
    from tests.integration import storage_services as svc

    bucket = svc.make_bucket("raydefault")
    default = {k: v for k, v in svc.s3_datastore_yaml("x", bucket).items() if k != "name"}
    default["credentials"] = {"access_key_id": "ray-test", "secret_access_key": secret}
    return server_with_default(tmp_path, default)


def server_with_default(tmp_path: Path, default: dict[str, Any]) -> RunningServer:
    from tests.integration import storage_services as svc

    env = {**svc.server_env(), "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(default), **SHIP_CODE}
    return start_server(tmp_path / "home", extra_env=env)


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    ray_address()
    # Warm actors hold their CPUs until they have been idle this long; the cluster has two
    # CPUs, and a later test's actors would wait for them.
    idle = {"SLUICEWAY_WORKER_IDLE_SECONDS": "10"}
    running = start_server(tmp_path_factory.mktemp("ray-home"), extra_env=SHIP_CODE | idle)
    yield running
    stop_server(running)


def test_compute_resource_and_a_job_on_ray(ray_server: RunningServer, tmp_path: Path) -> None:
    address = ray_address()
    client = ray_server.client()
    name = unique("ray")

    # An unreachable cluster is refused at create, naming the address; nothing is created.
    dead = f"127.0.0.1:{closed_port()}"
    r = client.put(f"/computes/{name}", json={"name": name, "type": "ray", "address": dead})
    assert r.status_code == 400, r.text
    assert dead in r.json()["error"]["message"] and r.json()["error"]["target"] == "address"
    assert client.get(f"/computes/{name}").status_code == 404

    # Bad input: a 400 naming the field, and nothing created.
    for body, field in (
        ({"name": name, "type": "kubernetes", "address": address}, "type"),
        ({"name": name, "type": "ray", "address": "not an address"}, "address"),
        ({"name": name, "type": "ray"}, "address"),
        ({"name": "other", "type": "ray", "address": address}, "name"),
    ):
        r = client.put(f"/computes/{name}", json=body)
        assert r.status_code in (400, 422), r.text
        assert field in r.json()["error"].get("target", r.json()["error"]["message"]), r.text
    assert client.get(f"/computes/{name}").status_code == 404
    assert client.put("/computes/local", json={"name": "local", "type": "ray"}).status_code == 409

    r = client.put(f"/computes/{name}", json={"name": name, "type": "ray", "address": address})
    assert r.status_code == 201, r.text
    shown = client.get(f"/computes/{name}").raise_for_status().json()
    assert shown["cluster"]["reachable"] and shown["cluster"]["nodes"] >= 2, shown
    assert shown["cluster"]["cpus"] >= 2
    listed = [c["name"] for c in client.get("/computes").raise_for_status().json()]
    assert listed[0] == "local" and name in listed

    # One endpoint, two deployments of the same script: on Ray, and on a compute that was
    # never registered (Azure YAML's azureml:batch-cluster), which runs locally and says so.
    endpoint = unique("rayjobs")
    settings = {"mini_batch_size": 2, "max_concurrency_per_instance": 1}
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "onray",
        script=SCRIPT,
        settings=settings,
        instance_count=2,
        compute=f"azureml:{name}",
    )
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "here",
        script=SCRIPT,
        settings=settings,
        instance_count=2,
        compute="azureml:batch-cluster",
    )
    ray_dep = client.get(f"/batch-endpoints/{endpoint}/deployments/onray").json()
    assert address in ray_dep["runs_on"], ray_dep
    local_dep = client.get(f"/batch-endpoints/{endpoint}/deployments/here").json()
    assert "not registered" in local_dep["runs_on"], local_dep

    data = tmp_path / "data"
    data.mkdir()
    for i in range(9):
        (data / f"f-{i:02d}.csv").write_text(f"a{i}\nb{i}\n")
    (data / "bad.csv").write_text("x\n")  # fails its mini-batch (with f-00.csv), every retry
    uri = upload_folder(client, data, f"inputs/{endpoint}")
    jobs = {}
    for deployment in ("onray", "here"):
        body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
        r = client.post(
            f"/endpoints/{endpoint}/jobs",
            json=body,
            headers={"azureml-model-deployment": deployment},
        )
        assert r.status_code == 201, r.text
        jobs[deployment] = r.json()["name"]
    ended = {d: wait_for_job(client, n, timeout=120) for d, n in jobs.items()}
    assert all(job["status"] == "Completed" for job in ended.values()), ended
    assert address in ended["onray"]["runs_on"]
    assert "not registered" in ended["here"]["runs_on"]
    on_ray, here = read_output(client, jobs["onray"]), read_output(client, jobs["here"])
    assert on_ray["predictions.csv"] == here["predictions.csv"]
    assert len(on_ray["predictions.csv"].splitlines()) == 16
    for job in ended.values():
        assert job["progress"]["mini_batches_failed"] == 1, job["progress"]
    errors = {
        d: sorted(
            (line["path"], line["error_type"], line["attempts"])
            for line in map(json.loads, found["errors.jsonl"].splitlines())
        )
        for d, found in (("onray", on_ray), ("here", here))
    }
    assert (
        errors["onray"]
        == errors["here"]
        == [
            ("bad.csv", "ValueError", 4),
            ("f-00.csv", "ValueError", 4),
        ]
    ), errors

    logs = [f["path"] for f in client.get(f"/jobs/{jobs['onray']}/logs").json()]
    overview = next(p for p in logs if p.endswith("overview.txt"))
    assert "Ray actors" in client.get(f"/jobs/{jobs['onray']}/logs/{overview}").text
    stdout = [p for p in logs if "user/stdout/worker-" in p]
    assert len(stdout) == 2, logs
    assert "init pid" in client.get(f"/jobs/{jobs['onray']}/logs/{stdout[0]}").text

    # The compute's cluster is gone (registered while it answered): the job fails at once,
    # naming the compute and the address.
    ghost = add_gone_compute(ray_server, dead)
    create_script_deployment(
        client, tmp_path, endpoint, "gone", script=SCRIPT, compute=f"azureml:{ghost}"
    )
    body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
    r = client.post(
        f"/endpoints/{endpoint}/jobs", json=body, headers={"azureml-model-deployment": "gone"}
    )
    assert r.status_code == 201, r.text
    started = time.monotonic()
    failed = wait_for_job(client, r.json()["name"], timeout=60)
    assert failed["status"] == "Failed", failed
    assert time.monotonic() - started < 30
    message = failed["error"]["message"]
    assert ghost in message and dead in message, message

    assert client.delete(f"/computes/{name}").status_code == 204
    assert client.delete("/computes/local").status_code == 409
    client.close()


@pytest.mark.slow
def test_jobs_on_a_compute_reached_through_ray_client(tmp_path: Path) -> None:
    """A compute whose address is ``ray://`` (Ray Client, with the cluster's token auth): show
    asks the cluster through it; a model job and a pipeline job run on its nodes and Complete
    with the expected rows; the server, holding that connection, refuses a compute at another
    address, saying why."""
    address = ray_client_address()
    gcs = ray_address()
    server = start_server(tmp_path / "home", extra_env=SHIP_CODE)
    try:
        with server.client() as client:
            name = unique("viaclient")
            body = {"name": name, "type": "ray", "address": address}
            assert client.put(f"/computes/{name}", json=body).status_code == 201
            shown = client.get(f"/computes/{name}").raise_for_status().json()["cluster"]
            assert shown["reachable"] and shown["address"] == address, shown
            assert shown["nodes"] >= 2 and shown["cpus"] >= 2, shown

            # One process, one Ray connection: the GCS address (the same cluster) is refused.
            other = unique("gcs")
            r = client.put(
                f"/computes/{other}", json={"name": other, "type": "ray", "address": gcs}
            )
            assert r.status_code == 400, r.text
            message = r.json()["error"]["message"]
            assert address in message and gcs in message, message
            assert "one Ray connection" in message, message
            assert client.get(f"/computes/{other}").status_code == 404

            create_script_deployment(
                client,
                tmp_path,
                "rayclient",
                "dep",
                script=SCRIPT,
                settings={"mini_batch_size": 2},
                instance_count=2,
                compute=f"azureml:{name}",
            )
            data = tmp_path / "data"
            data.mkdir()
            for i in range(7):
                (data / f"c-{i}.csv").write_text(f"row{i}\nmore{i}\n")
            uri = upload_folder(client, data, "inputs/rayclient")
            r = client.post(
                "/endpoints/rayclient/jobs",
                json=invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}}),
            )
            assert r.status_code == 201, r.text
            done = wait_for_job(client, r.json()["name"], timeout=180)
            assert done["status"] == "Completed", (done["status"], done["error"])
            assert address in done["runs_on"], done["runs_on"]
            rows = read_output(client, r.json()["name"])["predictions.csv"].splitlines()
            assert rows == [f"c-{i}.csv {word}{i}" for i in range(7) for word in ("row", "more")]
            logs = [f["path"] for f in client.get(f"/jobs/{r.json()['name']}/logs").json()]
            stdout = [p for p in logs if "user/stdout/worker-" in p]
            assert len(stdout) == 2, logs

            (tmp_path / "pipeline").mkdir()
            pipeline_on_ray_and_here(client, tmp_path / "pipeline", name, address)
    finally:
        stop_server(server)


@pytest.fixture(scope="module", autouse=True)
def wrong_token_client() -> Iterator[subprocess.Popen[str] | None]:
    """A process connecting to the Ray Client server with a token that is not the cluster's,
    started with the module: Ray Client reports the refusal as a timeout after about 30 s,
    which the module's other tests hide."""
    address = os.environ.get("SLUICEWAY_TEST_RAY_CLIENT_ADDRESS")
    if not address:
        yield None
        return
    code = (
        "from sluiceway.executors.ray_cluster import RayConnection, RayUnavailable\n"
        "try:\n"
        f"    RayConnection.ensure({address!r})\n"
        "except RayUnavailable as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('CONNECTED')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = "0" * 64  # a token, not the cluster's
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:  # the test did not run (or stopped early)
            process.kill()
            process.communicate()


def test_ray_client_refuses_a_server_without_the_clusters_token(
    wrong_token_client: subprocess.Popen[str] | None,
) -> None:
    """The Ray Client server checks the cluster's token: a process with another token is
    refused, with a message naming the address and the token settings to check."""
    address = ray_client_address()
    assert wrong_token_client is not None
    output, _ = wrong_token_client.communicate(timeout=120)
    assert address in output and "CONNECTED" not in output, output
    assert "RAY_AUTH_TOKEN" in output, output


def test_compute_cli(ray_server: RunningServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    name = unique("cli")
    (tmp_path / "compute.yml").write_text(
        f"name: {name}\ntype: ray\naddress: {ray_address()}\ndescription: the team's cluster\n"
    )
    sluice = [sys.executable, "-m", "sluiceway.cli.main"]

    def run(*args: str) -> str:
        done = subprocess.run(
            [*sluice, *args], env=ray_server.env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert name in run("compute", "create", "-f", str(tmp_path / "compute.yml"))
    assert '"reachable": true' in run("compute", "show", "-n", name)
    assert name in run("compute", "list")
    run("compute", "delete", "-n", name)
    assert (
        httpx.get(f"{ray_server.url}/computes/{name}", headers=ray_server.headers).status_code
        == 404
    )


@pytest.mark.slow
def test_ray_job_with_the_default_datastore_in_s3(tmp_path: Path) -> None:
    """Actors read inputs and the registered model and code from S3 themselves, with the
    datastore's credentials, which appear nowhere in the Ray cluster's logs; the next job of
    the deployment runs on the same, warm actors."""
    import uuid

    secret = f"secret-{uuid.uuid4().hex}"
    server = server_with_s3_default(tmp_path, secret)
    try:
        with server.client() as client:
            add_compute(client, "s3ray")
            create_script_deployment(
                client,
                tmp_path,
                "rays3",
                "dep",
                script=SCRIPT,
                settings={"mini_batch_size": 3},
                instance_count=2,
                compute="azureml:s3ray",
            )
            data = tmp_path / "data"
            data.mkdir()
            for i in range(6):
                (data / f"g-{i}.csv").write_text(f"row{i}\n")
            uri = upload_folder(client, data, "inputs/rays3")
            names = []
            for _ in range(2):
                body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
                r = client.post("/endpoints/rays3/jobs", json=body)
                assert r.status_code == 201, r.text
                names.append(r.json()["name"])
                done = wait_for_job(client, names[-1], timeout=120)
                assert done["status"] == "Completed", done
                rows = read_output(client, names[-1])["predictions.csv"].splitlines()
                assert rows == [f"g-{i}.csv row{i}" for i in range(6)]
            second = client.get(f"/jobs/{names[1]}/logs").json()
            stdout = [f["path"] for f in second if "user/stdout/" in f["path"]]
            text = "".join(client.get(f"/jobs/{names[1]}/logs/{p}").text for p in stdout)
            assert "kept warm" in text and "init pid" not in text, text
    finally:
        stop_server(server)
    assert_not_in_ray_logs(secret)


def assert_not_in_ray_logs(secret: str) -> None:
    """No file of the Ray cluster's session (logs, dashboard data) holds ``secret``."""
    session = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "/nonexistent")).parent / "t"
    assert session.is_dir(), session
    leaked = [
        path
        for path in session.rglob("*")
        if path.is_file()
        and path.stat().st_size < 50 << 20
        and secret.encode() in path.read_bytes()
    ]
    assert not leaked, leaked


@pytest.mark.slow
def test_a_pipeline_job_on_ray_with_the_default_datastore_in_s3(tmp_path: Path) -> None:
    """The steps' nodes read the data, the code and the earlier step's output from S3 with the
    datastore's credentials, which appear nowhere in the Ray cluster's logs."""
    import uuid

    secret = f"secret-{uuid.uuid4().hex}"
    server = server_with_s3_default(tmp_path, secret)
    try:
        with server.client() as client:
            add_compute(client, "s3pipe")
            pipeline_on_ray_and_here(client, tmp_path, "s3pipe")
    finally:
        stop_server(server)
    assert_not_in_ray_logs(secret)


@pytest.mark.slow
def test_a_model_job_on_ray_with_the_default_datastore_in_azurite(tmp_path: Path) -> None:
    """Actors read the inputs and the registered model and code from Azure Blob (Azurite)
    themselves; the output is the local executor's, row for row; the account key appears
    nowhere in the Ray cluster's logs."""
    from tests.integration import storage_services as svc

    container = svc.make_container("raydefault")
    default = {k: v for k, v in svc.blob_datastore_yaml("x", container).items() if k != "name"}
    server = server_with_default(tmp_path, default)
    try:
        with server.client() as client:
            add_compute(client, "blobray")
            settings = {"mini_batch_size": 2}
            for name, compute in (("onray", "azureml:blobray"), ("here", None)):
                create_script_deployment(
                    client,
                    tmp_path,
                    "rayblob",
                    name,
                    script=SCRIPT,
                    settings=settings,
                    instance_count=2,
                    compute=compute,
                )
            data = tmp_path / "data"
            data.mkdir()
            for i in range(7):
                (data / f"z-{i}.csv").write_text(f"row{i}\nmore{i}\n")
            uri = upload_folder(client, data, "inputs/rayblob")
            outputs = {}
            for deployment in ("onray", "here"):
                body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
                r = client.post(
                    "/endpoints/rayblob/jobs",
                    json=body,
                    headers={"azureml-model-deployment": deployment},
                )
                assert r.status_code == 201, r.text
                done = wait_for_job(client, r.json()["name"], timeout=180)
                assert done["status"] == "Completed", (done["status"], done["error"])
                outputs[deployment] = read_output(client, r.json()["name"])
            assert (
                "Ray cluster"
                in client.get("/batch-endpoints/rayblob/deployments/onray").json()["runs_on"]
            )
            assert outputs["onray"] == outputs["here"]
            rows = outputs["onray"]["predictions.csv"].splitlines()
            assert sorted(rows) == sorted(
                f"z-{i}.csv {word}{i}" for i in range(7) for word in ("row", "more")
            )
    finally:
        stop_server(server)
    assert_not_in_ray_logs(svc.AZURITE_KEY)


SLOW_SCRIPT = """\
import os
import time

def init():
    pass

def run(mini_batch):
    time.sleep(float(os.environ.get("DELAY", "0")))
    return [f"{os.path.basename(p)} {open(p).read().strip()}" for p in mini_batch]
"""


def driver_actors(pid: int, kind: str = "ScoringActor") -> list[dict[str, object]]:
    """The actors of class ``kind`` the Ray driver of process ``pid`` (a server) owns that are
    not dead."""
    import ray
    from ray._private import state

    if not ray.is_initialized():
        ray.init(address=ray_address(), log_to_driver=False)
    jobs = {j["JobID"] for j in state.state.job_table() if j["DriverPid"] == pid}
    return [
        a
        for a in state.actors().values()
        if a["JobID"] in jobs and a["State"] != "DEAD" and a["ActorClassName"] == kind
    ]


@pytest.mark.slow
def test_server_killed_then_cancel_leaves_no_actor(tmp_path: Path) -> None:
    """A server SIGKILLed mid-job leaves none of its actors alive; restarted, it takes the job
    over and completes it with each row once. A canceled job leaves no actor either."""
    import signal

    address = ray_address()
    home = tmp_path / "home"
    server = start_server(home, extra_env=SHIP_CODE)
    try:
        client = server.client()
        r = client.put("/computes/crash", json={"name": "crash", "type": "ray", "address": address})
        assert r.status_code == 201, r.text
        create_script_deployment(
            client,
            tmp_path,
            "raycrash",
            "dep",
            script=SLOW_SCRIPT,
            settings={"mini_batch_size": 1, "environment_variables": {"DELAY": "0.5"}},
            instance_count=2,
            compute="azureml:crash",
        )
        data = tmp_path / "data"
        data.mkdir()
        for i in range(12):
            (data / f"h-{i:02d}.csv").write_text(f"row{i}\n")
        uri = upload_folder(client, data, "inputs/raycrash")
        body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
        job = client.post("/endpoints/raycrash/jobs", json=body).raise_for_status().json()["name"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = client.get(f"/jobs/{job}").json()
            assert shown["status"] in ("Queued", "Running", "Preparing"), (
                shown["status"],
                shown["error"],
            )
            if shown["progress"]["mini_batches_succeeded"] >= 2:
                break
            time.sleep(0.2)
        assert driver_actors(server.process.pid)
        client.close()
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        end = time.monotonic() + 20
        while driver_actors(server.process.pid) and time.monotonic() < end:
            time.sleep(0.5)
        assert not driver_actors(server.process.pid)
    finally:
        stop_server(server)

    server = start_server(home, extra_env=SHIP_CODE)
    try:
        client = server.client()
        done = wait_for_job(client, job, timeout=120)
        assert done["status"] == "Completed", done
        rows = read_output(client, job)["predictions.csv"].splitlines()
        assert rows == [f"h-{i:02d}.csv row{i}" for i in range(12)]

        job = client.post("/endpoints/raycrash/jobs", json=body).raise_for_status().json()["name"]
        end = time.monotonic() + 60
        while time.monotonic() < end:  # cancel while its mini-batches run on the actors
            if client.get(f"/jobs/{job}").json()["progress"]["mini_batches_succeeded"]:
                break
            time.sleep(0.2)
        assert driver_actors(server.process.pid)
        assert client.post(f"/jobs/{job}/cancel").status_code in (200, 202)
        assert wait_for_job(client, job, timeout=60)["status"] == "Canceled"
        end = time.monotonic() + 10
        while driver_actors(server.process.pid) and time.monotonic() < end:
            time.sleep(0.3)
        assert not driver_actors(server.process.pid)
        client.close()
    finally:
        stop_server(server)


@pytest.mark.slow
def test_a_node_lost_mid_job_costs_only_its_mini_batches(
    ray_server: RunningServer, tmp_path: Path
) -> None:
    """A third node joins, takes an actor, and is killed mid-job (its raylet and everything it
    started): the actor's mini-batch is retried on the nodes left, and the job completes with
    each row once."""
    import signal
    import subprocess

    import psutil

    address = ray_address()
    session = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "/nonexistent")).parent / "t"
    if not session.is_dir():
        service_missing(f"the Ray cluster's session folder ({session})")

    def node_processes() -> set[int]:
        marker = str(session) + "/"
        return {
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if any(marker in part for part in p.info["cmdline"] or [])
        }

    before = node_processes()
    executable = Path(sys.executable).with_name("ray")
    argv = [str(executable), "start", "--address", address, "--num-cpus", "1"]
    argv += ["--object-store-memory", "100000000", "--disable-usage-stats"]
    argv += ["--dashboard-agent-listen-port", str(closed_port())]
    subprocess.run(
        argv,
        check=True,
        capture_output=True,
        timeout=60,
    )
    new = node_processes() - before
    doomed: list[psutil.Process] = []
    for pid in new:
        try:
            process = psutil.Process(pid)
            doomed += [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    assert doomed
    client = ray_server.client()
    name = unique("node")
    try:
        r = client.put(f"/computes/{name}", json={"name": name, "type": "ray", "address": address})
        assert r.status_code == 201, r.text
        assert client.get(f"/computes/{name}").json()["cluster"]["nodes"] >= 3
        endpoint = unique("raynode")
        create_script_deployment(
            client,
            tmp_path,
            endpoint,
            "dep",
            script=SLOW_SCRIPT,
            settings={"mini_batch_size": 1, "environment_variables": {"DELAY": "1"}},
            instance_count=3,
            compute=f"azureml:{name}",
        )
        data = tmp_path / "data"
        data.mkdir()
        for i in range(12):
            (data / f"n-{i:02d}.csv").write_text(f"row{i}\n")
        uri = upload_folder(client, data, f"inputs/{endpoint}")
        body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
        job = client.post(f"/endpoints/{endpoint}/jobs", json=body).raise_for_status().json()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if client.get(f"/jobs/{job['name']}").json()["progress"]["mini_batches_succeeded"]:
                break
            time.sleep(0.2)
        for process in doomed:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)
        done = wait_for_job(client, job["name"], timeout=180)
        assert done["status"] == "Completed", done
        assert done["progress"]["mini_batches_retried"] >= 1, done["progress"]
        rows = read_output(client, job["name"])["predictions.csv"].splitlines()
        assert rows == [f"n-{i:02d}.csv row{i}" for i in range(12)]
    finally:
        for process in doomed:
            with contextlib.suppress(psutil.Error):
                process.kill()
        # Leave the cluster as it was for the next test: Ray marks the lost node dead only
        # after its health checks fail, and until then it may place new actors there.
        end = time.monotonic() + 120
        while time.monotonic() < end:
            shown = client.get(f"/computes/{name}")
            if shown.status_code != 200 or shown.json()["cluster"]["nodes"] < 3:
                break
            time.sleep(1)
        client.close()


PIPELINE_SCRIPT = r"""
import os, pathlib, socket, sys, time

command, args = sys.argv[1], sys.argv[2:]
print(f"step {command} pid {os.getpid()} on {socket.gethostname()}", flush=True)
print("ray variables:", sorted(k for k in os.environ if k.startswith("RAY_")), flush=True)
if command == "lines":  # lines <data> <prefix> <out>: one row per input line
    data, prefix, out = args
    rows = []
    for path in sorted(p for p in pathlib.Path(data).rglob("*") if p.is_file()):
        rows += [f"{prefix} {path.name} {line}" for line in path.read_text().splitlines()]
    pathlib.Path(out, "rows.csv").write_text("\n".join(rows) + "\n")
    pathlib.Path(out, "nested").mkdir()
    pathlib.Path(out, "nested", "count.txt").write_text(str(len(rows)))
elif command == "upper":  # upper <rows> <out>
    rows = pathlib.Path(args[0], "rows.csv").read_text().splitlines()
    pathlib.Path(args[1], "upper.csv").write_text("\n".join(r.upper() for r in rows) + "\n")
    print(f"{len(rows)} rows", file=sys.stderr)
elif command == "sleep":  # sleep <seconds> [<out>]
    time.sleep(float(args[0]))
    if args[1:]:
        pathlib.Path(args[1], "done.txt").write_text("done")
elif command == "fail":
    print("ValueError: the rows are bad", file=sys.stderr)
    sys.exit(3)
"""


def upload_steps(client: httpx.Client, folder: Path) -> str:
    """The steps' code folder (``steps.py``), uploaded; its URI."""
    folder.mkdir()
    (folder / "steps.py").write_text(PIPELINE_SCRIPT)
    return upload_folder(client, folder, f"code/{unique('steps')}")


def step(code: str, line: str, inputs: dict[str, str], outputs: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "command",
        "code": code,
        "command": f"python steps.py {line}",
        "inputs": {name: {"type": kind} for name, kind in inputs.items()},
        "outputs": {name: {"type": "uri_folder"} for name in outputs},
    }


def rows_pipeline(code: str) -> dict[str, Any]:
    """Two steps: ``lines`` reads the data (fetched where the step runs) and a literal;
    ``upper`` reads the output of ``lines``, kept between the steps."""
    return {
        "name": unique("rows"),
        "type": "pipeline",
        "inputs": {"data": {"type": "uri_folder"}, "prefix": {"type": "string"}},
        "outputs": {"rows": {"type": "uri_folder"}, "upper": {"type": "uri_folder"}},
        "jobs": {
            "lines": {
                "component": step(
                    code,
                    "lines ${{inputs.data}} ${{inputs.prefix}} ${{outputs.out}}",
                    {"data": "uri_folder", "prefix": "string"},
                    ("out",),
                ),
                "inputs": {
                    "data": "${{parent.inputs.data}}",
                    "prefix": "${{parent.inputs.prefix}}",
                },
                "outputs": {"out": "${{parent.outputs.rows}}"},
            },
            "upper": {
                "component": step(
                    code,
                    "upper ${{inputs.rows}} ${{outputs.out}}",
                    {"rows": "uri_folder"},
                    ("out",),
                ),
                "inputs": {"rows": "${{parent.jobs.lines.outputs.out}}"},
                "outputs": {"out": "${{parent.outputs.upper}}"},
            },
        },
    }


def deploy_pipeline(
    client: httpx.Client, endpoint: str, name: str, pipeline: dict[str, Any], **extra: Any
) -> None:
    if client.get(f"/batch-endpoints/{endpoint}").status_code == 404:
        r = client.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint})
        assert r.status_code == 201, r.text
    body = {"name": name, "endpoint_name": endpoint, "type": "pipeline", "component": pipeline}
    r = client.put(f"/batch-endpoints/{endpoint}/deployments/{name}", json=body | extra)
    assert r.status_code == 201, r.text


def pipeline_on_ray_and_here(
    client: httpx.Client, tmp_path: Path, compute: str, address: str | None = None
) -> str:
    """The same pipeline job on the Ray compute (at ``address``, the test cluster's GCS unless
    given) and on the local one: both Complete with the same outputs, row for row; the Ray
    job's name."""
    address = address or ray_address()
    code_uri = upload_steps(client, tmp_path / "code")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        (data / f"d-{i}.csv").write_text(f"a{i}\nb{i}\n")
    data_uri = upload_folder(client, data, f"inputs/{unique('rows')}")
    endpoint = unique("plray")
    pipeline = rows_pipeline(code_uri)
    deploy_pipeline(client, endpoint, "onray", pipeline, compute=f"azureml:{compute}")
    deploy_pipeline(client, endpoint, "here", pipeline)
    assert address in client.get(f"/batch-endpoints/{endpoint}/deployments/onray").json()["runs_on"]
    jobs = {}
    for deployment in ("onray", "here"):
        inputs = {
            "data": {"JobInputType": "UriFolder", "Uri": data_uri},
            "prefix": {"JobInputType": "Literal", "Value": "x; rm -rf ~"},
        }
        r = client.post(
            f"/endpoints/{endpoint}/jobs",
            json=invoke_body(inputs),
            headers={"azureml-model-deployment": deployment},
        )
        assert r.status_code == 201, r.text
        jobs[deployment] = r.json()["name"]
    ended = {d: wait_for_job(client, n, timeout=180) for d, n in jobs.items()}
    assert all(job["status"] == "Completed" for job in ended.values()), {
        d: (j["status"], j["error"]) for d, j in ended.items()
    }
    assert address in ended["onray"]["runs_on"]
    outputs = {
        d: {o: read_output(client, n, o) for o in ("rows", "upper")} for d, n in jobs.items()
    }
    assert outputs["onray"] == outputs["here"]
    rows = outputs["onray"]["rows"]["rows.csv"].splitlines()
    assert rows == [f"x; rm -rf ~ d-{i}.csv {c}{i}" for i in range(4) for c in "ab"]
    assert outputs["onray"]["rows"]["nested/count.txt"] == "8"
    assert outputs["onray"]["upper"]["upper.csv"].splitlines() == [r.upper() for r in rows]

    steps = {s["name"]: s for s in ended["onray"]["steps"]}
    job = jobs["onray"]
    stdout = client.get(f"/jobs/{job}/logs/{steps['upper']['logs']['stdout']}").text
    assert "step upper pid" in stdout, stdout
    assert "ray variables: []" in stdout, stdout  # the Ray worker's environment stays out
    stderr = client.get(f"/jobs/{job}/logs/{steps['upper']['logs']['stderr']}").text
    assert "8 rows" in stderr, stderr
    overview = client.get(f"/jobs/{job}/logs/job_progress_overview.txt").text
    assert "Ray actor" in overview and compute in overview, overview
    return job


def test_a_pipeline_job_on_ray_matches_the_local_one(
    ray_server: RunningServer, tmp_path: Path
) -> None:
    """Each step runs on an actor of the compute; its data is read there, its outputs come
    back and are committed; a failing step fails the job with its exit code and stderr."""
    with ray_server.client() as client:
        compute = unique("pipe")
        add_compute(client, compute)
        pipeline_on_ray_and_here(client, tmp_path, compute)

        code_uri = upload_steps(client, tmp_path / "failing")
        failing = {
            "name": unique("failing"),
            "type": "pipeline",
            "jobs": {"bad": {"component": step(code_uri, "fail", {}, ())}},
        }
        endpoint = unique("plfail")
        deploy_pipeline(
            client, endpoint, "dep", failing, settings={"default_compute": f"azureml:{compute}"}
        )
        r = client.post(f"/endpoints/{endpoint}/jobs", json=invoke_body({}))
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["name"], timeout=120)
        assert job["status"] == "Failed", job
        assert "exit code 3" in job["error"]["message"], job["error"]
        assert "the rows are bad" in job["error"]["message"], job["error"]

        # A step whose environment asks for a Python the cluster does not run is refused at
        # invoke, naming the step and the Python the cluster runs.
        environment = {"conda_file": {"dependencies": ["python=3.9"]}}
        with_env = {
            "name": unique("withenv"),
            "type": "pipeline",
            "jobs": {
                "bad": {"component": step(code_uri, "fail", {}, ()) | {"environment": environment}}
            },
        }
        deploy_pipeline(client, endpoint, "withenv", with_env, compute=f"azureml:{compute}")
        r = client.post(
            f"/endpoints/{endpoint}/jobs",
            json=invoke_body({}),
            headers={"azureml-model-deployment": "withenv"},
        )
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["target"] == "jobs.bad.environment" and "Ray" in error["message"], error
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        assert "python=3.9" in error["message"], error
        assert f"python={here}" in error["message"], error

        # The compute's cluster is gone (registered while it answered): the job fails at once,
        # naming the compute and the address.
        dead = f"127.0.0.1:{closed_port()}"
        ghost = add_gone_compute(ray_server, dead)
        deploy_pipeline(client, endpoint, "gone", failing, compute=f"azureml:{ghost}")
        r = client.post(
            f"/endpoints/{endpoint}/jobs",
            json=invoke_body({}),
            headers={"azureml-model-deployment": "gone"},
        )
        assert r.status_code == 201, r.text
        started = time.monotonic()
        job = wait_for_job(client, r.json()["name"], timeout=60)
        assert job["status"] == "Failed" and time.monotonic() - started < 30, job
        assert job["error"]["code"] == "ComputeUnavailable", job["error"]
        assert ghost in job["error"]["message"] and dead in job["error"]["message"], job["error"]


def running_step_pid(client: httpx.Client, job: str) -> int:
    """The process id of the command of the job's running step, as its stdout says it."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        shown = client.get(f"/jobs/{job}").json()
        assert shown["status"] in ("Queued", "Preparing", "Running"), shown
        running = [s for s in shown["steps"] if s["status"] == "Running"]
        if running:
            text = client.get(f"/jobs/{job}/logs/{running[0]['logs']['stdout']}").text
            if "pid" in text:
                return int(text.split("pid ")[1].split()[0])
        time.sleep(0.3)
    raise AssertionError(f"no step of job {job} started")


@pytest.mark.slow
def test_a_server_killed_mid_step_leaves_nothing_and_takes_the_pipeline_job_over(
    tmp_path: Path,
) -> None:
    """A server SIGKILLed while a step runs on Ray leaves neither the step's actor nor its
    command running; restarted, it runs the step again and completes the job."""
    import signal

    import psutil

    home = tmp_path / "home"
    server = start_server(home, extra_env=SHIP_CODE)
    client = server.client()
    try:
        add_compute(client, "plcrash")
        code_uri = upload_steps(client, tmp_path / "code")
        napping = {
            "name": unique("napping"),
            "type": "pipeline",
            "outputs": {"napped": {"type": "uri_folder"}},
            "jobs": {
                "nap": {
                    "component": step(code_uri, "sleep 6 ${{outputs.out}}", {}, ("out",)),
                    "outputs": {"out": "${{parent.outputs.napped}}"},
                }
            },
        }
        deploy_pipeline(client, "plcrash", "dep", napping, compute="azureml:plcrash")
        r = client.post("/endpoints/plcrash/jobs", json=invoke_body({}))
        assert r.status_code == 201, r.text
        job = r.json()["name"]
        pid = running_step_pid(client, job)
        assert driver_actors(server.process.pid, "StepActor")
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        end = time.monotonic() + 20
        while (driver_actors(server.process.pid, "StepActor") or psutil.pid_exists(pid)) and (
            time.monotonic() < end
        ):
            time.sleep(0.5)
        assert not driver_actors(server.process.pid, "StepActor")
        assert not psutil.pid_exists(pid)
    finally:
        client.close()
        stop_server(server)

    server = start_server(home, extra_env=SHIP_CODE)
    try:
        with server.client() as client:
            done = wait_for_job(client, job, timeout=120)
            assert done["status"] == "Completed", (done["status"], done["error"])
            assert read_output(client, job, "napped") == {"done.txt": "done"}
    finally:
        stop_server(server)


def test_a_canceled_pipeline_job_on_ray_leaves_nothing_running(
    ray_server: RunningServer, tmp_path: Path
) -> None:
    import psutil

    with ray_server.client() as client:
        compute = unique("plcancel")
        add_compute(client, compute)
        code_uri = upload_steps(client, tmp_path / "code")
        sleepy = {
            "name": unique("sleepy"),
            "type": "pipeline",
            "jobs": {
                "nap": {"component": step(code_uri, "sleep 300", {}, ())},
                "later": {"component": step(code_uri, "sleep 300", {}, ())},
            },
        }
        endpoint = unique("plsleep")
        deploy_pipeline(
            client,
            endpoint,
            "dep",
            sleepy,
            compute=f"azureml:{compute}",
            settings={"max_concurrent_steps": 1},
        )
        r = client.post(f"/endpoints/{endpoint}/jobs", json=invoke_body({}))
        assert r.status_code == 201, r.text
        name = r.json()["name"]
        pid = running_step_pid(client, name)
        assert psutil.pid_exists(pid)
        assert driver_actors(ray_server.process.pid, "StepActor")
        assert client.post(f"/jobs/{name}/cancel").status_code == 202
        job = wait_for_job(client, name, timeout=60)
        assert job["status"] == "Canceled", job
        assert {s["name"]: s["status"] for s in job["steps"]} == {
            "nap": "Canceled",
            "later": "Canceled",
        }
        end = time.monotonic() + 10
        while (driver_actors(ray_server.process.pid, "StepActor") or psutil.pid_exists(pid)) and (
            time.monotonic() < end
        ):
            time.sleep(0.3)
        assert not driver_actors(ray_server.process.pid, "StepActor")
        assert not psutil.pid_exists(pid)


@pytest.fixture(scope="module")
def offline_ray_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose environments build offline (local wheels only), here and on the nodes."""
    ray_address()
    home = tmp_path_factory.mktemp("ray-env-home")
    running = start_server(
        home,
        extra_env={
            "SLUICEWAY_ENVIRONMENT_BUILD_OFFLINE": "true",
            "SLUICEWAY_RAY_ENVIRONMENTS_DIR": str(home / "on-the-nodes"),
            # Small actors, none kept warm: other tests' warm actors may hold the cluster's CPUs.
            "SLUICEWAY_RAY_ACTOR_CPUS": "0.1",
            "SLUICEWAY_WORKER_IDLE_SECONDS": "0",
            **SHIP_CODE,
        },
    )
    yield running
    stop_server(running)


def _job_text(client: httpx.Client, job: dict[str, Any]) -> str:
    """A job, its error and every log file, as one text."""
    logs = client.get(f"/jobs/{job['name']}/logs").json()
    return json.dumps(job) + "".join(
        client.get(f"/jobs/{job['name']}/logs/{f['path']}").text for f in logs
    )


def test_a_deployment_runs_in_its_environment_on_ray_actors(
    offline_ray_server: RunningServer, tmp_path: Path
) -> None:
    """The environment is built on the cluster's nodes, from a local wheel the server
    uploaded, and the actors score with its interpreter; without it the same script cannot
    import its package. A python= the cluster cannot run is refused at invoke, and a build
    that fails on the nodes fails the job with the build's log."""
    server = offline_ray_server
    client = server.client()
    compute = unique("envray")
    r = client.put(
        f"/computes/{compute}", json={"name": compute, "type": "ray", "address": ray_address()}
    )
    assert r.status_code == 201, r.text
    wheel = make_wheel(tmp_path / "wheels", PACKAGE, body="VALUE = 'probe-1'\n")
    environment = load_environment(_project(tmp_path / "env", wheel))
    environment.name = unique("probe-env")
    endpoint = unique("envray-ep")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text(PROBE_SCRIPT)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.txt").write_text("1\n")
    data = tmp_path / "data"
    write_numbered_files(data, 4)

    with MLClient(endpoint=server.url, token=server.token) as ml_client:
        ml_client.jobs._out = lambda line: None
        registered = ml_client.environments.create_or_update(environment)
        ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()

        def deploy(name: str, env: Any) -> Any:
            return ml_client.batch_deployments.begin_create_or_update(
                BatchDeployment(
                    name=name,
                    endpoint_name=endpoint,
                    model=Model(name=f"{endpoint}-model", path=tmp_path / "model"),
                    code_configuration=CodeConfiguration(
                        code=tmp_path / "code", scoring_script="score.py"
                    ),
                    environment=env,
                    compute=f"azureml:{compute}",
                    instance_count=2,
                    mini_batch_size=2,
                    retry_settings={"max_retries": 0, "timeout": 120},
                )
            ).result(timeout=300)

        def invoke(name: str) -> dict[str, Any]:
            job = ml_client.batch_endpoints.invoke(
                endpoint_name=endpoint,
                deployment_name=name,
                input=Input(type=AssetTypes.URI_FOLDER, path=str(data)),
            )
            assert job.name is not None
            return wait_for_job(client, job.name, timeout=600)

        withenv = deploy("withenv", f"azureml:{environment.name}:{registered.version}")
        assert withenv.environment_build is not None
        content_hash = withenv.environment_build["content_hash"]
        done = invoke("withenv")
        assert done["status"] == "Completed", done
        assert ray_address() in done["runs_on"]
        rows = read_output(client, done["name"])["predictions.csv"].splitlines()
        nodes = server.home / "on-the-nodes" / content_hash / "venv"
        assert rows and all(row == f"probe-1 {nodes}" for row in rows), rows
        text = _job_text(client, done)
        assert "built on the compute's nodes" in text, text
        build_log = (server.home / "on-the-nodes" / content_hash / "build.log").read_text()
        assert "this Ray node's interpreter" in build_log and "Build succeeded" in build_log

        deploy("bare", None)
        bare = invoke("bare")
        assert bare["status"] == "Failed", bare
        assert f"No module named '{PACKAGE}'" in _job_text(client, bare)

        # A Python the cluster does not run: refused at invoke, saying which it runs.
        deploy("otherpy", {"conda_file": {"dependencies": ["python=3.9"]}})
        try:
            invoke("otherpy")
        except ValidationError as exc:
            message = str(exc)
        else:
            raise AssertionError("an environment asking for python=3.9 ran on Ray")
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        assert "python=3.9" in message and f"python={here}" in message, message

        # A build that succeeds on the server and fails on the nodes (the environment has a
        # module named ray, which hides Ray from the actors): the job fails with its log.
        decoy = make_wheel(tmp_path / "decoy", "ray", body="raise ImportError('a decoy ray')\n")
        shadow = load_environment(_project(tmp_path / "shadow", decoy))
        shadow.name = unique("shadow-env")
        ml_client.environments.create_or_update(shadow)
        deploy("shadow", f"azureml:{shadow.name}@latest")
        started = time.monotonic()
        failed = invoke("shadow")
        assert failed["status"] == "Failed", failed
        assert time.monotonic() - started < 300
        message = failed["error"]["message"]
        assert "could not be built" in message and "a decoy ray" in message, message
        assert compute in message, message
    client.close()


PROBE_STEP = f"""\
import pathlib, shutil, sys
import {PACKAGE}

data, out = sys.argv[1:3]
rows = [
    f"{{{PACKAGE}.VALUE}} {{path.name}} {{line}}"
    for path in sorted(p for p in pathlib.Path(data).iterdir() if p.is_file())
    for line in path.read_text().splitlines()
]
pathlib.Path(out, "rows.csv").write_text("\\n".join(rows) + "\\n")
print("python", sys.executable, flush=True)
print("on PATH", shutil.which("python"), flush=True)
"""


def test_a_pipeline_step_runs_in_its_environment_on_ray(
    offline_ray_server: RunningServer, tmp_path: Path
) -> None:
    """A step whose component names an environment runs on the Ray compute with the
    environment's interpreter, built on the nodes from a local wheel: ``python`` in its command
    is that interpreter (its ``bin`` first on ``PATH``), and the job's output is the local
    executor's. Without the environment the step cannot import its package; a build that
    fails on the nodes fails the step with the node's build log."""
    server = offline_ray_server
    client = server.client()
    compute = unique("stepenv")
    add_compute(client, compute)
    wheel = make_wheel(tmp_path / "wheels", PACKAGE, body="VALUE = 'probe-1'\n")
    environment = load_environment(_project(tmp_path / "env", wheel))
    environment.name = unique("step-env")
    decoy = make_wheel(tmp_path / "decoy", "ray", body="raise ImportError('a decoy ray')\n")
    shadow = load_environment(_project(tmp_path / "shadow", decoy))
    shadow.name = unique("shadow-step-env")
    with MLClient(endpoint=server.url, token=server.token) as ml_client:
        ml_client.environments.create_or_update(environment)
        ml_client.environments.create_or_update(shadow)
    code = tmp_path / "code"
    code.mkdir()
    (code / "step.py").write_text(PROBE_STEP)
    code_uri = upload_folder(client, code, f"code/{unique('probe')}")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"d-{i}.csv").write_text(f"a{i}\nb{i}\n")
    data_uri = upload_folder(client, data, f"inputs/{unique('probe')}")

    def pipeline(env: str | None) -> dict[str, Any]:
        component = {
            "type": "command",
            "code": code_uri,
            "command": "python step.py ${{inputs.data}} ${{outputs.out}}",
            "inputs": {"data": {"type": "uri_folder"}},
            "outputs": {"out": {"type": "uri_folder"}},
        }
        if env is not None:
            component["environment"] = f"azureml:{env}@latest"
        return {
            "name": unique("probe"),
            "type": "pipeline",
            "inputs": {"data": {"type": "uri_folder"}},
            "outputs": {"rows": {"type": "uri_folder"}},
            "jobs": {
                "probe": {
                    "component": component,
                    "inputs": {"data": "${{parent.inputs.data}}"},
                    "outputs": {"out": "${{parent.outputs.rows}}"},
                }
            },
        }

    endpoint = unique("plenvray")
    on_ray = f"azureml:{compute}"
    deploy_pipeline(client, endpoint, "onray", pipeline(environment.name), compute=on_ray)
    deploy_pipeline(client, endpoint, "here", pipeline(environment.name))
    deploy_pipeline(client, endpoint, "bare", pipeline(None), compute=on_ray)
    deploy_pipeline(client, endpoint, "shadow", pipeline(shadow.name), compute=on_ray)
    jobs = {}
    for deployment in ("onray", "here", "bare", "shadow"):
        r = client.post(
            f"/endpoints/{endpoint}/jobs",
            json=invoke_body({"data": {"JobInputType": "UriFolder", "Uri": data_uri}}),
            headers={"azureml-model-deployment": deployment},
        )
        assert r.status_code == 201, r.text
        jobs[deployment] = r.json()["name"]
    ended = {d: wait_for_job(client, n, timeout=600) for d, n in jobs.items()}

    for deployment in ("onray", "here"):
        assert ended[deployment]["status"] == "Completed", ended[deployment]
    assert ray_address() in ended["onray"]["runs_on"]
    outputs = {d: read_output(client, jobs[d], "rows") for d in ("onray", "here")}
    assert outputs["onray"] == outputs["here"]
    rows = outputs["onray"]["rows.csv"].splitlines()
    assert rows == [f"probe-1 d-{i}.csv {c}{i}" for i in range(3) for c in "ab"], rows
    (probe,) = ended["onray"]["steps"]
    stdout = client.get(f"/jobs/{jobs['onray']}/logs/{probe['logs']['stdout']}").text
    python = stdout.split("python ", 1)[1].split()[0]
    on_path = stdout.split("on PATH ", 1)[1].split()[0]
    nodes = server.home / "on-the-nodes"
    assert python.startswith(f"{nodes}/") and python.endswith("/venv/bin/python"), stdout
    assert on_path == python, stdout
    text = _job_text(client, ended["onray"])
    assert "built on the compute's nodes" in text and "Ray actor" in text, text

    assert ended["bare"]["status"] == "Failed", ended["bare"]
    assert f"No module named '{PACKAGE}'" in ended["bare"]["error"]["message"], ended["bare"]

    failed = ended["shadow"]
    assert failed["status"] == "Failed", failed
    message = failed["error"]["message"]
    assert "could not be built" in message and "a decoy ray" in message, message
    assert compute in message and "probe" in message, message
    client.close()
