"""The MLflow scorer reads a CSV file in slices, so a big file costs one slice's memory, and
scores the small files of a mini-batch together for a scikit-learn model; the rows it returns
are those of scoring each whole file on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sluiceway.runtime import mlflow_scorer
from sluiceway.runtime.mlflow_model import SklearnModel


class Doubler:
    """A model whose prediction for a row depends on that row only, as predict() must."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, data: pd.DataFrame) -> Any:
        self.calls.append(len(data))
        return np.asarray(data["a"] * 2)


def test_slices_give_the_rows_of_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, empty = tmp_path / "one.csv", tmp_path / "two.csv", tmp_path / "empty.csv"
    pd.DataFrame({"a": range(25), "b": ["x"] * 25}).to_csv(first, index=False)
    pd.DataFrame({"a": range(3)}).to_parquet(tmp_path / "three.parquet")
    pd.DataFrame({"a": [5, 6]}).to_csv(second, index=False)
    empty.write_text("a,b\n")
    files = [str(first), str(empty), str(tmp_path / "three.parquet"), str(second)]
    model = Doubler()
    monkeypatch.setattr(mlflow_scorer, "_model", model)

    monkeypatch.setattr(mlflow_scorer, "ROWS_PER_PREDICT", 1000)
    whole = mlflow_scorer.run(files)
    monkeypatch.setattr(mlflow_scorer, "ROWS_PER_PREDICT", 7)
    model.calls.clear()
    sliced = mlflow_scorer.run(files)

    assert model.calls == [7, 7, 7, 4, 3, 2]
    pd.testing.assert_frame_equal(sliced, whole)
    assert list(sliced["row"][:25]) == list(range(25))
    assert list(sliced["prediction"][:25]) == [2 * i for i in range(25)]
    assert list(sliced["file_name"].unique()) == ["one.csv", "three.parquet", "two.csv"]


def test_a_scikit_learn_model_scores_the_small_files_of_a_mini_batch_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    paths = []
    for i, rows in enumerate([1, 2, 0, 3, 4]):
        path = folder / f"f-{i}.csv"
        pd.DataFrame({"a": range(10 * i, 10 * i + rows), "b": ["x"] * rows}).to_csv(
            path, index=False
        )
        paths.append(str(path))
    other = folder / "other.csv"  # other columns: scored on its own
    pd.DataFrame({"a": [7, 8]}).to_csv(other, index=False)
    paths.insert(2, str(other))
    estimator = Doubler()
    model = SklearnModel(estimator, "predict", None, lambda: pytest.fail("no MLflow needed"))
    monkeypatch.setattr(mlflow_scorer, "_model", model)
    monkeypatch.setattr(mlflow_scorer, "ROWS_PER_PREDICT", 6)

    together = mlflow_scorer.run(paths)

    # f-0 and f-1 together; other.csv alone; f-3 and the first 3 rows of f-4 would pass the
    # limit of 6, so f-3 goes with nothing, then f-4.
    assert estimator.calls == [3, 2, 3, 4]
    alone = Doubler()
    monkeypatch.setattr(mlflow_scorer, "_model", alone)
    one_by_one = mlflow_scorer.run(paths)
    assert alone.calls == [1, 2, 2, 3, 4]
    pd.testing.assert_frame_equal(together, one_by_one)
    assert list(together["file_name"]) == [
        "f-0.csv", "f-1.csv", "f-1.csv", "other.csv", "other.csv",
        "f-3.csv", "f-3.csv", "f-3.csv", "f-4.csv", "f-4.csv", "f-4.csv", "f-4.csv",
    ]  # fmt: skip
    assert list(together["row"]) == [0, 0, 1, 0, 1, 0, 1, 2, 0, 1, 2, 3]
    assert list(together["prediction"]) == [0, 20, 22, 14, 16, 60, 62, 64, 80, 82, 84, 86]


def test_a_wrong_number_of_predictions_names_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for i in range(2):
        path = tmp_path / f"f-{i}.csv"
        pd.DataFrame({"a": [1, 2]}).to_csv(path, index=False)
        paths.append(str(path))

    class Short:
        def predict(self, data: pd.DataFrame) -> Any:
            return np.zeros(len(data) - 1)

    monkeypatch.setattr(mlflow_scorer, "_model", SklearnModel(Short(), "predict", None, Short))
    with pytest.raises(ValueError, match=r"3 predictions for the 4 rows of 2 files \('.*f-0.csv'"):
        mlflow_scorer.run(paths)
    monkeypatch.setattr(mlflow_scorer, "_model", Short())
    with pytest.raises(ValueError, match=r"1 predictions for the 2 rows of '.*f-0.csv'; it must"):
        mlflow_scorer.run(paths)


def _frames(files: list[Path]) -> list[tuple[str, pd.DataFrame]]:
    """Each file's rows as the scorer reads them (none for a file without rows)."""
    found = []
    for pieces, data in mlflow_scorer._read_files([str(f) for f in files]):
        start = 0
        for piece in pieces:
            rows = data.iloc[start : start + piece.rows].reset_index(drop=True)
            found.append((piece.path, rows))
            start += piece.rows
    return found


def test_small_csv_files_are_read_together_as_each_alone_gives(tmp_path: Path) -> None:
    texts = {
        "a.csv": "x,y,name\n1,2.5,red\n3,4.0,blue\n",
        "b.csv": "x,y,name\n5,6,green",  # no line break at the end; y whole numbers
        "c.csv": "x,y,name\n",  # no rows
        "d.csv": "x,y,name\n7,8.25,red\n",
    }
    files = []
    for name, text in texts.items():
        (tmp_path / name).write_bytes(text.encode())
        files.append(tmp_path / name)

    together = mlflow_scorer._read_together([str(f) for f in files])
    assert together is not None  # read in one call
    found = _frames(files)

    with_rows = [f for f in files if f.name != "c.csv"]
    assert [path for path, _ in found] == [str(f) for f in with_rows]
    for (path, data), file in zip(found, with_rows, strict=True):
        alone = pd.read_csv(file)
        assert list(data.columns) == list(alone.columns)
        assert len(data) == len(alone), path
        # The same values; a whole number may come as a float where its column is one.
        np.testing.assert_array_equal(data.to_numpy(), alone.to_numpy())


@pytest.mark.parametrize(
    "second",
    [
        'x,name\n1,"quoted, text"\n',  # a quote: a line may not be a row
        "x,name\n1,red\n\n2,blue\n",  # a blank line
        "x,name\nseven,red\n",  # a text in the first file's numeric column
        "x,name\n1,2\n",  # a number in a text column: alone, a numeric column
        "x,name\n1,\n",  # a missing text: alone, a float column
        "name,x\nred,1\n",  # another header
    ],
)
def test_files_that_could_read_otherwise_together_are_read_one_by_one(
    tmp_path: Path, second: str
) -> None:
    (tmp_path / "a.csv").write_text("x,name\n1,red\n")
    (tmp_path / "b.csv").write_text(second)
    files = [tmp_path / "a.csv", tmp_path / "b.csv"]

    assert mlflow_scorer._read_together([str(f) for f in files]) is None
    for (_, data), file in zip(_frames(files), files, strict=True):
        pd.testing.assert_frame_equal(data, pd.read_csv(file))


def test_input_columns_follow_the_output_columns_and_may_not_share_their_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "one.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_csv(path, index=False)
    monkeypatch.setattr(mlflow_scorer, "_model", Doubler())
    monkeypatch.setattr(mlflow_scorer, "ROWS_PER_PREDICT", 2)

    chunks = list(mlflow_scorer.run_chunks([str(path)], True))

    joined = pd.concat(chunks, ignore_index=True)
    assert list(joined.columns) == ["row", "prediction", "file_name", "a", "b"]
    assert joined["row"].tolist() == [0, 1, 2]
    assert joined["a"].tolist() == [1, 2, 3]
    assert joined["b"].tolist() == ["x", "y", "z"]
    assert next(iter(mlflow_scorer.run_chunks([str(path)]))).columns.tolist() == [
        "row",
        "prediction",
        "file_name",
    ]

    clash = tmp_path / "clash.csv"
    pd.DataFrame({"a": [1], "prediction": [0]}).to_csv(clash, index=False)
    with pytest.raises(
        ValueError, match=r"input columns prediction of '.*clash\.csv' have the names"
    ):
        list(mlflow_scorer.run_chunks([str(clash)], True))


def test_input_columns_are_read_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.csv").write_text("a,b\n1,2.5\n")
    (tmp_path / "b.csv").write_text("a,b\n2,3\n")  # alone, b is a column of integers
    monkeypatch.setattr(mlflow_scorer, "_model", SklearnModel(Doubler(), "predict", None, Doubler))

    files = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    chunks = list(mlflow_scorer.run_chunks(files, True))

    assert [chunk["b"].tolist() for chunk in chunks] == [[2.5], [3]]
