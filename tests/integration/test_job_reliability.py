"""Failed files, error details, rerun, cancel and logs, against a real server and workers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from sluiceway import MLClient
from sluiceway.clock import utcnow
from sluiceway.errors import ConflictError, ResourceNotFoundError
from sluiceway.executors.threads import machine_cores, threads_per_worker
from sluiceway.schemas.jobs import JobStatus
from sluiceway.store.db import Database
from sluiceway.store.jobs import JobStore
from sluiceway.store.tables import JobRow
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

# Fails on the files named in $FAIL_FILES while the flag file $FAIL_FLAG exists; logs at every
# level, so the worker's stdout shows which levels the job's logging_level lets through.
FLAKY_SCRIPT = """\
import logging
import os

logger = logging.getLogger("flaky")

def init():
    logger.info("init done")

def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = os.path.basename(path)
        logger.debug("debug line for %s", name)
        logger.info("info line for %s", name)
        logger.warning("warning line for %s", name)
        if name in os.environ["FAIL_FILES"].split(",") and os.path.exists(os.environ["FAIL_FLAG"]):
            raise ValueError(f"cannot score {name}")
        with open(path) as fh:
            rows.append(f"{name} {fh.read().strip()}")
    return rows
"""


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def ml_client(server: RunningServer) -> Iterator[MLClient]:
    with MLClient(endpoint=server.url, token=server.token) as client:
        yield client


def flaky_endpoint(
    client: httpx.Client, tmp: Path, fail: list[str], flags: Path | None = None, **settings: Any
) -> tuple[str, str, Path]:
    """An endpoint whose script fails on ``fail`` while the returned flag file exists (in
    ``flags``, a folder its workers can see, when files fail), and an uploaded folder of 8
    numbered files; returns the endpoint, the data URI and the flag."""
    flag = (flags or tmp) / "fail-flag"
    flag.write_text("fail\n")
    endpoint = unique("flaky")
    create_script_deployment(
        client,
        tmp,
        endpoint,
        "flaky",
        script=FLAKY_SCRIPT,
        settings={
            "max_concurrency_per_instance": 1,
            "environment_variables": {"FAIL_FILES": ",".join(fail), "FAIL_FLAG": str(flag)},
            **settings,
        },
    )
    write_numbered_files(tmp / "data", 8)
    data = upload_folder(client, tmp / "data", f"data/{endpoint}")
    return endpoint, data, flag


def invoke(client: httpx.Client, endpoint: str, data: str, **props: Any) -> str:
    body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": data}}, **props)
    response = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert response.status_code == 201, response.text
    name: str = response.json()["name"]
    return name


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_failed_files_are_listed_beside_the_output_and_can_be_rerun(
    client: httpx.Client, ml_client: MLClient, server: RunningServer, tmp_path: Path
) -> None:
    endpoint, data, flag = flaky_endpoint(
        client,
        tmp_path,
        ["file-03.txt"],
        server.shared_folder(),
        mini_batch_size=2,
        retry_settings={"max_retries": 1, "timeout": 30},
    )
    name = invoke(client, endpoint, data)
    done = wait_for_job(client, name)

    # The job completes without the failed mini-batch (files 02 and 03) and says so.
    assert done["status"] == "Completed", done
    assert done["error"] is None
    assert done["progress"]["mini_batches_failed"] == 1
    assert done["progress"]["items_failed"] == 2
    assert done["progress"]["mini_batches_retried"] == 1
    assert done["status_detail"].startswith("2 of 8 files failed after their last retry")
    assert f"azureml/{name}/score/errors.jsonl" in done["status_detail"]
    assert done["status_detail"].endswith("First error: ValueError: cannot score file-03.txt")
    rows = read_output(client, name)
    assert [line.split(" ")[0] for line in rows["predictions.csv"].splitlines()] == [
        f"file-{i:02d}.txt" for i in (0, 1, 4, 5, 6, 7)
    ]
    errors = jsonl(rows["errors.jsonl"])
    assert [e["path"] for e in errors] == ["file-02.txt", "file-03.txt"]
    for error in errors:
        assert error["error_type"] == "ValueError"
        assert error["message"] == "cannot score file-03.txt"
        assert error["attempts"] == 2
        assert error["failure"] == "run_error"
        assert error["mini_batch"] == 1
        assert error["uri"] == f"{data}{error['path']}"
        assert 'raise ValueError(f"cannot score {name}")' in error["traceback"]
        assert "score.py" in error["traceback"]
    assert jsonl(client.get(f"/jobs/{name}/logs/errors.jsonl").text) == errors

    logs = {f["path"] for f in client.get(f"/jobs/{name}/logs").json()}
    assert {
        "readme.txt",
        "job_progress_overview.txt",
        "errors.jsonl",
        "sys/master_role.txt",
        "user/error.txt",
        "user/error/worker-0.txt",
        "user/stdout/worker-0.txt",
        f"sys/node/{socket.gethostname()}/worker-0.txt",
    } <= logs
    summary = client.get(f"/jobs/{name}/logs/user/error.txt").text.splitlines()
    assert len(summary) == 2 and all("ValueError: cannot score file-03.txt" in s for s in summary)
    record = client.get(f"/jobs/{name}/logs/sys/master_role.txt").text
    assert "Mini-batch 0 sent (attempt 1)" in record and "Claimed by scheduler" in record

    # Rerun: exactly the failed files, the same deployment, outputs in the new job's folder.
    flag.unlink()
    rerun = ml_client.jobs.rerun_failed(name)
    assert rerun.name != name
    assert (rerun.endpoint_name, rerun.deployment_name) == (endpoint, "flaky")
    assert rerun.properties["rerunOf"] == name
    assert rerun.outputs["score"].path.endswith(f"/azureml/{rerun.name}/score/")
    again = wait_for_job(client, rerun.name)
    assert again["status"] == "Completed", again
    assert again["progress"]["mini_batches_total"] == 1
    assert again["status_detail"] is None
    assert read_output(client, rerun.name)["predictions.csv"].splitlines() == [
        "file-02.txt value-2",
        "file-03.txt value-3",
    ]
    with pytest.raises(ConflictError, match="No file failed"):
        ml_client.jobs.rerun_failed(rerun.name)


THREADS_SCRIPT = """\
import os

def init():
    pass

def run(mini_batch):
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return [" ".join(f"{n}={os.environ.get(n)}" for n in names) for _ in mini_batch]
"""


def test_workers_share_the_cores_and_a_deployment_sets_its_own_thread_counts(
    client: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("threads")
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "threads",
        script=THREADS_SCRIPT,
        settings={
            "max_concurrency_per_instance": 2,
            "environment_variables": {"OPENBLAS_NUM_THREADS": "5"},
        },
    )
    write_numbered_files(tmp_path / "data", 2)
    data = upload_folder(client, tmp_path / "data", f"data/{endpoint}")

    job = wait_for_job(client, invoke(client, endpoint, data))

    assert job["status"] == "Completed", job
    share = threads_per_worker(2, machine_cores())  # the deployment's two workers
    lines = next(iter(read_output(client, job["name"]).values())).splitlines()
    assert lines == [f"OMP_NUM_THREADS={share} OPENBLAS_NUM_THREADS=5 MKL_NUM_THREADS={share}"] * 2


def test_rerun_failed_of_unknown_and_running_jobs(client: httpx.Client) -> None:
    response = client.post(f"/jobs/{unique('nojob')}/rerun-failed")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


def test_past_the_error_threshold_the_job_fails_with_the_scripts_traceback(
    client: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    endpoint, data, _ = flaky_endpoint(
        client,
        tmp_path,
        ["file-01.txt", "file-02.txt"],
        server.shared_folder(),
        mini_batch_size=1,
        error_threshold=1,
        retry_settings={"max_retries": 0, "timeout": 30},
    )
    name = invoke(client, endpoint, data)
    done = wait_for_job(client, name)
    assert done["status"] == "Failed", done
    message = done["error"]["message"]
    assert message.startswith("2 files failed, which is more than error_threshold (1)")
    assert "First error: ValueError: cannot score file-01.txt" in message
    assert done["status_detail"] == message
    first = done["error"]["details"][0]
    assert (first["type"], first["mini_batch"], first["files"]) == (
        "ValueError",
        1,
        ["file-01.txt"],
    )
    assert "Traceback (most recent call last)" in first["traceback"]
    assert 'raise ValueError(f"cannot score {name}")' in first["traceback"]
    # The job stopped scheduling: not every mini-batch ran, and nothing running is left.
    progress = done["progress"]
    assert progress["mini_batches_failed"] == 2
    assert progress["mini_batches_running"] == 0
    assert progress["mini_batches_succeeded"] < 6
    listing = client.get(f"/jobs/{name}/outputs/score").json()
    assert [f["path"] for f in listing["files"]] == ["errors.jsonl"]  # no predictions.csv
    overview = client.get(f"/jobs/{name}/logs/job_progress_overview.txt").text
    assert "Job failed: 2 files failed" in overview


def test_scripts_log_at_the_jobs_logging_level(client: httpx.Client, tmp_path: Path) -> None:
    endpoint, data, flag = flaky_endpoint(client, tmp_path, [], mini_batch_size=8)
    flag.unlink()
    quiet = invoke(client, endpoint, data, LoggingLevel="warning")
    chatty = invoke(client, endpoint, data, LoggingLevel="debug")
    for name, seen, unseen in (
        (quiet, ["warning line for file-00.txt"], ["info line", "debug line"]),
        (chatty, ["debug line for file-07.txt", "info line", "warning line"], []),
    ):
        assert wait_for_job(client, name)["status"] == "Completed"
        stdout = client.get(f"/jobs/{name}/logs/user/stdout/worker-0.txt").text
        for text in seen:
            assert text in stdout, stdout
        for text in unseen:
            assert text not in stdout, stdout


def test_logs_are_read_from_an_offset_and_by_the_cli(
    client: httpx.Client, server: RunningServer, ml_client: MLClient, tmp_path: Path
) -> None:
    endpoint, data, flag = flaky_endpoint(client, tmp_path, [], mini_batch_size=4)
    flag.unlink()
    name = invoke(client, endpoint, data)
    assert wait_for_job(client, name)["status"] == "Completed"
    whole = client.get(f"/jobs/{name}/logs/job_progress_overview.txt").content
    tail = client.get(f"/jobs/{name}/logs/job_progress_overview.txt", params={"offset": 10})
    assert tail.content == whole[10:]
    past = client.get(f"/jobs/{name}/logs/job_progress_overview.txt", params={"offset": 10**9})
    assert past.status_code == 200 and past.content == b""
    bad = client.get(f"/jobs/{name}/logs/job_progress_overview.txt", params={"offset": -1})
    assert bad.status_code == 400 and "offset -1" in bad.json()["error"]["message"]

    assert ml_client.jobs.read_log(name) == whole.decode()
    assert list(ml_client.jobs.follow_log(name)) == whole.decode().splitlines()
    assert "user/error.txt" not in {f["path"] for f in ml_client.jobs.list_logs(name)}

    sluice = [sys.executable, "-m", "sluiceway.cli.main"]
    shown = subprocess.run(
        [*sluice, "job", "logs", "-n", name],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == whole.decode()
    followed = subprocess.run(
        [*sluice, "job", "logs", "-n", name, "--follow", "--path", "user/stdout/worker-0.txt"],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "info line for file-07.txt" in followed.stdout
    listed = subprocess.run(
        [*sluice, "job", "logs", "-n", name, "--list"],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "job_progress_overview.txt" in {f["path"] for f in json.loads(listed.stdout)}
    missing = subprocess.run(
        [*sluice, "job", "logs", "-n", name, "--path", "nope.txt"],
        env=server.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "nope.txt" in missing.stderr


# Writes one file per input file into AZUREML_BI_OUTPUT_PATH, after $DELAY seconds.
SUMMARY_SCRIPT = """\
import os
import time

def init():
    pass

def run(mini_batch):
    out = os.environ["AZUREML_BI_OUTPUT_PATH"]
    for path in mini_batch:
        time.sleep(float(os.environ.get("DELAY", "0")))
        name = os.path.basename(path)
        with open(os.path.join(out, name + ".summary"), "w") as fh:
            fh.write(name)
    return mini_batch
"""


def test_summary_only_files_are_committed_when_the_job_completes(
    client: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    endpoint = unique("summary")
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "summary",
        script=SUMMARY_SCRIPT,
        settings={"output_action": "summary_only", "mini_batch_size": 2},
    )
    write_numbered_files(tmp_path / "data", 4)
    data = upload_folder(client, tmp_path / "data", f"data/{endpoint}")
    name = invoke(client, endpoint, data)
    assert wait_for_job(client, name)["status"] == "Completed"
    files = read_output(client, name)
    assert files == {f"file-{i:02d}.txt.summary": f"file-{i:02d}.txt" for i in range(4)}
    # What was staged in the job's folder is gone once the job has ended.
    folder = server.home / "blobstore" / "azureml" / name
    assert not (folder / "staging").exists() and not (folder / "parts").exists()
    assert (folder / "logs" / "job_progress_overview.txt").is_file()


def test_a_commit_interrupted_by_a_crash_is_finished_by_the_next_scheduler(
    client: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    """A scheduler that dies while committing leaves the job Finalizing with a commit record;
    the next one (here: this server, which sees the owner's process is gone) finishes it."""
    endpoint, data, flag = flaky_endpoint(client, tmp_path, [], mini_batch_size=3)
    flag.unlink()
    first = invoke(client, endpoint, data)
    second = invoke(client, endpoint, data)
    for name in (first, second):
        assert wait_for_job(client, name)["status"] == "Completed"
    output = {n: server.home / "blobstore" / "azureml" / n / "score" for n in (first, second)}
    expected = {n: (output[n] / "predictions.csv").read_text() for n in (first, second)}
    # The first crashed after writing the output, the second while writing it: its parts
    # (removed once a job ends) are still there, and a temporary file beside the output.
    (output[second] / "predictions.csv").unlink()
    stale = output[second] / ".predictions.csv.0123abcd.tmp"
    stale.write_text("half a file")
    parts = server.home / "blobstore" / "azureml" / second / "parts"
    parts.mkdir()
    lines = expected[second].splitlines(keepends=True)
    for index in range(0, len(lines), 3):
        (parts / f"{index // 3:06d}.part").write_text("".join(lines[index : index + 3]))

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = f"{socket.gethostname()}:{dead.pid}:crashed"
    database = Database(f"sqlite:///{server.home / 'workspace.db'}")
    try:
        store = JobStore(database)
        for name in (first, second):
            with database.session() as s:
                s.execute(
                    update(JobRow)
                    .where(JobRow.name == name)
                    .values(
                        status=JobStatus.FINALIZING.value,
                        lease_owner=gone,
                        lease_expires_at=utcnow().replace(year=2999),
                        ended_at=None,
                    )
                )
        for name in (first, second):
            done = wait_for_job(client, name, timeout=60)
            assert done["status"] == "Completed", done
            assert (output[name] / "predictions.csv").read_text() == expected[name]
            record = store.get(name)
            assert record is not None and record.lease_owner is None
    finally:
        database.dispose()
    assert not stale.exists() and not parts.exists()
    overview = client.get(f"/jobs/{second}/logs/job_progress_overview.txt").text
    assert "Finishing the commit of the outputs that a restart interrupted." in overview


@pytest.fixture
def idle_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose scheduler is off: jobs stay queued."""
    running = start_server(tmp_path / "home", extra_env={"SLUICEWAY_SCHEDULER_ENABLED": "false"})
    yield running
    stop_server(running)


def test_a_queued_job_is_canceled_at_once(idle_server: RunningServer, tmp_path: Path) -> None:
    with (
        idle_server.client() as client,
        MLClient(endpoint=idle_server.url, token=idle_server.token) as ml_client,
    ):
        endpoint, data, _ = flaky_endpoint(client, tmp_path, [])
        name = invoke(client, endpoint, data)
        assert client.get(f"/jobs/{name}").json()["status"] == "Queued"

        response = client.post(f"/jobs/{name}/cancel")
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] == "Canceled"
        assert job["end_time"] is not None
        assert job["properties"]["provisioningState"] == "Canceled"
        assert "nothing was committed" in job["status_detail"]
        # Again: nothing changes. A canceled job has no failed files to rerun.
        assert client.post(f"/jobs/{name}/cancel").json()["status"] == "Canceled"
        with pytest.raises(ConflictError, match="No file failed"):
            ml_client.jobs.rerun_failed(name)

        other = invoke(client, endpoint, data)
        poller = ml_client.jobs.begin_cancel(other)
        assert poller.done() and poller.status() == "Succeeded"
        assert poller.result() is None
        assert ml_client.jobs.get(other).status == "Canceled"

        with pytest.raises(ResourceNotFoundError):
            ml_client.jobs.begin_cancel(unique("nojob"))

        cli = subprocess.run(
            [sys.executable, "-m", "sluiceway.cli.main", "job", "cancel", "-n", name],
            env=idle_server.env(),
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(cli.stdout)["status"] == "Canceled"


def test_an_ended_job_cannot_be_canceled(client: httpx.Client, tmp_path: Path) -> None:
    endpoint, data, flag = flaky_endpoint(client, tmp_path, [], mini_batch_size=8)
    flag.unlink()
    name = invoke(client, endpoint, data)
    assert wait_for_job(client, name)["status"] == "Completed"
    response = client.post(f"/jobs/{name}/cancel")
    assert response.status_code == 409
    assert "already ended Completed" in response.json()["error"]["message"]
    assert client.get(f"/jobs/{name}").json()["status"] == "Completed"


def test_rerun_of_a_job_that_has_not_ended(idle_server: RunningServer, tmp_path: Path) -> None:
    with idle_server.client() as client:
        endpoint, data, _ = flaky_endpoint(client, tmp_path, [])
        name = invoke(client, endpoint, data)
        response = client.post(f"/jobs/{name}/rerun-failed")
        assert response.status_code == 409
        assert "once it has ended" in response.json()["error"]["message"]
        assert len(client.get("/jobs").json()) == 1  # nothing was created
