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


def ray_address() -> str:
    address = os.environ.get("SLUICEWAY_TEST_RAY_ADDRESS")
    if not address:
        service_missing("A Ray cluster (SLUICEWAY_TEST_RAY_ADDRESS)")
    assert address is not None
    return address


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    ray_address()
    running = start_server(tmp_path_factory.mktemp("ray-home"))
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
    ghost = unique("ghost")
    database = Database(f"sqlite:///{ray_server.home / 'workspace.db'}")
    try:
        ComputeStore(database).put(
            ghost, type_="ray", address=dead, description=None, tags={}, created_by="test"
        )
    finally:
        database.dispose()
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
    import json
    import uuid

    from tests.integration import storage_services as svc

    address = ray_address()
    secret = f"secret-{uuid.uuid4().hex}"
    bucket = svc.make_bucket("raydefault")
    default = {k: v for k, v in svc.s3_datastore_yaml("x", bucket).items() if k != "name"}
    default["credentials"] = {"access_key_id": "ray-test", "secret_access_key": secret}
    env = {**svc.server_env(), "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(default)}
    server = start_server(tmp_path / "home", extra_env=env)
    try:
        with server.client() as client:
            r = client.put(
                "/computes/s3ray", json={"name": "s3ray", "type": "ray", "address": address}
            )
            assert r.status_code == 201, r.text
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


SLOW_SCRIPT = """\
import os
import time

def init():
    pass

def run(mini_batch):
    time.sleep(float(os.environ.get("DELAY", "0")))
    return [f"{os.path.basename(p)} {open(p).read().strip()}" for p in mini_batch]
"""


def driver_actors(pid: int) -> list[dict[str, object]]:
    """The actors the Ray driver of process ``pid`` (a server) owns that are not dead."""
    import ray
    from ray._private import state

    if not ray.is_initialized():
        ray.init(address=ray_address(), log_to_driver=False)
    jobs = {j["JobID"] for j in state.state.job_table() if j["DriverPid"] == pid}
    return [
        a
        for a in state.actors().values()
        if a["JobID"] in jobs and a["State"] != "DEAD" and a["ActorClassName"] == "ScoringActor"
    ]


@pytest.mark.slow
def test_server_killed_then_cancel_leaves_no_actor(tmp_path: Path) -> None:
    """A server SIGKILLed mid-job leaves none of its actors alive; restarted, it takes the job
    over and completes it with each row once. A canceled job leaves no actor either."""
    import signal

    address = ray_address()
    home = tmp_path / "home"
    server = start_server(home)
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

    server = start_server(home)
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
    try:
        client = ray_server.client()
        name = unique("node")
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
        client.close()
    finally:
        for process in doomed:
            with contextlib.suppress(psutil.Error):
                process.kill()


def test_a_pipeline_deployment_on_a_ray_compute_is_refused(
    ray_server: RunningServer, tmp_path: Path
) -> None:
    """Pipeline steps run on the server's workers only: invoking a pipeline deployment that
    names a Ray compute is refused, naming the field, rather than run elsewhere silently."""
    client = ray_server.client()
    name = unique("pipe")
    r = client.put(
        f"/computes/{name}", json={"name": name, "type": "ray", "address": ray_address()}
    )
    assert r.status_code == 201, r.text
    code = tmp_path / "code"
    code.mkdir()
    (code / "step.py").write_text("print('hello')\n")
    code_uri = upload_folder(client, code, f"code/{name}")
    pipeline = {
        "name": unique("one"),
        "type": "pipeline",
        "jobs": {
            "hello": {
                "component": {"type": "command", "code": code_uri, "command": "python step.py"}
            }
        },
    }
    endpoint = unique("plray")
    assert client.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint}).status_code == 201
    for deployment, extra, field in (
        ("viacompute", {"compute": f"azureml:{name}"}, "compute"),
        ("viasettings", {"settings": {"default_compute": f"azureml:{name}"}}, "default_compute"),
    ):
        body = {
            "name": deployment,
            "endpoint_name": endpoint,
            "type": "pipeline",
            "component": pipeline,
            **extra,
        }
        r = client.put(f"/batch-endpoints/{endpoint}/deployments/{deployment}", json=body)
        assert r.status_code == 201, r.text
        assert "locally" in r.json()["runs_on"]
        r = client.post(
            f"/endpoints/{endpoint}/jobs",
            json=invoke_body({}),
            headers={"azureml-model-deployment": deployment},
        )
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert field in error["target"] and "do not run on Ray" in error["message"], error
    client.close()


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
