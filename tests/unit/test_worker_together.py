"""A worker scores several waiting mini-batches of small CSV files in one go when its scorer
can (the built-in MLflow scorer with a scikit-learn model): one read and one ``predict`` for
all of them, each mini-batch still getting its own part file and result, with the rows scoring
it alone gives; and if scoring them together fails, each is scored again alone, so an error is
its own mini-batch's only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sluiceway.executors.base import FailureKind, JobContext, MiniBatchTask
from sluiceway.runtime import mlflow_scorer
from sluiceway.runtime.mlflow_model import SklearnModel
from sluiceway.runtime.output_formats import OutputFormat
from sluiceway.runtime.parts import part_path
from sluiceway.runtime.scoring import Scorer, builtin_mlflow_scorer
from sluiceway.runtime.worker import run_task, run_tasks
from tests.unit.test_mlflow_slices import Doubler


def mlflow_scorer_with(model: Any, monkeypatch: pytest.MonkeyPatch) -> Scorer:
    """The built-in MLflow scorer as a worker loads it, with ``model`` as if init() loaded it."""
    monkeypatch.setattr(mlflow_scorer, "_model", model)
    return builtin_mlflow_scorer()


def write_csv(folder: Path, name: str, frame: pd.DataFrame) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return str(path)


def mini_batches(folder: Path) -> list[MiniBatchTask]:
    """Four mini-batches of small files, one of them empty and one holding an empty file."""
    tasks = []
    for index, sizes in enumerate([[1, 2], [3], [0, 1, 1], [2, 0]]):
        files = tuple(
            write_csv(
                folder,
                f"f-{index}-{n}.csv",
                pd.DataFrame({"a": range(10 * n, 10 * n + rows), "b": ["x"] * rows}),
            )
            for n, rows in enumerate(sizes)
        )
        tasks.append(MiniBatchTask(index, files, 1, 30.0))
    return tasks


def job_in(root: Path, output_format: OutputFormat = OutputFormat.TEXT) -> JobContext:
    return JobContext(
        job_name=root.name,
        output_dir=str(root / "score"),
        parts_dir=str(root / "parts"),
        log_dir=str(root / "logs"),
        output_format=output_format,
    )


@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_mini_batches_scored_together_get_the_parts_and_counts_of_each_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output_format: OutputFormat
) -> None:
    tasks = mini_batches(tmp_path / "data")
    model = SklearnModel(Doubler(), "predict", None, lambda: pytest.fail("no MLflow needed"))
    scorer = mlflow_scorer_with(model, monkeypatch)
    assert all(scorer.joinable(task.files) is not None for task in tasks)

    together_job = job_in(tmp_path / "together", output_format)
    together = run_tasks(scorer, tasks, together_job, "worker-0")
    assert model.estimator.calls == [10]  # one predict for the 10 rows of the 4 mini-batches

    alone_job = job_in(tmp_path / "alone", output_format)
    alone = [run_task(scorer, task, alone_job, "worker-0") for task in tasks]

    assert [(r.index, r.ok, r.items_succeeded) for r in together] == [
        (r.index, r.ok, r.items_succeeded) for r in alone
    ]
    assert [r.items_succeeded for r in together] == [3, 3, 2, 2]
    for task in tasks:
        joined = part_path(together_job.parts_dir, task.index).read_bytes()
        assert joined == part_path(alone_job.parts_dir, task.index).read_bytes()
    assert not [p for p in Path(together_job.parts_dir).iterdir() if p.suffix == ".tmp"]


def test_a_failure_scored_together_is_scored_again_alone_and_fails_only_its_mini_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = mini_batches(tmp_path / "data")
    # Other columns: read and scored apart, and the model cannot score it.
    odd = write_csv(tmp_path / "data", "odd.csv", pd.DataFrame({"c": [1]}))
    tasks[2] = MiniBatchTask(2, (*tasks[2].files, odd), 1, 30.0)
    estimator = Doubler()
    scorer = mlflow_scorer_with(
        SklearnModel(estimator, "predict", None, lambda: pytest.fail("no MLflow")), monkeypatch
    )
    job = job_in(tmp_path / "job")

    results = run_tasks(scorer, tasks, job, "worker-0")

    assert [(r.index, r.ok) for r in results] == [(0, True), (1, True), (2, False), (3, True)]
    failed = results[2]
    assert (failed.failure, failed.error_type) == (FailureKind.RUN_ERROR, "KeyError")
    assert failed.part_path is None and not part_path(job.parts_dir, 2).exists()
    assert part_path(job.parts_dir, 1).read_text() == (
        "0 0 f-1-0.csv\n1 2 f-1-0.csv\n2 4 f-1-0.csv\n"
    )
    assert not [p for p in Path(job.parts_dir).iterdir() if p.suffix == ".tmp"]


def test_only_small_csv_files_of_a_row_by_row_model_are_scored_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write_csv(tmp_path, "small.csv", pd.DataFrame({"a": [1]}))
    big = write_csv(tmp_path, "big.csv", pd.DataFrame({"a": range(20_000)}))
    table = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(table)
    scorer = mlflow_scorer_with(
        SklearnModel(Doubler(), "predict", None, lambda: pytest.fail("no MLflow")), monkeypatch
    )
    assert scorer.joinable([small]) == Path(small).stat().st_size
    assert scorer.joinable([small, big]) is None  # over 64 KiB: read on its own
    assert scorer.joinable([str(table)]) is None
    # A pyfunc model may look at all the rows of a call: never given several mini-batches.
    assert mlflow_scorer_with(Doubler(), monkeypatch).joinable([small]) is None
    script = Scorer(module=mlflow_scorer, run=mlflow_scorer.run)
    assert script.joinable([small]) is None
    with pytest.raises(ValueError, match="one mini-batch at a time"):
        script.score_together([[small], [small]])


def test_a_file_in_two_mini_batches_is_not_scored_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path, "a.csv", pd.DataFrame({"a": [1]}))
    mlflow_scorer_with(
        SklearnModel(Doubler(), "predict", None, lambda: pytest.fail("no MLflow")), monkeypatch
    )
    with pytest.raises(ValueError, match="is in two of the mini-batches"):
        list(mlflow_scorer.run_chunks_together([[path], [path]]))


def test_a_part_that_cannot_be_made_durable_fails_its_mini_batch(tmp_path: Path) -> None:
    from sluiceway.executors.base import MiniBatchResult
    from sluiceway.runtime.worker import _durable

    kept = tmp_path / "parts" / "000001.part"
    kept.parent.mkdir()
    kept.write_text("rows\n")
    ok = MiniBatchResult(1, 1, "worker-0", True, items_succeeded=1, part_path=str(kept))
    assert _durable([ok]) == [ok]

    lost = tmp_path / "gone" / "000002.part"
    answer = _durable([MiniBatchResult(2, 1, "worker-0", True, 3, part_path=str(lost))])
    assert [(r.ok, r.failure, r.error_type, r.part_path) for r in answer] == [
        (False, FailureKind.RUN_ERROR, "FileNotFoundError", None)
    ]
