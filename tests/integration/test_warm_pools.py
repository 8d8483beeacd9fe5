"""Worker pools kept warm across jobs: by the local executor, and through a real server.

A pool a job releases is kept for the next job of an equal worker spec, whose workers then skip
``init()``; their output goes to the new job's log and folders. A changed spec (another model
version, rewritten code) gets new workers; an idle pool is stopped after the idle timeout; a
canceled job's workers are killed, never kept; a stopping server stops the pools it keeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest

from sluiceway.executors.base import (
    JobContext,
    MiniBatchResult,
    MiniBatchTask,
    ScorerKind,
    WorkerSpec,
)
from sluiceway.executors.local import LocalExecutor, LocalWorkerPool
from sluiceway.runtime.parts import part_path
from sluiceway.runtime.worker import stdout_log_path
from tests.integration.conftest import start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    read_output,
    unique,
    upload_folder,
    wait_for_job,
)

# OUTPUT is read once, at import, as many scoring scripts do in init(): a worker kept warm must
# still write into the job it runs.
SCRIPT = """\
import os
import time
from pathlib import Path

OUTPUT = Path(os.environ["AZUREML_BI_OUTPUT_PATH"])


def init():
    with open(OUTPUT / "inits.txt", "a") as file:
        file.write(f"{os.getpid()}\\n")
    print("init in", os.getpid(), flush=True)


def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = Path(path).name
        time.sleep(float(os.environ.get("DELAY", "0")))
        (OUTPUT / f"{name}.seen").write_text(str(os.getpid()))
        rows.append(f"{name} {os.getpid()}")
    return rows
"""


def make_spec(root: Path, **changes: object) -> WorkerSpec:
    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    if not (code / "score.py").exists():
        (code / "score.py").write_text(SCRIPT)
    (root / "model").mkdir(exist_ok=True)
    spec = WorkerSpec(
        scorer=ScorerKind.SCORING_SCRIPT,
        model_dir=str(root / "model"),
        code_dir=str(code),
        scoring_script="score.py",
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def make_job(folder: Path) -> JobContext:
    return JobContext(
        job_name=folder.name,
        output_dir=str(folder / "score"),
        parts_dir=str(folder / "parts"),
        log_dir=str(folder / "logs"),
    )


def run_one(pool: LocalWorkerPool, index: int, path: Path) -> MiniBatchResult:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    pool.submit(MiniBatchTask(index, (str(path),), 1, 30.0))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        results = pool.poll(0.5)
        if results:
            (result,) = results
            assert result.ok, result
            return result
    raise AssertionError("no result in 60 s")


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_for(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    end = time.monotonic() + within
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def inits(job: JobContext) -> list[int]:
    path = Path(job.output_dir) / "inits.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_a_released_pool_serves_the_next_job_of_the_same_spec(tmp_path: Path) -> None:
    executor = LocalExecutor(idle_seconds=60, max_idle_pools=2, run_dir=tmp_path / "pools")
    spec = make_spec(tmp_path)
    first, second = make_job(tmp_path / "job-1"), make_job(tmp_path / "job-2")
    try:
        pool = executor.open_pool(spec, first, 2)
        run_one(pool, 0, tmp_path / "data" / "a.txt")
        workers = pool.pids()
        wait_for(lambda: len(inits(first)) == 2, "both init() calls")
        pool.release()
        assert executor.idle_pools == 1 and not pool.closed

        again = executor.open_pool(spec, second, 2)
        assert again is pool and again.pids() == workers and executor.idle_pools == 0
        result = run_one(again, 0, tmp_path / "data" / "b.txt")

        # No init() for the second job; its rows, files and log are its own.
        assert inits(second) == [] and sorted(inits(first)) == sorted(workers.values())
        assert part_path(second.parts_dir, 0).read_text() == (f"b.txt {workers[result.worker]}\n")
        assert (Path(second.output_dir) / "b.txt.seen").exists()
        assert not (Path(first.output_dir) / "b.txt.seen").exists()
        log = stdout_log_path(second.log_dir, result.worker).read_text()
        assert "kept warm from an earlier job" in log and "init in" not in log
        assert "init in" in stdout_log_path(first.log_dir, result.worker).read_text()
        again.release()
    finally:
        executor.close()
    assert all(gone(pid) for pid in workers.values())
    assert not list((tmp_path / "pools").iterdir())  # the pool's folder went with it


def test_a_job_needing_more_workers_grows_a_warm_pool_and_one_needing_fewer_uses_fewer(
    tmp_path: Path,
) -> None:
    executor = LocalExecutor(idle_seconds=60, max_idle_pools=2)
    spec = make_spec(tmp_path)
    try:
        pool = executor.open_pool(spec, make_job(tmp_path / "job-1"), 1)
        first = pool.pids()["worker-0"]
        pool.release()
        grown = executor.open_pool(spec, make_job(tmp_path / "job-2"), 2)
        assert grown.pids()["worker-0"] == first and set(grown.pids()) == {"worker-0", "worker-1"}
        grown.release()
        small = executor.open_pool(spec, make_job(tmp_path / "job-3"), 1)
        assert small.size == 2 and small.idle() == 1  # one at a time, as the job asked
        small.submit(MiniBatchTask(0, (str(tmp_path / "none"),), 1, 30.0))
        assert small.idle() == 0
        with pytest.raises(RuntimeError, match="no idle worker"):
            small.submit(MiniBatchTask(1, (str(tmp_path / "none"),), 1, 30.0))
        small.close(kill=True)
    finally:
        executor.close()


def test_another_model_or_changed_code_gets_new_workers(tmp_path: Path) -> None:
    executor = LocalExecutor(idle_seconds=60, max_idle_pools=4)
    spec = make_spec(tmp_path)
    try:
        pool = executor.open_pool(spec, make_job(tmp_path / "job-1"), 1)
        kept = pool.pids()["worker-0"]
        pool.release()

        (tmp_path / "model-2").mkdir()
        other_model = executor.open_pool(
            replace(spec, model_dir=str(tmp_path / "model-2")), make_job(tmp_path / "job-2"), 1
        )
        assert other_model.pids()["worker-0"] != kept and executor.idle_pools == 1
        other_model.close()

        other_level = executor.open_pool(
            replace(spec, logging_level="debug"), make_job(tmp_path / "job-3"), 1
        )
        assert other_level.pids()["worker-0"] != kept
        other_level.close()

        # The same paths, but the script was rewritten in place.
        (tmp_path / "code" / "score.py").write_text(SCRIPT + "\n# version 2\n")
        rewritten = executor.open_pool(spec, make_job(tmp_path / "job-4"), 1)
        assert rewritten.pids()["worker-0"] != kept
        rewritten.close()
        assert executor.idle_pools == 1  # the first pool, still waiting for its own spec
    finally:
        executor.close()
    assert gone(kept)


def test_an_idle_pool_is_stopped_after_the_idle_timeout(tmp_path: Path) -> None:
    executor = LocalExecutor(idle_seconds=0.5, max_idle_pools=2)
    try:
        pool = executor.open_pool(make_spec(tmp_path), make_job(tmp_path / "job-1"), 1)
        worker = pool.pids()["worker-0"]
        pool.release()
        assert executor.idle_pools == 1
        wait_for(lambda: executor.idle_pools == 0 and gone(worker), "the idle timeout")
        assert pool.closed
    finally:
        executor.close()


def test_a_pool_with_work_in_flight_or_a_failed_init_is_never_kept(tmp_path: Path) -> None:
    executor = LocalExecutor(idle_seconds=60, max_idle_pools=2)
    try:
        spec = make_spec(tmp_path, environment_variables={"DELAY": "30"})
        busy = executor.open_pool(spec, make_job(tmp_path / "job-1"), 1)
        worker = busy.pids()["worker-0"]
        busy.submit(MiniBatchTask(0, (str(tmp_path / "x"),), 1, 60.0))
        busy.release()
        assert busy.closed and executor.idle_pools == 0
        wait_for(lambda: gone(worker), "the busy worker to be killed", within=5)

        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "score.py").write_text("def init():\n    raise ValueError('x')\n")
        broken_spec = replace(spec, code_dir=str(tmp_path / "broken"))
        broken = executor.open_pool(broken_spec, make_job(tmp_path / "job-2"), 1)
        broken.submit(MiniBatchTask(0, (str(tmp_path / "x"),), 1, 60.0))
        wait_for(lambda: bool(broken.poll(0.2)) or bool(broken.init_errors()), "init()")
        broken.release()
        assert broken.closed and executor.idle_pools == 0
    finally:
        executor.close()


def test_a_closed_executor_keeps_nothing(tmp_path: Path) -> None:
    executor = LocalExecutor(idle_seconds=60, max_idle_pools=2)
    pool = executor.open_pool(make_spec(tmp_path), make_job(tmp_path / "job-1"), 1)
    worker = pool.pids()["worker-0"]
    executor.close()
    pool.release()
    assert pool.closed and executor.idle_pools == 0
    wait_for(lambda: gone(worker), "the worker to exit")


# -- through a server --------------------------------------------------------------------------


def invoke(client: httpx.Client, endpoint: str, data: str) -> str:
    body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": data}})
    response = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["name"])


def scored_by(client: httpx.Client, job: str) -> set[int]:
    """The pids of the workers that scored the job's rows."""
    lines = read_output(client, job)["predictions.csv"].splitlines()
    return {int(line.split()[1]) for line in lines}


def test_jobs_of_a_deployment_reuse_its_workers_until_a_cancel_or_a_stop(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "home")
    try:
        with server.client() as client:
            files = tmp_path / "data"
            files.mkdir()
            for i in range(4):
                (files / f"f-{i}.txt").write_text(f"{i}\n")
            data = upload_folder(client, files, unique("warm"))
            endpoint = unique("warm")
            create_script_deployment(
                client,
                tmp_path,
                endpoint,
                "warm",
                script=SCRIPT,
                settings={"mini_batch_size": 1, "max_concurrency_per_instance": 2},
            )
            first = invoke(client, endpoint, data)
            assert wait_for_job(client, first)["status"] == "Completed"
            second = invoke(client, endpoint, data)
            assert wait_for_job(client, second)["status"] == "Completed"
            workers = scored_by(client, first)
            assert scored_by(client, second) <= workers
            log = client.get(f"/jobs/{second}/logs/user/stdout/worker-0.txt").text
            assert "kept warm from an earlier job" in log and "init in" not in log

            # A canceled job's workers are killed, not kept.
            slow_endpoint = unique("slow")
            (tmp_path / "slow").mkdir()
            create_script_deployment(
                client,
                tmp_path / "slow",
                slow_endpoint,
                "slow",
                script=SCRIPT,
                settings={
                    "mini_batch_size": 1,
                    "max_concurrency_per_instance": 2,
                    "environment_variables": {"DELAY": "30"},
                },
            )
            server_process = psutil.Process(server.process.pid)
            before = {p.pid for p in server_process.children(recursive=True)}
            canceled = invoke(client, slow_endpoint, data)
            wait_for(
                lambda: (
                    client.get(f"/jobs/{canceled}").json()["progress"]["mini_batches_running"] > 0
                ),
                "the slow job to run",
                within=60,
            )
            theirs = [p.pid for p in server_process.children(recursive=True)]
            theirs = [pid for pid in theirs if pid not in before]
            assert len(theirs) >= 2  # the slow job's two workers
            assert client.post(f"/jobs/{canceled}/cancel").status_code == 202
            assert wait_for_job(client, canceled, timeout=10)["status"] == "Canceled"
            wait_for(lambda: all(gone(pid) for pid in theirs), "no worker left", within=5)
            assert not any(gone(pid) for pid in workers)  # the other deployment's stay warm
    finally:
        stop_server(server)
    # The server's stop also stopped the first deployment's warm workers.
    assert all(gone(pid) for pid in workers)
