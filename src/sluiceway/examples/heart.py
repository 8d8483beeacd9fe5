"""The heart-disease example: synthetic UCI-style data, an MLflow model and Azure-style YAML.

It mirrors Azure ML's ``heart-classifier-mlflow`` batch sample: an MLflow scikit-learn model
deployed without a scoring script, scored over a folder of unlabeled CSV files. The data is
generated here (nothing is downloaded), with the UCI Cleveland columns and value ranges and a
target that depends on the features, so the trained model is better than a coin flip.
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sluiceway.runtime.mlflow_scorer import ignoring_mlflow_import_warnings

# A list, not a tuple: pandas reads ``frame[("age", "sex")]`` as one column key.
HEART_FEATURES: list[str] = [
    "age",
    "sex",
    "cp",
    "trestbps",
    "chol",
    "fbs",
    "restecg",
    "thalach",
    "exang",
    "oldpeak",
    "slope",
    "ca",
    "thal",
]
HEART_TARGET = "target"
THAL_VALUES = ("normal", "fixed", "reversible")

ENDPOINT_NAME = "heart-classifier-batch"
DEPLOYMENT_NAME = "classifier-mlflow"
MODEL_NAME = "heart-classifier-mlflow"
DATA_ASSET_NAME = "heart-dataset-unlabeled"

TRAINING_ROWS = 1000
EXAMPLE_FILES = 10
EXAMPLE_ROWS_PER_FILE = 30

_CATEGORICAL = ["cp", "restecg", "slope", "thal"]
_NUMERIC = [name for name in HEART_FEATURES if name not in _CATEGORICAL]

DATA_ASSET_YAML = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json
name: {DATA_ASSET_NAME}
description: An unlabeled dataset for heart classification.
type: uri_folder
path: data
"""

ENDPOINT_YAML = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json
name: {ENDPOINT_NAME}
description: A heart condition classifier for batch inference.
auth_mode: aad_token
"""

# The model is referenced by name, so it is registered (from model/) before the deployment.
DEPLOYMENT_YAML = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
name: {DEPLOYMENT_NAME}
description: A heart disease classifier, an MLflow model scored without a scoring script.
endpoint_name: {ENDPOINT_NAME}
type: model
model: azureml:{MODEL_NAME}@latest
compute: azureml:batch-cluster
resources:
  instance_count: 2
settings:
  max_concurrency_per_instance: 1
  mini_batch_size: 2
  output_action: append_row
  output_file_name: predictions.csv
  retry_settings:
    max_retries: 3
    timeout: 300
  error_threshold: -1
  logging_level: info
"""


@dataclass(frozen=True)
class ExampleLayout:
    """Where :func:`write_example` puts each part, laid out like Azure's sample folder."""

    root: Path
    model_dir: Path
    data_dir: Path
    data_asset_file: Path
    endpoint_file: Path
    deployment_file: Path

    @classmethod
    def at(cls, root: Path) -> ExampleLayout:
        return cls(
            root=root,
            model_dir=root / "model",
            data_dir=root / "data",
            data_asset_file=root / f"{DATA_ASSET_NAME}.yml",
            endpoint_file=root / "endpoint.yml",
            deployment_file=root / "deployment.yml",
        )


def generate_heart_frame(n_rows: int, seed: int = 0, labeled: bool = True) -> pd.DataFrame:
    """Draw synthetic patients with the UCI heart columns; the same seed gives the same frame.

    Integer columns are ``int64``, ``oldpeak`` is ``float64`` with one decimal and ``thal`` is
    a string. The features do not depend on ``labeled``: dropping ``target`` from a labeled
    frame gives the unlabeled frame of the same seed.

    Args:
        n_rows: How many rows to draw.
        seed: Seed of the random generator.
        labeled: Whether to add the ``target`` column (1 means heart disease).

    Raises:
        ValueError: If ``n_rows`` is negative.
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be 0 or more, got {n_rows}")
    rng = np.random.default_rng(seed)
    n = n_rows
    age = _int_column(rng.normal(54, 9, n), 29, 77)
    columns: dict[str, Any] = {
        "age": age,
        "sex": _flag(rng, n, 0.68),
        "cp": rng.choice(np.array([1, 2, 3, 4]), n, p=[0.08, 0.16, 0.28, 0.48]),
        "trestbps": _int_column(rng.normal(131 + 0.4 * (age - 54), 17), 94, 200),
        "chol": _int_column(rng.lognormal(np.log(242), 0.2, n), 126, 564),
        "fbs": _flag(rng, n, 0.15),
        "restecg": rng.choice(np.array([0, 1, 2]), n, p=[0.50, 0.02, 0.48]),
        "thalach": _int_column(rng.normal(150 - 0.8 * (age - 54), 20), 71, 202),
        "exang": _flag(rng, n, 0.33),
        # A third of patients have no ST depression at all; the rest are skewed right.
        "oldpeak": np.where(
            rng.random(n) < 0.33, 0.0, np.clip(np.round(rng.gamma(1.6, 0.85, n), 1), 0.0, 6.2)
        ),
        "slope": rng.choice(np.array([1, 2, 3]), n, p=[0.47, 0.46, 0.07]),
        "ca": rng.choice(np.array([0, 1, 2, 3]), n, p=[0.59, 0.22, 0.13, 0.06]),
        "thal": rng.choice(np.array(THAL_VALUES), n, p=[0.55, 0.06, 0.39]),
    }
    frame = pd.DataFrame(columns, columns=HEART_FEATURES)
    # Drawn even when unlabeled, so the features of a seed do not depend on ``labeled``.
    chance = 1.0 / (1.0 + np.exp(-_disease_logit(frame)))
    target = (rng.random(n) < chance).astype(np.int64)
    if labeled:
        frame[HEART_TARGET] = target
    return frame


def write_unlabeled_folder(
    folder: Path,
    n_files: int = EXAMPLE_FILES,
    rows_per_file: int = EXAMPLE_ROWS_PER_FILE,
    seed: int = 1,
) -> list[Path]:
    """Write ``heart-unlabeled-<i>.csv`` files (header row, no ``target``) into ``folder``.

    Returns:
        The paths written, in name order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frame = generate_heart_frame(n_files * rows_per_file, seed=seed, labeled=False)
    paths = []
    for index in range(n_files):
        path = folder / _unlabeled_file_name(index)
        chunk = frame.iloc[index * rows_per_file : (index + 1) * rows_per_file]
        chunk.to_csv(path, index=False)
        paths.append(path)
    return sorted(paths, key=lambda path: path.name)


def train_heart_model(
    model_dir: Path, seed: int = 0, *, pipeline: Any = None, rows: int = TRAINING_ROWS
) -> Path:
    """Train a classifier on generated rows and save it as an MLflow model in ``model_dir``.

    The model is a scikit-learn pipeline (by default one-hot encoding of the categorical
    columns, scaled numeric columns, logistic regression) saved with a column signature, so
    MLflow checks the columns and types of what it scores. It is written to a staging folder
    first and moved into place, so ``model_dir`` never holds half a model.

    Args:
        model_dir: The folder to create; its parents are created too.
        seed: Seed of the training data.
        pipeline: An unfitted scikit-learn estimator over :data:`HEART_FEATURES` to train
            instead of the default one.
        rows: How many generated rows to train on.

    Returns:
        ``model_dir``.

    Raises:
        FileExistsError: If ``model_dir`` already exists.
        ImportError: If MLflow or scikit-learn is not installed.
    """
    if model_dir.exists():
        raise FileExistsError(f"model folder {model_dir} already exists; pass a new folder")
    try:
        import sklearn

        with ignoring_mlflow_import_warnings():
            import mlflow

            # save_model() imports mlflow.pyfunc lazily, outside this guard, and its import
            # warns; importing it here first keeps that warning ignored.
            import mlflow.pyfunc
            import mlflow.sklearn
            from mlflow.models import infer_signature
    except ImportError as exc:
        raise ImportError(
            "the heart example needs MLflow and scikit-learn: pip install 'sluiceway[mlflow]'"
        ) from exc

    frame = generate_heart_frame(rows, seed=seed)
    features, target = frame[HEART_FEATURES], frame[HEART_TARGET]
    pipeline = (_build_pipeline() if pipeline is None else pipeline).fit(features, target)
    with warnings.catch_warnings():
        # MLflow hints that int columns cannot hold missing values; the generated ones never do.
        warnings.filterwarnings(
            "ignore", message="Hint: Inferred schema contains integer column", category=UserWarning
        )
        signature = infer_signature(features, target)
    # Explicit requirements: inferring them imports the model in a subprocess and takes seconds.
    requirements = [
        f"mlflow-skinny=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"cloudpickle=={importlib.metadata.version('cloudpickle')}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}-", dir=model_dir.parent))
    try:
        with _without_expected_mlflow_logs():
            # cloudpickle: mlflow-skinny's default format (skops) needs a package it lacks.
            mlflow.sklearn.save_model(
                pipeline,
                str(staging / "model"),
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pip_requirements=requirements,
                signature=signature,
            )
        (staging / "model").rename(model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model_dir


def write_example(root: Path) -> ExampleLayout:
    """Write the whole example into ``root``: model, data folder and the three YAML files.

    What is already there is kept: a model folder with an ``MLmodel`` file is not retrained,
    data files and YAML files are not rewritten. Calling it again on a complete example only
    returns its layout.

    Raises:
        FileExistsError: If ``root/model`` exists but holds no MLflow model.
    """
    layout = ExampleLayout.at(root)
    layout.root.mkdir(parents=True, exist_ok=True)
    if not (layout.model_dir / "MLmodel").is_file():
        if layout.model_dir.exists():
            raise FileExistsError(
                f"{layout.model_dir} exists but holds no MLmodel file; remove it to retrain"
            )
        train_heart_model(layout.model_dir)
    expected = [layout.data_dir / _unlabeled_file_name(i) for i in range(EXAMPLE_FILES)]
    if not all(path.is_file() for path in expected):
        write_unlabeled_folder(layout.data_dir)
    for path, text in (
        (layout.data_asset_file, DATA_ASSET_YAML),
        (layout.endpoint_file, ENDPOINT_YAML),
        (layout.deployment_file, DEPLOYMENT_YAML),
    ):
        if not path.is_file():
            path.write_text(text, encoding="utf-8")
    return layout


def _unlabeled_file_name(index: int) -> str:
    return f"heart-unlabeled-{index}.csv"


def _int_column(values: np.ndarray[Any, Any], low: int, high: int) -> np.ndarray[Any, Any]:
    clipped: np.ndarray[Any, Any] = np.clip(np.rint(values), low, high)
    return clipped.astype(np.int64)


def _flag(rng: np.random.Generator, n: int, share: float) -> np.ndarray[Any, Any]:
    return (rng.random(n) < share).astype(np.int64)


def _disease_logit(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Log-odds of heart disease: a linear function of a few features, tuned so about 45 % of
    patients are positive and the best possible accuracy is about 0.84."""
    logit = (
        -6.4
        + 0.07 * (frame["age"] - 54)
        + 1.5 * frame["sex"]
        + 2.4 * (frame["cp"] == 4)
        - 0.05 * (frame["thalach"] - 150)
        + 0.007 * (frame["chol"] - 240)
        + 1.7 * frame["exang"]
        + 1.0 * frame["oldpeak"]
        + 0.8 * (frame["slope"] == 2)
        + 1.5 * frame["ca"]
        + 2.5 * (frame["thal"] == "reversible")
        + 1.2 * (frame["thal"] == "fixed")
    )
    return np.asarray(logit, dtype=np.float64)


def _build_pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocess = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), _CATEGORICAL),
            ("numeric", StandardScaler(), _NUMERIC),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("classifier", LogisticRegression(max_iter=1000))])


class _DropMessages(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._prefix)


@contextmanager
def _without_expected_mlflow_logs() -> Iterator[None]:
    """Drop the two log lines every save of this model prints, and nothing else.

    Both are expected here: the pickle advisory (cloudpickle is chosen on purpose) and the
    note that pip's version is unknown (it only affects the conda.yaml MLflow also writes).
    """
    filters = [
        (logging.getLogger("mlflow.sklearn"), _DropMessages("Saving scikit-learn models in the")),
        (
            logging.getLogger("mlflow.utils.environment"),
            _DropMessages("Failed to resolve installed pip version"),
        ),
    ]
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)


__all__ = [
    "DATA_ASSET_NAME",
    "DEPLOYMENT_NAME",
    "ENDPOINT_NAME",
    "HEART_FEATURES",
    "HEART_TARGET",
    "MODEL_NAME",
    "THAL_VALUES",
    "ExampleLayout",
    "generate_heart_frame",
    "train_heart_model",
    "write_example",
    "write_unlabeled_folder",
]
