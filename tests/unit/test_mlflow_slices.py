"""The MLflow scorer reads a CSV file in slices, so a big file costs one slice's memory; the
rows it returns are those of scoring the whole file at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sluiceway.runtime import mlflow_scorer


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
