"""Spare workers: processes the local executor starts ahead for MLflow pools.

A pool of the built-in MLflow scorer takes a spare instead of starting a process; spares are
started again only once no pool serves a job; a scoring-script pool never takes one (its code
folder must come first on ``sys.path``); closing the executor stops them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psutil

from sluiceway.executors.base import JobContext, MiniBatchTask, ScorerKind, WorkerSpec
from sluiceway.executors.local import LocalExecutor
from sluiceway.runtime.worker import stdout_log_path


def job(folder: Path) -> JobContext:
    return JobContext(
        job_name=folder.name,
        output_dir=str(folder / "score"),
        parts_dir=str(folder / "parts"),
        log_dir=str(folder / "logs"),
    )


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_for(condition: Callable[[], bool], what: str, within: float = 30.0) -> None:
    end = time.monotonic() + within
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_job_that_follows_within_the_refill_delay_keeps_the_spares_off(
    tmp_path: Path,
) -> None:
    spec = WorkerSpec(scorer=ScorerKind.MLFLOW, model_dir=str(tmp_path / "no-model"))
    executor = LocalExecutor(spare_workers=1, spare_refill_seconds=1.0)
    try:
        executor.open_pool(spec, job(tmp_path / "job-1"), 1).close()
        second = executor.open_pool(spec, job(tmp_path / "job-2"), 1)  # within the delay
        time.sleep(1.5)
        assert len(executor.spares) == 0  # the first job's timer found a job running
        second.close()
        wait_for(lambda: len(executor.spares) == 1, "the spare to be started again", 5.0)
    finally:
        executor.close()


def test_an_mlflow_pool_takes_the_spares_and_they_come_back_once_no_job_runs(
    tmp_path: Path,
) -> None:
    # No model in the folder: init() fails, which is enough to see who answers.
    spec = WorkerSpec(scorer=ScorerKind.MLFLOW, model_dir=str(tmp_path / "no-model"))
    executor = LocalExecutor(spare_workers=2, spare_refill_seconds=3.0)
    try:
        spares = executor.spares.pids()
        assert len(spares) == 2
        first = executor.open_pool(spec, job(tmp_path / "job-1"), 2)
        assert sorted(first.pids().values()) == sorted(spares)
        assert len(executor.spares) == 0  # not started again while a job runs
        first.submit(MiniBatchTask(0, (str(tmp_path / "x.csv"),), 1, 30.0))
        (result,) = first.poll(30)
        assert result.error_type == "FileNotFoundError", result
        log = stdout_log_path(str(tmp_path / "job-1" / "logs"), result.worker).read_text()
        assert "init() failed" in log  # the spare became the job's worker, with its log

        first.close()
        assert all(gone(pid) for pid in spares)
        assert len(executor.spares) == 0  # not at once: another job may follow
        wait_for(lambda: len(executor.spares) == 2, "the spares to be started again", 10.0)
        refilled = executor.spares.pids()
        assert not set(refilled) & set(spares)
    finally:
        executor.close()
    assert all(gone(pid) for pid in refilled)
    assert len(executor.spares) == 0


def test_a_scoring_script_pool_starts_its_own_workers(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def init():\n    pass\n\ndef run(batch):\n    return batch\n")
    spec = WorkerSpec(
        scorer=ScorerKind.SCORING_SCRIPT,
        model_dir=None,
        code_dir=str(code),
        scoring_script="score.py",
    )
    executor = LocalExecutor(spare_workers=1)
    try:
        spares = executor.spares.pids()
        with executor.open_pool(spec, job(tmp_path / "job-1"), 1) as pool:
            assert set(pool.pids().values()).isdisjoint(spares)
            assert executor.spares.pids() == spares
    finally:
        executor.close()
    wait_for(lambda: all(gone(pid) for pid in spares), "the spare to stop")
