"""Jobs on a Ray cluster, through a real server: the compute resource (create, show asks Ray,
list, delete, an unreachable cluster refused), a deployment's job on Ray actors with the same
output, row for row, as on the local executor, and a job on a compute whose cluster is gone
failing at once, naming the compute and the address.

Needs the Ray cluster the test script starts (a head and one more node); skips locally
without it, and fails in CI.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
)

SCRIPT = """\
import os

def init():
    print(f"init pid {os.getpid()}", flush=True)

def run(mini_batch):
    rows = []
    for path in mini_batch:
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

    r = client.put(f"/computes/{name}", json={"name": name, "type": "ray", "address": address})
    assert r.status_code == 201, r.text
    shown = client.get(f"/computes/{name}").raise_for_status().json()
    assert shown["cluster"]["reachable"] and shown["cluster"]["nodes"] == 2, shown
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
    assert on_ray == here and len(on_ray["predictions.csv"].splitlines()) == 18

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
    assert '"nodes": 2' in run("compute", "show", "-n", name)
    assert name in run("compute", "list")
    run("compute", "delete", "-n", name)
    assert (
        httpx.get(f"{ray_server.url}/computes/{name}", headers=ray_server.headers).status_code
        == 404
    )
