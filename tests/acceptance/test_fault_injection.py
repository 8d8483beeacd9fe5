"""Faults injected into real jobs: scripts that raise, hang or die on one file; a server killed
with SIGKILL at random points and restarted; a cancel; a graceful stop; ``sluice job stream``
on a terminal.

Every server here is a real subprocess with real worker processes. In every case each input row
is in the output exactly once, in input order, or the failed files are in ``errors.jsonl`` with
the error threshold respected, and the job ends with the right status.
"""

from __future__ import annotations

import collections
import json
import math
import os
import pty
import random
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from sluiceway import MLClient
from sluiceway.executors.worker_pool import QUEUE_AHEAD_SECONDS
from sluiceway.store.db import Database
from sluiceway.store.jobs import JobStore
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

# Appends each file it scores to $LEDGER (so a test can count how often a file ran), sleeps
# $DELAY seconds per file, and fails on $FAULT_FILE in the way $FAULT says.
SCRIPT = """\
import os
import subprocess
import time

def init():
    print(f"init pid {os.getpid()}", flush=True)

def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = os.path.basename(path)
        with open(os.environ["LEDGER"], "a") as ledger:
            ledger.write(path + "\\n")
        if name == os.environ.get("FAULT_FILE"):
            fault = os.environ["FAULT"]
            if fault == "raise":
                raise RuntimeError(f"injected failure on {name}")
            if fault == "hang":
                time.sleep(600)
            if fault == "exit":
                os._exit(1)
            if fault == "child":
                subprocess.run(["sleep", "600"], check=False)
        time.sleep(float(os.environ.get("DELAY", "0")))
        with open(path) as fh:
            rows.append(f"{name} {fh.read().strip()}")
    return rows
"""


def write_rows(folder: Path, count: int) -> list[str]:
    """``count`` one-row files; the output lines they should give, in input order."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        name = f"f-{i:04d}.txt"
        (folder / name).write_text(f"row-{i}\n")
        lines.append(f"{name} row-{i}")
    return lines


def deploy(
    client: httpx.Client,
    tmp: Path,
    *,
    environment: dict[str, str],
    workers: int = 1,
    **settings: Any,
) -> str:
    endpoint = unique("faults")
    create_script_deployment(
        client,
        tmp,
        endpoint,
        "faults",
        script=SCRIPT,
        settings={
            "mini_batch_size": 1,
            "max_concurrency_per_instance": workers,
            "environment_variables": environment,
            **settings,
        },
    )
    return endpoint


def invoke(client: httpx.Client, endpoint: str, data: str, **props: Any) -> str:
    body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": data}}, **props)
    response = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert response.status_code == 201, response.text
    name: str = response.json()["name"]
    return name


def wait_until(client: httpx.Client, name: str, ready: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{name}").json()
        if ready(job):
            return job
        assert job["status"] not in {"Completed", "Failed", "Canceled"}, job
        time.sleep(0.1)
    raise AssertionError(f"job {name} never got there: {job}")


def workers_of(server: RunningServer) -> list[psutil.Process]:
    """Every process the server started (workers, and whatever their scripts started)."""
    found = []
    for p in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # it exited while we looked: nothing left to stop
    return found


def still_running(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of ``processes`` still running after ``timeout`` seconds. A zombie has exited:
    it only waits for its new parent (init, once its own parent was killed) to reap it."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def ledger_counts(ledger: Path) -> collections.Counter[str]:
    if not ledger.exists():
        return collections.Counter()
    return collections.Counter(ledger.read_text().splitlines())


# -- a script that raises, hangs or dies on one file ---------------------------------------


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("faults") / "home",
        extra_env={"SLUICEWAY_MAX_CONCURRENT_JOBS": "6"},
    )
    yield running
    stop_server(running)


FAULTS = {
    # fault: (error type, failure kind, whether the worker is replaced)
    "raise": ("RuntimeError", "run_error", False),
    "hang": ("TimeoutError", "timeout", True),
    "exit": ("WorkerDied", "worker_died", True),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_script_that_fails_on_one_file(
    fault_server: RunningServer, tmp_path: Path, fault: str
) -> None:
    error_type, failure, replaced = FAULTS[fault]
    ledger = fault_server.shared_folder() / "ledger.txt"
    with fault_server.client() as client:
        expected = write_rows(tmp_path / "data", 6)
        data = upload_folder(client, tmp_path / "data", unique("faults-data"))
        endpoint = deploy(
            client,
            tmp_path,
            environment={"LEDGER": str(ledger), "FAULT": fault, "FAULT_FILE": "f-0002.txt"},
            retry_settings={"max_retries": 1, "timeout": 3},
        )
        tolerant = invoke(client, endpoint, data)
        strict = invoke(client, endpoint, data, ErrorThreshold=0)

        # error_threshold -1: the job completes with every other row, once, in order.
        done = wait_for_job(client, tolerant)
        assert done["status"] == "Completed", done
        assert "1 of 6 files failed" in done["status_detail"]
        files = read_output(client, tolerant)
        assert files["predictions.csv"].splitlines() == [
            line for line in expected if not line.startswith("f-0002.txt")
        ]
        (error,) = [json.loads(line) for line in files["errors.jsonl"].splitlines()]
        assert (error["path"], error["error_type"], error["failure"], error["attempts"]) == (
            "f-0002.txt",
            error_type,
            failure,
            2,
        )
        if fault == "raise":
            assert "injected failure on f-0002.txt" in error["traceback"]
        stdout = client.get(f"/jobs/{tolerant}/logs/user/stdout/worker-0.txt").text
        inits = stdout.count("init pid ")
        # The worker that timed out or died was replaced, and its replacement ran init() again
        # (the one replacing the second failure may be stopped first, when the job ends).
        assert inits >= 2 if replaced else inits == 1, stdout

        # error_threshold 0: the one failed file fails the job; nothing is committed but the
        # list of failed files.
        failed = wait_for_job(client, strict)
        assert failed["status"] == "Failed", failed
        assert failed["error"]["message"].startswith(
            "1 files failed, which is more than error_threshold (0)"
        )
        assert failed["error"]["details"][0]["type"] == error_type
        listing = client.get(f"/jobs/{strict}/outputs/score").json()["files"]
        assert [f["path"] for f in listing] == ["errors.jsonl"]


# -- a server killed with SIGKILL at random points -----------------------------------------


def test_a_server_killed_at_random_points_loses_and_repeats_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("SLUICEWAY_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    env = {
        "SLUICEWAY_LEASE_SECONDS": "3",
        "SLUICEWAY_MAX_CONCURRENT_JOBS": "1",
        "SLUICEWAY_SCHEDULER_POLL_SECONDS": "0.1",
    }
    home = tmp_path / "home"
    server = start_server(home, extra_env=env)
    ledger = server.shared_folder() / "ledger.txt"
    kills, workers = 10, 2
    try:
        with server.client() as client:
            endpoint = deploy(
                client,
                tmp_path,
                environment={"LEDGER": str(ledger), "DELAY": "0.02"},
                workers=workers,
            )
            expected = {}
            jobs = []
            # One job of 200 mini-batches, and two queued behind it.
            for count in (200, 20, 20):
                folder = tmp_path / f"data-{count}-{len(jobs)}"
                lines = write_rows(folder, count)
                name = invoke(client, endpoint, upload_folder(client, folder, unique("crash")))
                expected[name] = lines
                jobs.append(name)

        # Kill points: random numbers of mini-batches done over the three jobs, so every kill
        # lands while there is work (running, finalizing, or a job queued behind), each after
        # the restarted server made progress; plus a random delay.
        points = sorted(rng.sample(range(1, 240), kills))
        stamps = []
        for point in points:
            with server.client() as client:
                while True:
                    states = [client.get(f"/jobs/{n}").json() for n in jobs]
                    if sum(j["progress"]["mini_batches_succeeded"] for j in states) >= point:
                        break
                    time.sleep(0.05)
            time.sleep(rng.uniform(0, 0.3))
            stamps.append([j["status"] for j in states])
            started = workers_of(server)
            server.process.kill()
            server.process.wait()
            # The workers (and anything they started) do not outlive their server.
            alive = still_running(started, timeout=5)
            assert not alive, f"seed {seed}: orphans {alive}"
            server = start_server(home, extra_env=env)

        with server.client() as client:
            for name in jobs:
                done = wait_for_job(client, name, timeout=300)
                assert done["status"] == "Completed", (seed, done)
                assert done["progress"]["mini_batches_failed"] == 0
                output = read_output(client, name)
                assert output["predictions.csv"].splitlines() == expected[name], seed
    finally:
        stop_server(server)

    runs = ledger_counts(ledger)
    assert len(runs) == 240, seed
    # A kill can only repeat what was in flight at that moment: the mini-batches a worker held
    # and had scored, whose results had not been recorded yet. A worker of mini-batches this
    # short holds up to QUEUE_AHEAD_SECONDS of them.
    held = math.ceil(QUEUE_AHEAD_SECONDS / 0.02)
    repeated = sum(runs.values()) - len(runs)
    assert repeated <= kills * workers * held, (seed, repeated, stamps)


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_of_a_long_job_stops_its_workers_within_five_seconds(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        with (
            server.client() as client,
            MLClient(endpoint=server.url, token=server.token) as ml_client,
        ):
            write_rows(tmp_path / "data", 12)
            data = upload_folder(client, tmp_path / "data", unique("cancel"))
            ledger = server.shared_folder() / "ledger.txt"
            endpoint = deploy(
                client,
                tmp_path,
                # The fourth file starts a child process that would run for ten minutes; the
                # others take a second each.
                environment={
                    "LEDGER": str(ledger),
                    "DELAY": "1",
                    "FAULT": "child",
                    "FAULT_FILE": "f-0003.txt",
                },
                workers=2,
                retry_settings={"max_retries": 0, "timeout": 600},
            )
            # Processes the server started before the job (spare workers, kept for MLflow
            # deployments) are not the job's.
            before = {p.pid for p in workers_of(server)}
            name = invoke(client, endpoint, data)
            wait_until(
                client,
                name,
                lambda j: (
                    j["progress"]["mini_batches_succeeded"] >= 2
                    and "f-0003.txt" in ledger.read_text()
                ),
            )
            started = [p for p in workers_of(server) if p.pid not in before]
            assert any(p.name() == "sleep" for p in started)

            asked = time.monotonic()
            poller = ml_client.jobs.begin_cancel(name, poll_interval=0.1)
            poller.wait(timeout=30)
            took = time.monotonic() - asked
            job = ml_client.jobs.get(name)
            assert job.status == "Canceled", job.status
            assert took < 5.0, took
            assert poller.done() and poller.status() == "Succeeded"
            alive = still_running(started, timeout=1)
            assert not alive, alive

            # Nothing was committed, and nothing is left running or staged.
            assert client.get(f"/jobs/{name}/outputs/score").json()["files"] == []
            assert job.progress.mini_batches_running == 0
            assert job.progress.mini_batches_succeeded >= 2
            assert not (server.home / "blobstore" / "azureml" / name / "parts").exists()
            overview = client.get(f"/jobs/{name}/logs/job_progress_overview.txt").text
            assert "Job canceled; nothing was committed to its outputs." in overview
    finally:
        stop_server(server)


# -- a graceful stop -------------------------------------------------------------------------


def test_sigterm_lets_running_mini_batches_finish_and_the_job_resumes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    ledger = server.shared_folder() / "ledger.txt"
    try:
        with server.client() as client:
            expected = write_rows(tmp_path / "data", 30)
            data = upload_folder(client, tmp_path / "data", unique("sigterm"))
            endpoint = deploy(
                client, tmp_path, environment={"LEDGER": str(ledger), "DELAY": "0.5"}, workers=2
            )
            name = invoke(client, endpoint, data)
            wait_until(client, name, lambda j: j["progress"]["mini_batches_succeeded"] >= 4)
        started = workers_of(server)

        asked = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(60)
        took = time.monotonic() - asked
        assert took < 30, took
        alive = still_running(started, timeout=1)
        assert not alive, alive

        database = Database(f"sqlite:///{home / 'workspace.db'}")
        try:
            record = JobStore(database).get(name)
            assert record is not None
            assert record.status.value == "Running" and record.lease_owner is None
            counts = JobStore(database).counts(name)
            assert counts.running == 0 and 4 <= counts.succeeded < 30
        finally:
            database.dispose()

        server = start_server(home)
        with server.client() as client:
            done = wait_for_job(client, name)
            assert done["status"] == "Completed", done
            assert read_output(client, name)["predictions.csv"].splitlines() == expected
            overview = client.get(f"/jobs/{name}/logs/job_progress_overview.txt").text
            assert "handed back" in overview and "Resuming the job where it stopped" in overview
    finally:
        stop_server(server)
    # Running mini-batches finished before the stop: no file was scored twice.
    runs = ledger_counts(ledger)
    assert len(runs) == 30 and set(runs.values()) == {1}, runs


# -- sluice job stream on a terminal ---------------------------------------------------------


def read_terminal(command: list[str], env: dict[str, str], timeout: float) -> str:
    """Run ``command`` with a pseudo-terminal as its output; everything it wrote."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(command, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    data = os.read(primary, 65536)
                except OSError:  # the terminal closed: the command exited
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
        process.wait(10)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_job_stream_shows_a_moving_progress_bar_with_log_lines(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        with server.client() as client:
            write_rows(tmp_path / "data", 16)
            data = upload_folder(client, tmp_path / "data", unique("stream"))
            endpoint = deploy(
                client,
                tmp_path,
                environment={"LEDGER": str(server.shared_folder() / "l"), "DELAY": "0.5"},
            )
            name = invoke(client, endpoint, data)
        env = {**server.env(), "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "40"}
        text = read_terminal(
            [sys.executable, "-m", "sluiceway.cli.main", "job", "stream", "-n", name],
            env,
            timeout=120,
        )
    finally:
        stop_server(server)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    counts = [int(n) for n in re.findall(r"(\d+)/16 mini-batches", plain)]
    assert counts and counts[-1] == 16, plain
    assert len(set(counts)) >= 3, counts  # it moved
    assert "━" in plain  # the bar
    assert "mini-batches processed" in plain  # log lines under it
    assert "Status: Completed" in plain
