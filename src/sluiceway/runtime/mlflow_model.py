"""Loading an MLflow model for the built-in scorer, importing MLflow only when it is needed.

``import mlflow.pyfunc`` takes seconds (MLflow imports its tracking, GenAI and gateway modules
on the way), and every worker would pay it before scoring a row. A scikit-learn model saved
with ``pickle`` or ``cloudpickle`` (the ``mlflow.sklearn`` flavor) needs none of it: its
``MLmodel`` file names the pickled estimator and the method to call, and the estimator is what
``mlflow.pyfunc`` would call too. :func:`load_model` reads ``MLmodel`` itself and unpickles such
a model directly; any other model is loaded with ``mlflow.pyfunc.load_model``.

Predictions are the same either way. ``mlflow.pyfunc`` checks the data against the model's
signature first: required columns present, only the signature's columns, in its order, and
types converted where the data's differ. :class:`SklearnModel` does the first two itself when
the data's types already are the signature's (nothing to convert), and hands any other data to
a ``mlflow.pyfunc`` model loaded on first need, so a conversion or an error is MLflow's own.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("sluiceway.mlflow")

SKLEARN_LOADER = "mlflow.sklearn"
PICKLE_FORMATS = frozenset({"pickle", "cloudpickle"})
# The methods mlflow.sklearn's pyfunc wrapper passes through (``pyfunc_predict_fn``).
PREDICT_FUNCTIONS = frozenset(
    {"predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score"}
)
# Signature column types whose pandas dtype MLflow accepts as it is, by numpy dtype name.
_EXACT_DTYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
}
_FALSE = frozenset({"false", "0", "no", "off"})


class Model(Protocol):
    """What the scorer calls: one ``predict`` per slice of rows."""

    def predict(self, data: pd.DataFrame) -> Any:
        """One prediction per row of ``data``."""


@dataclass(frozen=True)
class Column:
    """A named column of a model's signature."""

    name: str
    type: str
    required: bool = True


def load_model(path: Path) -> Model:
    """Load the MLflow model in folder ``path`` (which holds ``MLmodel``).

    Returns:
        A :class:`SklearnModel` for a scikit-learn model pickled with ``pickle`` or
        ``cloudpickle`` and a signature of named columns of plain types (or none), else the
        ``mlflow.pyfunc`` model.

    Raises:
        Exception: whatever reading the model raised.
    """
    plan = sklearn_plan(path)
    if plan is None:
        return load_pyfunc(path)
    with open(plan.model_file, "rb") as file:
        if plan.serialization_format == "cloudpickle":
            import cloudpickle  # type: ignore[import-untyped]

            estimator = cloudpickle.load(file)
        else:
            estimator = pickle.load(file)
    logger.info(
        "loaded the scikit-learn model in %s with %s, without MLflow",
        path,
        plan.serialization_format,
    )
    return SklearnModel(estimator, plan.predict_fn, plan.columns, lambda: load_pyfunc(path))


def load_pyfunc(path: Path) -> Model:
    """``mlflow.pyfunc.load_model`` of the model in folder ``path``."""
    with ignoring_mlflow_import_warnings():
        from mlflow.pyfunc import load_model as load_pyfunc_model
    model: Model = load_pyfunc_model(str(path))
    return model


@dataclass(frozen=True)
class SklearnPlan:
    """How to load and call a pickled scikit-learn model, read from its ``MLmodel`` file."""

    model_file: Path
    serialization_format: str
    predict_fn: str
    columns: tuple[Column, ...] | None  # None: no signature, the data goes in as it is


def sklearn_plan(path: Path) -> SklearnPlan | None:
    """The plan for loading the model in ``path`` without MLflow; None when only
    ``mlflow.pyfunc`` can load it as MLflow would (another flavor or format, code paths, a
    signature with types that need MLflow's conversions, pickles refused by
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``)."""
    import yaml

    try:
        meta = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(meta, dict):
        return None
    flavors = meta.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    sklearn = flavors.get("sklearn") or {}
    if pyfunc.get("loader_module") != SKLEARN_LOADER or not sklearn:
        return None
    serialization = sklearn.get("serialization_format")
    if serialization not in PICKLE_FORMATS or pyfunc.get("code") or sklearn.get("code"):
        return None
    predict_fn = pyfunc.get("predict_fn") or "predict"
    if predict_fn not in PREDICT_FUNCTIONS:
        return None
    if os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true").strip().lower() in _FALSE:
        return None  # MLflow refuses, with its own message
    if meta.get("is_signature_from_type_hint") or meta.get("type_hint_from_example"):
        return None
    data = pyfunc.get("model_path")
    if not isinstance(data, str) or not (path / data).is_file():
        return None
    try:
        columns = _signature_columns(meta.get("signature"))
    except _NotPlainColumns:
        return None
    return SklearnPlan(path / data, serialization, predict_fn, columns)


class _NotPlainColumns(Exception):
    pass


def _signature_columns(signature: Any) -> tuple[Column, ...] | None:
    """The signature's input columns; None without a signature.

    Raises:
        _NotPlainColumns: the signature is not one of named columns of plain types.
    """
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None
    try:
        inputs = json.loads(signature["inputs"])
    except (TypeError, ValueError):
        raise _NotPlainColumns from None
    if not isinstance(inputs, list) or not inputs:
        raise _NotPlainColumns
    columns = []
    for spec in inputs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise _NotPlainColumns
        kind = spec.get("type")
        if kind != "string" and kind not in _EXACT_DTYPES:
            raise _NotPlainColumns
        columns.append(Column(spec["name"], kind, bool(spec.get("required", True))))
    return tuple(columns)


class SklearnModel:
    """A pickled scikit-learn model, called as ``mlflow.pyfunc`` would call it.

    Args:
        estimator: the unpickled model.
        predict_fn: the method ``mlflow.pyfunc`` calls (``MLmodel``'s ``predict_fn``).
        columns: the signature's input columns; None when there is no signature.
        load_pyfunc: loads the same model with ``mlflow.pyfunc``, for data whose types need
            MLflow's conversions.
    """

    def __init__(
        self,
        estimator: Any,
        predict_fn: str,
        columns: tuple[Column, ...] | None,
        load_pyfunc: Callable[[], Model],
    ) -> None:
        self.estimator = estimator
        self._predict = getattr(estimator, predict_fn)
        self._columns = columns
        self._load_pyfunc = load_pyfunc
        self._pyfunc: Model | None = None

    def predict(self, data: pd.DataFrame) -> Any:
        """The estimator's predictions for ``data`` after the signature's checks; data that
        needs converting goes through ``mlflow.pyfunc``."""
        if self._columns is None:
            return self._predict(data)
        conforming = self.conform(data)
        if conforming is None:
            if self._pyfunc is None:
                logger.info("the data's types differ from the signature's: using mlflow.pyfunc")
                self._pyfunc = self._load_pyfunc()
            return self._pyfunc.predict(data)
        return self._predict(conforming)

    def conform(self, data: pd.DataFrame) -> pd.DataFrame | None:
        """``data`` with the signature's columns only, in its order, when every one has the
        signature's type already (what MLflow's schema check then gives); None when a column
        is missing or needs converting."""
        assert self._columns is not None
        if not data.columns.is_unique:
            return None
        present = set(data.columns)
        names = []
        for column in self._columns:
            if column.name not in present:
                if column.required:
                    return None
                continue
            if not _has_type(data[column.name], column.type):
                return None
            names.append(column.name)
        return data if list(data.columns) == names else data[names]


def _has_type(values: pd.Series, kind: str) -> bool:
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if kind == "string":
        return (isinstance(dtype, np.dtype) and dtype.kind == "O") or isinstance(
            dtype, pd.StringDtype
        )
    return isinstance(dtype, np.dtype) and dtype.name == _EXACT_DTYPES[kind]


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


__all__ = [
    "Column",
    "Model",
    "SklearnModel",
    "SklearnPlan",
    "ignoring_mlflow_import_warnings",
    "load_model",
    "load_pyfunc",
    "sklearn_plan",
]
