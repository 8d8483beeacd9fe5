"""Reading each contender's output into one shape, and checking that they agree row for row.

Every contender's output becomes a frame of ``file_name``, ``row`` (the row's index in its file)
and ``prediction``, sorted by file and row. Two outputs agree when they have the same rows in
that order with the same predictions; a contender that lost, repeated or reordered rows of a
file disagrees with the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["file_name", "row", "prediction"]


def _normalized(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[COLUMNS].astype({"file_name": "category", "row": "int64"})
    frame["prediction"] = frame["prediction"].astype("int64")
    # Sorting follows the category order: make it the names' order in every frame.
    names = frame["file_name"].cat.categories
    frame["file_name"] = frame["file_name"].cat.reorder_categories(sorted(names))
    return frame.sort_values(["file_name", "row"], kind="stable").reset_index(drop=True)


def read_bare_loop(path: Path) -> pd.DataFrame:
    """The bare loop's ``file_name,row,prediction`` CSV file."""
    return _normalized(pd.read_csv(path, dtype={"file_name": "category"}))


def read_sluiceway(path: Path) -> pd.DataFrame:
    """The MLflow scorer's rows file: ``row prediction file_name`` lines, no header."""
    names = ["row", "prediction", "file_name"]
    frame = pd.read_csv(path, sep=" ", header=None, names=names, dtype={"file_name": "category"})
    return _normalized(frame)


def read_ray(folder: Path) -> pd.DataFrame:
    """Ray Data's ``write_csv`` folder: CSV files with a header, in any order."""
    return read_csv_folder(folder)


def read_csv_folder(folder: Path) -> pd.DataFrame:
    """A folder of ``file_name,row,prediction`` CSV files with a header (Ray Data's
    ``write_csv``, the limit's parts), in any order."""
    parts = [
        pd.read_csv(path, dtype={"file_name": "category"}) for path in sorted(folder.glob("*.csv"))
    ]
    if not parts:
        return _normalized(pd.DataFrame({column: [] for column in COLUMNS}))
    # Categories of each part differ; concat makes the column plain text, cast back once.
    return _normalized(pd.concat(parts, ignore_index=True))


@dataclass(frozen=True)
class Agreement:
    rows: int  # rows of the reference
    mismatches: int  # rows that differ, plus the difference in row counts
    detail: str

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


def compare(reference: pd.DataFrame, other: pd.DataFrame, expected_rows: int) -> Agreement:
    """How ``other`` differs from ``reference``; both must also hold ``expected_rows`` rows."""
    problems: list[str] = []
    mismatches = abs(len(reference) - len(other))
    if len(other) != expected_rows:
        problems.append(f"{len(other)} rows, expected {expected_rows}")
    duplicated = int(other.duplicated(["file_name", "row"]).sum())
    if duplicated:
        problems.append(f"{duplicated} repeated (file, row) pairs")
    n = min(len(reference), len(other))
    differing = 0
    if n:
        names = reference["file_name"].cat.categories
        other_names = other["file_name"].cat.set_categories(names).cat.codes.to_numpy()[:n]
        same = (reference["file_name"].cat.codes.to_numpy()[:n] == other_names) & (
            reference["row"].to_numpy()[:n] == other["row"].to_numpy()[:n]
        )
        same &= reference["prediction"].to_numpy()[:n] == other["prediction"].to_numpy()[:n]
        differing = int(np.count_nonzero(~same))
    if differing:
        problems.append(f"{differing} rows differ")
    mismatches += differing + duplicated
    return Agreement(len(reference), mismatches, "; ".join(problems) or "identical")


__all__ = [
    "Agreement",
    "compare",
    "read_bare_loop",
    "read_csv_folder",
    "read_ray",
    "read_sluiceway",
]
