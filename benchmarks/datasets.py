"""The data and the model every contender scores: folders of heart-schema CSV files and the
MLflow models (two gradient-boosting classifiers).

The rows come from :func:`sluiceway.examples.heart.generate_heart_frame` (synthetic, with the UCI
Cleveland columns); each folder is written once per run and read by every contender.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sluiceway.examples.heart import HEART_FEATURES, generate_heart_frame, train_heart_model

MB = 1 << 20
TRAINING_ROWS = 2000
CATEGORICAL = ["cp", "restecg", "slope", "thal"]


@dataclass(frozen=True)
class InputFolder:
    """A folder of CSV files, as written."""

    path: Path
    files: int
    rows: int
    bytes: int


def file_name(index: int) -> str:
    return f"part-{index:06d}.csv"


def write_folder(folder: Path, files: int, rows_per_file: int, seed: int) -> InputFolder:
    """Write ``files`` CSV files of ``rows_per_file`` heart rows each (a header row, no target).

    Every file has rows of its own and the same seed writes the same folder. Rows are drawn
    for up to 200,000 rows' worth of files at a time (one draw is far faster than thousands of
    small ones), so a large folder never sits in memory.
    """
    folder.mkdir(parents=True, exist_ok=False)
    total = 0
    per_draw = max(1, min(files, 200_000 // max(rows_per_file, 1)))
    for start in range(0, files, per_draw):
        count = min(per_draw, files - start)
        frame = generate_heart_frame(count * rows_per_file, seed=seed * 1_000_003 + start)
        text = frame[HEART_FEATURES].to_csv(index=False, lineterminator="\n")
        header, _, body = text.partition("\n")
        lines = body.splitlines(keepends=True)
        for offset in range(count):
            chunk = lines[offset * rows_per_file : (offset + 1) * rows_per_file]
            data = (header + "\n" + "".join(chunk)).encode()
            (folder / file_name(start + offset)).write_bytes(data)
            total += len(data)
    return InputFolder(folder, files, files * rows_per_file, total)


def rows_for_size(megabytes: float) -> int:
    """How many heart rows make a CSV file of about ``megabytes`` MB."""
    sample = generate_heart_frame(10_000, seed=0)[HEART_FEATURES].to_csv(index=False)
    per_row = len(sample.encode()) / 10_000
    return max(1, int(megabytes * MB / per_row))


@dataclass(frozen=True)
class ModelKind:
    """A model the contenders score with: a name for the flags, a label for the report."""

    name: str
    label: str
    classifier: str  # the scikit-learn class, in sklearn.ensemble


MODELS = {
    "gb": ModelKind(
        "gb",
        "GradientBoostingClassifier (100 trees of depth 3; predict in one thread)",
        "GradientBoostingClassifier",
    ),
    "hgb": ModelKind(
        "hgb",
        "HistGradientBoostingClassifier (200 iterations of 31 leaves; predict in OpenMP threads)",
        "HistGradientBoostingClassifier",
    ),
}
"""The models every workload runs with: the gradient boosting of the first benchmarks, and a
HistGradientBoosting model (issue 17's "fast" model), whose ``predict`` is multi-threaded:
with it, how a contender shares the cores between processes and threads counts."""


def train_model(model_dir: Path, kind: ModelKind = MODELS["gb"], seed: int = 0) -> Path:
    """Train a classifier of ``kind`` on heart rows and save it as an MLflow model.

    The pipeline one-hot encodes the categorical columns and passes the others through; the
    example's :func:`~sluiceway.examples.heart.train_heart_model` trains and saves it (with
    cloudpickle and a column signature), so every contender loads the same model and MLflow
    checks the same schema.
    """
    from sklearn import ensemble
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    preprocess = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)],
        remainder="passthrough",
    )
    options: dict[str, int] = {"random_state": seed}
    if kind.classifier == "HistGradientBoostingClassifier":
        options["max_iter"] = 200
    classifier = getattr(ensemble, kind.classifier)(**options)
    pipeline = Pipeline([("preprocess", preprocess), ("classifier", classifier)])
    return train_heart_model(model_dir, seed, pipeline=pipeline, rows=TRAINING_ROWS)


def describe(folder: InputFolder) -> str:
    size = folder.bytes / MB
    return f"{folder.files} files x {folder.rows // max(folder.files, 1)} rows ({size:,.1f} MB)"


__all__ = [
    "MB",
    "MODELS",
    "InputFolder",
    "ModelKind",
    "describe",
    "file_name",
    "rows_for_size",
    "train_model",
    "write_folder",
]
