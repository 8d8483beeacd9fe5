"""The built-in scorer for MLflow models deployed without a scoring script.

It follows Azure ML's no-code MLflow deployment and the scoring-script contract: ``init()``
loads the model under ``AZUREML_MODEL_DIR`` once per worker; ``run()`` reads each file of a
mini-batch into a DataFrame, calls ``predict()`` once per file and returns one row per input row,
with the columns ``row`` (the row's index in its file), ``prediction`` and ``file_name``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

MODEL_DIR_VARIABLE = "AZUREML_MODEL_DIR"
OUTPUT_COLUMNS = ("row", "prediction", "file_name")
CSV_EXTENSIONS = frozenset({"csv"})
PARQUET_EXTENSIONS = frozenset({"parquet", "pqt"})
ROWS_PER_PREDICT = 50_000

# The scoring-script contract: init() loads the model that later run() calls use.
_model: PyFuncModel | None = None


def init() -> None:
    """Load the MLflow model under ``$AZUREML_MODEL_DIR``.

    Raises:
        RuntimeError: If ``AZUREML_MODEL_DIR`` is not set.
        FileNotFoundError, ValueError: See :func:`find_mlflow_model`.
    """
    global _model
    model_dir = os.environ.get(MODEL_DIR_VARIABLE)
    if not model_dir:
        raise RuntimeError(
            f"{MODEL_DIR_VARIABLE} is not set; it must name the deployment's model folder"
        )
    _model = load_mlflow_model(Path(model_dir))


def run(mini_batch: list[str]) -> pd.DataFrame:
    """Score each file of ``mini_batch`` and return the predictions of all of them, in order.

    ``.csv``, ``.parquet`` and ``.pqt`` files are read into DataFrames and passed to
    ``predict()``, once per file; a file without rows adds nothing.

    Raises:
        RuntimeError: If :func:`init` has not loaded a model.
        ValueError: If a file has another extension, or ``predict()`` does not return one
            prediction per row.
    """
    if _model is None:
        raise RuntimeError("the MLflow scorer has no model: init() must run before run()")
    frames = [frame for path in mini_batch if (frame := _score_file(_model, path)) is not None]
    if not frames:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in OUTPUT_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def find_mlflow_model(model_dir: Path) -> Path:
    """Find the folder holding the ``MLmodel`` file: ``model_dir`` or one of its subfolders.

    Registering a folder keeps its name, so a model's files often sit one level down
    (``<model_dir>/<folder>/MLmodel``).

    Raises:
        FileNotFoundError: If ``model_dir`` is not a folder or no ``MLmodel`` file is found.
        ValueError: If several subfolders hold one.
    """
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist or is not a folder")
    if (model_dir / "MLmodel").is_file():
        return model_dir
    found = sorted(child for child in model_dir.iterdir() if (child / "MLmodel").is_file())
    if not found:
        raise FileNotFoundError(
            f"no MLflow model in {model_dir}: expected an MLmodel file in it or in one of its "
            "subfolders"
        )
    if len(found) > 1:
        names = ", ".join(child.name for child in found)
        raise ValueError(
            f"{len(found)} MLflow models in {model_dir} ({names}); the model folder must hold "
            "exactly one"
        )
    return found[0]


def load_mlflow_model(model_dir: Path) -> PyFuncModel:
    """Load the pyfunc model found by :func:`find_mlflow_model` under ``model_dir``."""
    path = find_mlflow_model(model_dir)
    with ignoring_mlflow_import_warnings():
        from mlflow.pyfunc import load_model
    return load_model(str(path))


@contextmanager
def ignoring_mlflow_import_warnings() -> Iterator[None]:
    """Ignore the warning MLflow issues while importing ``mlflow.pyfunc``.

    MLflow builds a schema from its own ``Any`` type hints at import time and warns about it.
    It mutes its warnings by replacing ``warnings.showwarning``, which does not help when
    warnings are errors (as in the test suite), so the import fails unless this one is ignored.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r".*Any type hint is inferred as AnyType",
            category=UserWarning,
            module=r"mlflow\.",
        )
        yield


def _score_file(model: PyFuncModel, path: str) -> pd.DataFrame | None:
    parts = []
    rows = 0
    for data in _read_table(path):
        if len(data) == 0:
            # Nothing to score; predict() on zero rows fails for many models (scikit-learn's do).
            continue
        parts.append(_one_per_row(model.predict(data), len(data), path))
        rows += len(data)
    if not rows:
        return None
    if len(parts) == 1:
        predictions = parts[0]
    elif all(isinstance(p, np.ndarray) and p.ndim == 1 for p in parts):
        predictions = np.concatenate(parts)
    else:
        predictions = [value for part in parts for value in part]
    return pd.DataFrame(
        {
            "row": np.arange(rows),
            "prediction": predictions,
            "file_name": os.path.basename(path),
        }
    )


def _read_table(path: str) -> Iterator[pd.DataFrame]:
    """The file's rows, a CSV file in slices of :data:`ROWS_PER_PREDICT`, so that scoring a big
    file needs the memory of one slice (``predict()`` scores each row on its own)."""
    extension = Path(path).suffix.removeprefix(".")
    if extension.lower() in CSV_EXTENSIONS:
        with pd.read_csv(path, chunksize=ROWS_PER_PREDICT) as reader:
            yield from reader
        return
    if extension.lower() in PARQUET_EXTENSIONS:
        yield pd.read_parquet(path)
        return
    # Azure's message, word for word, so logs and error counts read the same.
    raise ValueError(
        f"Error processing input file: '{path}'. File type '{extension}' is not supported"
    )


def _one_per_row(predictions: Any, n_rows: int, path: str) -> Any:
    """Flatten what ``predict()`` returned to one value per row.

    A single column (1-D array, Series, one-column DataFrame or ``(n, 1)`` array) gives its
    values; several columns give each row's values as a list.
    """
    if isinstance(predictions, pd.DataFrame):
        if predictions.shape[1] == 1:
            values: Any = predictions.iloc[:, 0].to_numpy()
        else:
            values = predictions.to_numpy().tolist()
    elif isinstance(predictions, pd.Series):
        values = predictions.to_numpy()
    else:
        array = np.asarray(predictions)
        if array.ndim == 0:
            values = [array.item()]
        elif array.ndim == 1:
            values = array
        elif array.shape[1:] == (1,):
            values = array.reshape(len(array))
        else:
            values = array.tolist()
    if len(values) != n_rows:
        raise ValueError(
            f"predict() returned {len(values)} predictions for the {n_rows} rows of '{path}'; "
            "it must return one per row"
        )
    return values


__all__ = [
    "MODEL_DIR_VARIABLE",
    "OUTPUT_COLUMNS",
    "find_mlflow_model",
    "ignoring_mlflow_import_warnings",
    "init",
    "load_mlflow_model",
    "run",
]
