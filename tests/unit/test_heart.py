"""The bundled heart example: its generated data, and what it writes (without training)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pd = pytest.importorskip("pandas")

from sluiceway.examples import heart  # noqa: E402 (needs pandas)

INTEGER_COLUMNS = [name for name in heart.HEART_FEATURES if name not in ("oldpeak", "thal")]


def test_columns_are_the_uci_features_then_the_target() -> None:
    labeled = heart.generate_heart_frame(50)
    unlabeled = heart.generate_heart_frame(50, labeled=False)

    assert list(labeled.columns) == [*heart.HEART_FEATURES, heart.HEART_TARGET]
    assert list(unlabeled.columns) == heart.HEART_FEATURES
    assert len(labeled) == len(unlabeled) == 50


def test_column_types_and_ranges() -> None:
    frame = heart.generate_heart_frame(2000, seed=3)

    for name in [*INTEGER_COLUMNS, heart.HEART_TARGET]:
        assert frame[name].dtype == "int64", name
    assert frame["oldpeak"].dtype == "float64"
    assert pd.api.types.is_string_dtype(frame["thal"])
    assert frame["age"].between(29, 77).all()
    assert frame["oldpeak"].between(0, 6.2).all()
    assert set(frame["thal"]) <= set(heart.THAL_VALUES)
    assert set(frame["sex"]) <= {0, 1} and set(frame["cp"]) <= {1, 2, 3, 4}
    assert set(frame[heart.HEART_TARGET]) == {0, 1}
    assert 0.3 < frame[heart.HEART_TARGET].mean() < 0.6
    assert not frame.isna().any().any()


def test_the_same_seed_gives_the_same_frame() -> None:
    pd.testing.assert_frame_equal(
        heart.generate_heart_frame(100, seed=7), heart.generate_heart_frame(100, seed=7)
    )
    assert not heart.generate_heart_frame(100, seed=7).equals(heart.generate_heart_frame(100))


def test_unlabeled_rows_are_the_labeled_rows_without_the_target() -> None:
    labeled = heart.generate_heart_frame(100, seed=2)
    unlabeled = heart.generate_heart_frame(100, seed=2, labeled=False)
    pd.testing.assert_frame_equal(labeled.drop(columns=heart.HEART_TARGET), unlabeled)


def test_row_counts() -> None:
    empty = heart.generate_heart_frame(0)
    assert len(empty) == 0
    assert list(empty.columns) == [*heart.HEART_FEATURES, heart.HEART_TARGET]
    with pytest.raises(ValueError, match="-1"):
        heart.generate_heart_frame(-1)


def test_unlabeled_folder_holds_csv_files_with_a_header_and_no_target(tmp_path: Path) -> None:
    paths = heart.write_unlabeled_folder(tmp_path / "data", n_files=3, rows_per_file=4, seed=9)

    assert [path.name for path in paths] == [f"heart-unlabeled-{i}.csv" for i in range(3)]
    frames = [pd.read_csv(path) for path in paths]
    assert all(list(frame.columns) == heart.HEART_FEATURES for frame in frames)
    pd.testing.assert_frame_equal(
        pd.concat(frames, ignore_index=True),
        heart.generate_heart_frame(12, seed=9, labeled=False),
        check_dtype=False,
    )


def test_training_refuses_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match="already exists"):
        heart.train_heart_model(tmp_path)


def test_write_example_keeps_what_is_there(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")  # stands in for a trained model

    layout = heart.write_example(tmp_path)

    assert layout == heart.ExampleLayout.at(tmp_path)
    assert len(list(layout.data_dir.glob("*.csv"))) == heart.EXAMPLE_FILES
    deployment = yaml.safe_load(layout.deployment_file.read_text())
    assert deployment["endpoint_name"] == heart.ENDPOINT_NAME
    assert deployment["model"] == f"azureml:{heart.MODEL_NAME}@latest"
    assert yaml.safe_load(layout.endpoint_file.read_text())["name"] == heart.ENDPOINT_NAME
    data_asset = yaml.safe_load(layout.data_asset_file.read_text())
    assert (data_asset["name"], data_asset["type"]) == (heart.DATA_ASSET_NAME, "uri_folder")

    layout.endpoint_file.write_text("edited\n")
    heart.write_example(tmp_path)
    assert layout.endpoint_file.read_text() == "edited\n"


def test_write_example_refuses_a_model_folder_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(FileExistsError, match="no MLmodel"):
        heart.write_example(tmp_path)
