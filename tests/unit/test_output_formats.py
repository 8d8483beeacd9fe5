"""A mini-batch's part in each output format, and the join of Parquet parts into one file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pytest

from sluiceway.runtime.output_formats import (
    OutputFormat,
    OutputFormatError,
    row_writer,
)
from sluiceway.schemas.endpoints import ModelDeploymentSettings

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _part(output_format: OutputFormat, *results: object) -> bytes:
    sink = io.BytesIO()
    writer = row_writer(output_format, sink)
    for result in results:
        writer.add(result)  # type: ignore[arg-type]
    writer.close()
    return sink.getvalue()


def test_text_is_azures_lines() -> None:
    frame = pd.DataFrame({"row": [0, 1], "prediction": [0.5, 1.0], "file_name": ["a", "a"]})
    assert _part(OutputFormat.TEXT, frame, ["x y"]) == b"0 0.5 a\n1 1.0 a\nx y\n"


def test_json_lines_keep_columns_and_types() -> None:
    frame = pd.DataFrame(
        {"row": [0, 1], "prediction": [[0.25, 0.75], [1.0, 0.0]], "file_name": ["é", "b"]}
    )
    lines = _part(OutputFormat.JSONL, frame, [1, "two", None]).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"row": 0, "prediction": [0.25, 0.75], "file_name": "é"},
        {"row": 1, "prediction": [1.0, 0.0], "file_name": "b"},
        {"result": 1},
        {"result": "two"},
        {"result": None},
    ]
    assert _part(OutputFormat.JSONL, frame.iloc[:0], []) == b""


def test_parquet_part_promotes_pieces_to_one_schema() -> None:
    first = pd.DataFrame({"row": [0, 1], "weight": [1, 2]})
    second = pd.DataFrame({"row": [0], "weight": [0.5]})
    table = pq.read_table(io.BytesIO(_part(OutputFormat.PARQUET, first, second)))
    assert table.schema.field("weight").type == pa.float64()
    assert table.column("weight").to_pylist() == [1.0, 2.0, 0.5]
    assert _part(OutputFormat.PARQUET) == b""


def test_a_list_of_mixed_values_cannot_be_parquet_and_says_so() -> None:
    with pytest.raises(OutputFormatError, match="cannot be written as Parquet"):
        _part(OutputFormat.PARQUET, [1, "two", {"three": 3}])
    with pytest.raises(OutputFormatError, match="distinct column names"):
        _part(OutputFormat.PARQUET, pd.DataFrame([[1, 2]], columns=["a", "a"]))


def _parts(*tables: object) -> tuple[list[int], object]:
    blobs = []
    for table in tables:
        sink = io.BytesIO()
        if table is not None:
            pq.write_table(table, sink)
        blobs.append(sink.getvalue())

    @contextmanager
    def open_part(index: int) -> Iterator[IO[bytes]]:
        yield io.BytesIO(blobs[index])

    return list(range(len(blobs))), open_part


def test_parquet_parts_join_into_one_file_with_a_unified_schema() -> None:
    from sluiceway.scheduler.parquet_join import join_parquet

    indexes, open_part = _parts(
        pa.table({"row": [0, 1], "weight": [1, 2], "note": [None, None]}),
        None,  # a mini-batch whose result had no rows
        pa.table({"row": [0], "weight": [0.5], "note": ["x"]}),
        pa.table({"row": [7]}),  # a column missing
    )
    target = io.BytesIO()
    assert join_parquet(indexes, open_part, target) == 4  # type: ignore[arg-type]
    target.seek(0)
    parquet = pq.ParquetFile(target)
    assert parquet.num_row_groups == 3
    table = parquet.read()
    assert table.schema.field("weight").type == pa.float64()
    assert table.schema.field("note").type == pa.string()
    assert table.to_pydict() == {
        "row": [0, 1, 0, 7],
        "weight": [1.0, 2.0, 0.5, None],
        "note": [None, None, "x", None],
    }


def test_parquet_parts_that_disagree_refuse_the_join() -> None:
    from sluiceway.scheduler.parquet_join import PartsDisagree, join_parquet

    indexes, open_part = _parts(pa.table({"prediction": [1]}), pa.table({"prediction": ["a"]}))
    with pytest.raises(PartsDisagree, match="prediction"):
        join_parquet(indexes, open_part, io.BytesIO())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"output_format": "csv"}, "settings.output_format 'csv' is not accepted; accepted: text"),
        ({"include_input_columns": True}, "needs settings.output_format parquet or jsonl"),
        (
            {"output_action": "summary_only", "output_format": "parquet"},
            "apply to output_action append_row",
        ),
    ],
)
def test_settings_refuse_what_cannot_work(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelDeploymentSettings.model_validate(settings)


@pytest.mark.parametrize(
    ("output_format", "file_name"),
    [
        ("text", "predictions.csv"),
        ("parquet", "predictions.parquet"),
        ("jsonl", "predictions.jsonl"),
    ],
)
def test_the_default_file_name_follows_the_format(output_format: str, file_name: str) -> None:
    settings = ModelDeploymentSettings.model_validate({"output_format": output_format})
    assert settings.effective_output_file_name == file_name
    named = ModelDeploymentSettings.model_validate(
        {"output_format": output_format, "output_file_name": "mine.out"}
    )
    assert named.effective_output_file_name == "mine.out"


def test_json_lines_of_plain_columns_read_back_exactly() -> None:
    from sluiceway.runtime.rows import json_lines

    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(3)
    floats = np.concatenate([rng.random(50), 10.0 ** rng.integers(-300, 300, 50), [0.0, 2.0]])
    n = len(floats)
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "flag": np.arange(n) % 2 == 0,
            "prediction": floats,
            "file_name": pd.Series(['a "b" \\ c', "é\u2028", "plain"] * (n // 3) + ["x"] * (n % 3)),
            "é key": np.zeros(n, dtype="uint8"),
        }
    )
    fast = json_lines(frame)
    assert fast is not None
    # JSON Lines ends lines with "\n" only (str.splitlines() would split at U+2028 too).
    rows = [json.loads(line) for line in fast.decode().removesuffix("\n").split("\n")]
    assert rows == frame.to_dict(orient="records")  # floats exactly, strings unescaped
    assert fast.decode().startswith('{"row":0,"flag":true,"prediction":')
    assert _part(OutputFormat.JSONL, frame) == fast

    # Missing values, nested values, control characters: pandas writes them.
    for other in (
        frame.assign(prediction=np.nan),
        frame.assign(prediction=[[1, 2]] * n),
        frame.assign(file_name="bell\x07"),
        frame.assign(prediction=np.inf),
    ):
        assert json_lines(other) is None
        assert _part(OutputFormat.JSONL, other).count(b"\n") == n


def test_a_worker_that_sends_its_rows_gives_the_part_in_the_jobs_format() -> None:
    """The Ray actor's path: ``run_task`` writes the part into a buffer sent to the server."""
    import types

    from sluiceway.executors.base import JobContext, MiniBatchTask
    from sluiceway.runtime.scoring import Scorer
    from sluiceway.runtime.worker import run_task

    def run(files: list[str]) -> object:
        return pd.DataFrame({"file_name": files, "size": [len(f) for f in files]})

    scorer = Scorer(module=types.ModuleType("script"), run=run)
    task = MiniBatchTask(index=3, files=("a.csv", "bb.csv"), attempt=1, timeout=30)
    for output_format in OutputFormat:
        job = JobContext(
            job_name="j",
            output_dir="/nonexistent",
            parts_dir="/nonexistent",  # not written: the rows go to the buffer
            log_dir="/nonexistent",
            output_format=output_format,
        )
        sink = io.BytesIO()
        result = run_task(scorer, task, job, "worker-0", sink)
        assert result.ok and result.items_succeeded == 2 and result.part_path is None
        assert sink.getvalue() == _part(output_format, run(list(task.files)))
        if output_format is OutputFormat.PARQUET:
            table = pq.read_table(io.BytesIO(sink.getvalue()))
            assert table.to_pydict() == {"file_name": ["a.csv", "bb.csv"], "size": [5, 6]}
