"""The ray executor's pool on a real Ray cluster (the test script starts one: a head and one
more node). Actors read the inputs from the datastore themselves and send rows back; a killed
actor or a hanging mini-batch costs that mini-batch one attempt; closing leaves no actor."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from sluiceway.executors.base import (
    FailureKind,
    JobContext,
    JobData,
    MiniBatchResult,
    MiniBatchTask,
    ScorerKind,
    WorkerSpec,
)
from sluiceway.storage.datastores.local import LocalDatastore
from sluiceway.storage.locations import Location
from tests.conftest import service_missing

SCRIPT = """\
import os
import time
from pathlib import Path


def init():
    print("init in", os.getpid())


def run(mini_batch):
    rows = []
    for path in mini_batch:
        name = Path(path).name
        if name.startswith("sleep"):
            time.sleep(60)
        rows += [f"{name} {line}" for line in Path(path).read_text().splitlines()]
    return rows
"""


def ray_address() -> str:
    address = os.environ.get("SLUICEWAY_TEST_RAY_ADDRESS")
    if not address:
        service_missing("A Ray cluster (SLUICEWAY_TEST_RAY_ADDRESS)")
    assert address is not None
    return address


@pytest.fixture(scope="module")
def executor() -> Iterator[Any]:
    from sluiceway.executors.ray import RayExecutor

    yield RayExecutor("test-cluster", ray_address(), grace_period=1.0)


def setup(root: Path, files: dict[str, str]) -> tuple[WorkerSpec, JobContext, JobData]:
    store = LocalDatastore(root / "store")
    for name, text in files.items():
        (store.root / "in").mkdir(parents=True, exist_ok=True)
        (store.root / "in" / name).write_text(text)
    (store.root / "code").mkdir(parents=True)
    (store.root / "code" / "score.py").write_text(SCRIPT)
    (store.root / "model").mkdir()
    spec = WorkerSpec(ScorerKind.SCORING_SCRIPT, None, None, "score.py")
    job = JobContext(
        job_name=root.name,
        output_dir=str(root / "job" / "out"),
        parts_dir=str(root / "job" / "parts"),
        log_dir=str(root / "job" / "logs"),
    )
    data = JobData(
        input=Location("store", "in", store),
        model=Location("store", "model", store),
        code=Location("store", "code", store),
    )
    return spec, job, data


def collect(pool: Any, count: int, within: float = 60.0) -> list[MiniBatchResult]:
    results: list[MiniBatchResult] = []
    end = time.monotonic() + within
    while len(results) < count and time.monotonic() < end:
        results += pool.poll(1.0)
    assert len(results) == count, results
    return results


def task(index: int, *names: str, timeout: float = 30.0, attempt: int = 1) -> MiniBatchTask:
    return MiniBatchTask(index, (), attempt, timeout, names=names)


def alive_actors(ids: list[str]) -> list[str]:
    """The actors among ``ids`` that Ray's actor table (the GCS) says are not dead."""
    from ray._private import state

    table = state.actors()
    return [i for i in ids if table.get(i, {}).get("State") not in (None, "DEAD")]


def test_actors_score_kill_timeout_and_close(executor: Any, tmp_path: Path) -> None:
    files = {f"f{i}.csv": f"a{i}\nb{i}\n" for i in range(4)}
    files["sleep.csv"] = "never\n"
    spec, job, data = setup(tmp_path, files)
    pool = executor.open_pool(spec, job, 2, data)
    try:
        # Hints: an actor fetches the next mini-batch's files while it scores one.
        pool.prefetch(task(1, "f2.csv"))
        pool.prefetch(task(2, "f3.csv"))
        pool.submit(task(0, "f0.csv", "f1.csv"))
        pool.submit(task(1, "f2.csv"))
        results = sorted(collect(pool, 2), key=lambda r: r.index)
        assert all(r.ok for r in results), results
        rows = Path(results[0].part_path or "").read_text()
        assert rows == "f0.csv a0\nf0.csv b0\nf1.csv a1\nf1.csv b1\n"
        logs = Path(job.log_dir) / "user" / "stdout"
        assert "init in" in (logs / "worker-0.txt").read_text()

        # An actor SIGKILLed mid-batch (found with psutil): that mini-batch fails, the
        # actor is replaced, and the retry succeeds.
        pool.submit(task(2, "sleep.csv", timeout=60))
        time.sleep(1.0)
        pids = set(pool.pids().values())
        busy = [
            p
            for p in psutil.process_iter(["pid", "cmdline"])
            if p.info["pid"] in pids and "ScoringActor.run" in " ".join(p.info["cmdline"] or [])
        ]
        assert len(busy) == 1, busy
        os.kill(busy[0].info["pid"], signal.SIGKILL)
        (died,) = collect(pool, 1)
        assert died.failure is FailureKind.WORKER_DIED, died
        pool.submit(task(2, "f3.csv", attempt=2))
        (again,) = collect(pool, 1)
        assert again.ok and again.index == 2

        # A hanging mini-batch times out; its actor is killed and replaced.
        pool.submit(task(3, "sleep.csv", timeout=2))
        (late,) = collect(pool, 1)
        assert late.failure is FailureKind.TIMEOUT, late
        pool.submit(task(3, "f3.csv", attempt=2))
        (ok,) = collect(pool, 1)
        assert ok.ok

        # Cancel: every actor is gone, as Ray's state API says.
        pool.submit(task(4, "sleep.csv", timeout=60))
        ids = pool.actor_ids()
        assert alive_actors(ids)
    finally:
        pool.close(kill=True)
    end = time.monotonic() + 10
    while alive_actors(ids) and time.monotonic() < end:
        time.sleep(0.5)
    assert not alive_actors(ids)
