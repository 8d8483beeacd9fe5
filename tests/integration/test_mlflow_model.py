"""Loading MLflow scikit-learn models without MLflow gives mlflow.pyfunc's predictions.

Models are saved with the real ``mlflow.sklearn.save_model`` and compared with the real
``mlflow.pyfunc.load_model``: on data as read from CSV files, on data with extra and reordered
columns, on data whose types MLflow converts (then MLflow itself is used), and on data MLflow
refuses (the same error).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
pytest.importorskip("mlflow")

from sluiceway.examples import heart  # noqa: E402
from sluiceway.runtime.mlflow_model import (  # noqa: E402
    SklearnModel,
    ignoring_mlflow_import_warnings,
    load_model,
    load_pyfunc,
    sklearn_plan,
)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Saved:
    path: Path
    predict_fn: str
    signature: bool


def save(path: Path, estimator: Any, *, signature: bool, predict_fn: str = "predict") -> Saved:
    import sklearn

    with ignoring_mlflow_import_warnings():
        import mlflow.pyfunc
        import mlflow.sklearn
        from mlflow.models import infer_signature

    frame = heart.generate_heart_frame(300, seed=3)
    features = frame[heart.HEART_FEATURES]
    kwargs: dict[str, Any] = {}
    if signature:
        with warnings.catch_warnings():
            # MLflow hints that int columns cannot hold missing values; these never do.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            kwargs["signature"] = infer_signature(features, frame[heart.HEART_TARGET])
    mlflow.sklearn.save_model(
        estimator.fit(features, frame[heart.HEART_TARGET]),
        str(path),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        pyfunc_predict_fn=predict_fn,
        **kwargs,
    )
    return Saved(path, predict_fn, signature)


def gradient_boosting() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), ["cp", "thal"])],
        remainder="passthrough",
    )
    return Pipeline([("encode", encode), ("model", GradientBoostingClassifier(n_estimators=20))])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Saved]:
    root = tmp_path_factory.mktemp("models")
    logistic = heart.train_heart_model(root / "logistic")
    return {
        "logistic": Saved(logistic, "predict", True),
        "boosting": save(root / "boosting", gradient_boosting(), signature=True),
        "proba": save(
            root / "proba", gradient_boosting(), signature=True, predict_fn="predict_proba"
        ),
        "unsigned": save(root / "unsigned", gradient_boosting(), signature=False),
    }


@pytest.fixture(scope="module")
def read_back(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Unlabeled rows as the scorer reads them: from a CSV file."""
    folder = tmp_path_factory.mktemp("data")
    (path,) = heart.write_unlabeled_folder(folder, 1, 400, seed=9)
    return pd.read_csv(path)


def assert_same(left: Any, right: Any) -> None:
    np.testing.assert_array_equal(np.asarray(left), np.asarray(right))


@pytest.mark.parametrize("name", ["logistic", "boosting", "proba", "unsigned"])
def test_predictions_are_mlflow_pyfuncs(
    models: dict[str, Saved], read_back: Any, name: str
) -> None:
    saved = models[name]
    plan = sklearn_plan(saved.path)
    assert plan is not None and plan.serialization_format == "cloudpickle"
    assert plan.predict_fn == saved.predict_fn
    assert (plan.columns is not None) == saved.signature
    fast = load_model(saved.path)
    assert isinstance(fast, SklearnModel)
    reference = load_pyfunc(saved.path)

    # As read from CSV (pandas' own string dtype for "thal"), then with an extra column and
    # the columns in another order: MLflow keeps the signature's columns, in its order.
    shuffled = read_back.assign(extra="ignored")[list(reversed([*read_back.columns, "extra"]))]
    for data in (read_back, shuffled):
        if saved.signature:
            assert fast.conform(data) is not None  # no MLflow needed
            assert_same(fast.predict(data), reference.predict(data))
    assert_same(fast.predict(read_back), reference.predict(read_back))


def test_data_that_needs_converting_goes_through_mlflow(
    models: dict[str, Saved], read_back: Any
) -> None:
    saved = models["boosting"]
    fast = load_model(saved.path)
    assert isinstance(fast, SklearnModel)
    reference = load_pyfunc(saved.path)
    narrow = read_back.astype({"age": "int32", "oldpeak": "float32"})  # MLflow upcasts them
    assert fast.conform(narrow) is None
    assert_same(fast.predict(narrow), reference.predict(narrow))

    # A missing column: MLflow's own error, from MLflow.
    missing = read_back.drop(columns=["chol"])
    with pytest.raises(Exception) as from_fast:
        fast.predict(missing)
    with pytest.raises(Exception) as from_mlflow:
        reference.predict(missing)
    assert type(from_fast.value) is type(from_mlflow.value)
    assert str(from_fast.value) == str(from_mlflow.value)


def test_loading_a_pickled_model_does_not_import_mlflow(models: dict[str, Saved]) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sluiceway.runtime.mlflow_model import SklearnModel, load_model\n"
        "model = load_model(Path(sys.argv[1]))\n"
        "assert isinstance(model, SklearnModel), model\n"
        "print(sorted(m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(models["boosting"].path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_models_it_cannot_load_as_mlflow_would_go_to_mlflow(
    models: dict[str, Saved], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    assert sklearn_plan(models["boosting"].path) is None  # MLflow refuses it, with its message
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")

    # Another flavor: a python_function model with its own loader.
    other = tmp_path / "other"
    other.mkdir()
    (other / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
        "    python_model: python_model.pkl\n"
    )
    assert sklearn_plan(other) is None
    # A signature of tensors (MLflow reshapes and casts those).
    tensors = tmp_path / "tensors"
    text = (models["boosting"].path / "MLmodel").read_text()
    tensors.mkdir()
    for item in models["boosting"].path.iterdir():
        (tensors / item.name).write_bytes(item.read_bytes())
    start = text.index("signature:")
    end = text.index("\n", text.index("outputs:", start))
    tensor = (
        'signature:\n  inputs: \'[{"type": "tensor", "tensor-spec": '
        '{"dtype": "float64", "shape": [-1, 13]}}]\'\n  outputs: null'
    )
    (tensors / "MLmodel").write_text(text[:start] + tensor + text[end:])
    assert sklearn_plan(tensors) is None
    assert importlib.metadata.version("mlflow-skinny")  # the fallback is there to take them
