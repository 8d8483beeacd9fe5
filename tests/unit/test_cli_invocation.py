"""Every way the reference page gives inputs to ``batch-endpoint invoke``, read into specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.cli.arguments import parse_set_tokens
from sluiceway.cli.invocation import (
    InputSpec,
    OutputSpec,
    data_input_type,
    infer_literal,
    is_data_asset_reference,
    looks_like_data_reference,
    parse_invocation,
    read_invocation_file,
)
from sluiceway.errors import ValidationError

DATASET_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sluiceway/providers/"
    "Microsoft.MachineLearningServices/workspaces/default/data/heart-dataset-unlabeled/versions/1"
)
DATASTORE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sluiceway/providers/"
    "Microsoft.MachineLearningServices/workspaces/default/datastores/workspaceblobstore"
)
BLOB_URL = "https://azuremlexampledata.blob.core.windows.net/data/heart-disease-uci/data"


def tokens(*groups: str) -> list[tuple[str, str]]:
    """The pairs of ``--set`` groups written as on a command line."""
    return parse_set_tokens([group.split() for group in groups])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- --set tokens ---------------------------------------------------------------------------


def test_set_tokens_take_key_value_pairs_as_the_reference_page_writes_them() -> None:
    pairs = tokens(f"inputs.heart_dataset.type uri_folder inputs.heart_dataset.path {DATASET_ID}")
    assert pairs == [
        ("inputs.heart_dataset.type", "uri_folder"),
        ("inputs.heart_dataset.path", DATASET_ID),
    ]


def test_set_tokens_take_key_equals_value() -> None:
    assert tokens("mini_batch_size=20 inputs.x.path=azureml:data:1") == [
        ("mini_batch_size", "20"),
        ("inputs.x.path", "azureml:data:1"),
    ]


def test_set_tokens_mix_both_forms_and_several_set_options() -> None:
    pairs = tokens(f"inputs.heart_dataset.path {BLOB_URL}", "outputs.score.path=azureml://x")
    assert pairs == [("inputs.heart_dataset.path", BLOB_URL), ("outputs.score.path", "azureml://x")]


def test_a_value_after_a_key_may_hold_an_equals_sign() -> None:
    url = "https://acct.blob.core.windows.net/c/data?sv=2021&sig=abc="
    assert tokens(f"inputs.x.path {url}") == [("inputs.x.path", url)]


def test_a_value_may_be_empty_with_key_equals() -> None:
    assert tokens("description=") == [("description", "")]


def test_a_key_without_a_value_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"inputs\.x\.path: the key has no value"):
        tokens("inputs.x.type uri_folder inputs.x.path")


def test_a_token_that_is_no_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected a key"):
        tokens("azureml://datastores/x/paths/y")


# -- --input --------------------------------------------------------------------------------


def test_input_of_a_data_asset_leaves_the_type_to_the_asset() -> None:
    invocation = parse_invocation(endpoint_name="ep", input_path=DATASET_ID)
    assert invocation.input == InputSpec(type=None, path=DATASET_ID)
    assert invocation.inputs == {}


@pytest.mark.parametrize(
    "path", ["azureml:heart:1", "azureml:heart@latest", "azureml:/heart@latest"]
)
def test_short_asset_forms_are_asset_references(path: str) -> None:
    assert is_data_asset_reference(path)
    assert parse_invocation(input_path=path).input == InputSpec(type=None, path=path)


def test_input_of_a_datastore_path_with_its_type() -> None:
    path = f"{DATASTORE_ID}/paths/heart-disease-uci-unlabeled"
    invocation = parse_invocation(endpoint_name="ep", input_path=path, input_type="uri_folder")
    assert invocation.input == InputSpec(type="uri_folder", path=path)


@pytest.mark.parametrize(
    "path",
    [BLOB_URL, "azureml://datastores/workspaceblobstore/paths/data/", "./local-folder"],
)
def test_any_other_input_is_a_folder_unless_told(path: str) -> None:
    assert not is_data_asset_reference(path)
    assert data_input_type(path) == "uri_folder"
    assert parse_invocation(input_path=path).input == InputSpec(type="uri_folder", path=path)


def test_input_type_uri_file() -> None:
    invocation = parse_invocation(input_path=f"{BLOB_URL}/heart.csv", input_type="uri_file")
    assert invocation.input == InputSpec(type="uri_file", path=f"{BLOB_URL}/heart.csv")


def test_input_type_must_be_a_file_or_a_folder() -> None:
    with pytest.raises(ValidationError, match="uri_folder or uri_file"):
        parse_invocation(input_path=BLOB_URL, input_type="mltable")


def test_input_type_needs_an_input() -> None:
    with pytest.raises(ValidationError, match="--input-type needs --input"):
        parse_invocation(input_type="uri_folder")


def test_input_and_named_inputs_do_not_mix() -> None:
    with pytest.raises(ValidationError, match="--input gives the one input"):
        parse_invocation(input_path=BLOB_URL, set_values=tokens(f"inputs.x.path {BLOB_URL}"))


def test_input_goes_with_output_and_setting_overrides() -> None:
    invocation = parse_invocation(
        input_path=BLOB_URL, set_values=tokens("outputs.score.path=azureml://o mini_batch_size=5")
    )
    assert invocation.input == InputSpec(type="uri_folder", path=BLOB_URL)
    assert invocation.outputs == {"score": OutputSpec(path="azureml://o")}
    assert invocation.params_override == [{"mini_batch_size": 5}]


# -- --set ----------------------------------------------------------------------------------


def test_set_data_asset_input_with_type_as_on_the_reference_page() -> None:
    invocation = parse_invocation(
        endpoint_name="ep",
        set_values=tokens(
            f"inputs.heart_dataset.type uri_folder inputs.heart_dataset.path {DATASET_ID}"
        ),
    )
    assert invocation.inputs == {"heart_dataset": InputSpec(type="uri_folder", path=DATASET_ID)}
    assert invocation.input is None


def test_set_input_and_output_paths_without_types() -> None:
    output = f"{DATASTORE_ID}/paths/batch-jobs/my-unique-path"
    invocation = parse_invocation(
        set_values=tokens(f"inputs.heart_dataset.path {BLOB_URL}", f"outputs.score.path {output}")
    )
    assert invocation.inputs == {"heart_dataset": InputSpec(type="uri_folder", path=BLOB_URL)}
    assert invocation.outputs == {"score": OutputSpec(type=None, path=output)}


def test_set_path_of_an_asset_without_type_leaves_the_type_to_the_asset() -> None:
    invocation = parse_invocation(set_values=tokens("inputs.x.path azureml:heart@latest"))
    assert invocation.inputs == {"x": InputSpec(type=None, path="azureml:heart@latest")}


def test_set_string_literal_as_on_the_reference_page() -> None:
    invocation = parse_invocation(
        set_values=tokens("inputs.score_mode.type string inputs.score_mode.default append")
    )
    assert invocation.inputs == {"score_mode": InputSpec(type="string", default="append")}
    assert invocation.inputs["score_mode"].is_literal


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("integer", "5", 5),
        ("boolean", "true", True),
        ("boolean", "False", False),
        ("number", "0.5", 0.5),
        ("float", "2.5", 2.5),
        ("number", "3", 3),
        ("string", "5", "5"),
    ],
)
def test_set_typed_literals(kind: str, text: str, value: object) -> None:
    invocation = parse_invocation(
        set_values=tokens(f"inputs.p.type={kind} inputs.p.default={text}")
    )
    spec = invocation.inputs["p"]
    assert spec.type == ("number" if kind == "float" else kind)
    assert spec.default == value
    assert type(spec.default) is type(value)


def test_set_literal_with_bounds() -> None:
    invocation = parse_invocation(
        set_values=tokens("inputs.n.type integer inputs.n.default 5 inputs.n.min 1 inputs.n.max 9")
    )
    assert invocation.inputs["n"] == InputSpec(type="integer", default=5, min=1, max=9)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("7", "integer", 7),
        ("0.25", "number", 0.25),
        ("true", "boolean", True),
        ("hi", "string", "hi"),
    ],
)
def test_set_bare_input_value_infers_the_literal_type(text: str, kind: str, value: object) -> None:
    invocation = parse_invocation(set_values=tokens(f"inputs.p={text}"))
    assert invocation.inputs["p"] == InputSpec(type=kind, default=value)


def test_set_bare_input_reference_is_data() -> None:
    invocation = parse_invocation(set_values=tokens(f"inputs.d={BLOB_URL}"))
    assert invocation.inputs["d"] == InputSpec(type="uri_folder", path=BLOB_URL)


def test_set_literal_default_without_type_infers_it() -> None:
    invocation = parse_invocation(set_values=tokens("inputs.n.default 3"))
    assert invocation.inputs["n"] == InputSpec(type="integer", default=3)


@pytest.mark.parametrize(
    ("pair", "override"),
    [
        ("mini_batch_size=20", {"mini_batch_size": 20}),
        ("compute.instance_count=2", {"compute.instance_count": 2}),
        ("output_file_name=x.csv", {"output_file_name": "x.csv"}),
        ("retry_settings.max_retries=1", {"retry_settings.max_retries": 1}),
        ("retry_settings.timeout=60", {"retry_settings.timeout": 60}),
        ("retry_settings.timeout=pt60s", {"retry_settings.timeout": "PT60S"}),
        ("error_threshold=-1", {"error_threshold": -1}),
        ("logging_level=debug", {"logging_level": "debug"}),
    ],
)
def test_set_settings_become_params_override(pair: str, override: dict[str, object]) -> None:
    assert parse_invocation(set_values=tokens(pair)).params_override == [override]


def test_a_later_set_wins() -> None:
    invocation = parse_invocation(set_values=tokens("mini_batch_size=2 mini_batch_size=3"))
    assert invocation.params_override == [{"mini_batch_size": 3}]


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("mini_batch_size=ten", "is not an integer"),
        ("inputs.n.type=integer inputs.n.default=x", "is not an integer"),
        ("inputs.b.type=boolean inputs.b.default=maybe", "not a boolean"),
        ("inputs.f.type=number inputs.f.default=x", "not a number"),
        ("inputs.s.type=string inputs.s.min=1 inputs.s.default=a", "only integer and number"),
        ("inputs.x.type=uri_folder", "needs a path"),
        ("inputs.x.type=table inputs.x.path=azureml:a:1", "is not accepted"),
        ("inputs.x.colour=red", "unknown key"),
        ("outputs.o.type=mltable", "is not accepted"),
        ("outputs.o.default=1", "unknown key"),
        ("inputs=1", "unknown key"),
        ("deployment=x", "unknown key"),
        ("inputs.x.type=string inputs.x.path=a", "takes a default"),
        ("inputs.x.type=uri_file inputs.x.path=a inputs.x.default=1", "takes type, path and mode"),
    ],
)
def test_set_mistakes_name_the_key(pair: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_invocation(set_values=tokens(pair))


# -- --file ---------------------------------------------------------------------------------


def test_file_with_a_data_asset_shorthand(tmp_path: Path) -> None:
    path = write(tmp_path / "inputs.yml", "inputs:\n  heart_dataset: azureml:/heart@latest\n")
    invocation = parse_invocation(
        endpoint_name="ep", file_content=read_invocation_file(path), file_base=tmp_path
    )
    assert invocation.inputs == {
        "heart_dataset": InputSpec(type=None, path="azureml:/heart@latest")
    }


def test_file_with_a_datastore_input(tmp_path: Path) -> None:
    path = write(
        tmp_path / "inputs.yml",
        "inputs:\n  heart_dataset:\n    type: uri_folder\n"
        "    path: azureml://datastores/workspaceblobstore/paths/heart/\n",
    )
    invocation = parse_invocation(file_content=read_invocation_file(path), file_base=tmp_path)
    assert invocation.inputs == {
        "heart_dataset": InputSpec(
            type="uri_folder", path="azureml://datastores/workspaceblobstore/paths/heart/"
        )
    }


def test_file_with_a_string_literal_as_on_the_reference_page(tmp_path: Path) -> None:
    path = write(
        tmp_path / "inputs.yml", "inputs:\n  score_mode:\n    type: string\n    default: append\n"
    )
    invocation = parse_invocation(file_content=read_invocation_file(path), file_base=tmp_path)
    assert invocation.inputs == {"score_mode": InputSpec(type="string", default="append")}


def test_file_plain_scalars_are_literals_of_their_yaml_type(tmp_path: Path) -> None:
    path = write(
        tmp_path / "inputs.yml",
        "inputs:\n  n: 5\n  f: 0.5\n  b: true\n  s: append\n  quoted: '5'\n",
    )
    invocation = parse_invocation(file_content=read_invocation_file(path), file_base=tmp_path)
    assert invocation.inputs == {
        "n": InputSpec(type="integer", default=5),
        "f": InputSpec(type="number", default=0.5),
        "b": InputSpec(type="boolean", default=True),
        "s": InputSpec(type="string", default="append"),
        "quoted": InputSpec(type="string", default="5"),
    }


def test_file_local_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "data" / "unlabeled").mkdir(parents=True)
    path = write(
        tmp_path / "inputs.yml",
        "inputs:\n  input_data: {type: uri_folder, path: data/unlabeled}\n  bare: data\n"
        "  score_mode: {type: string, default: append}\n"
        "outputs:\n  scores: {type: uri_folder, mode: upload}\n",
    )
    invocation = parse_invocation(file_content=read_invocation_file(path), file_base=tmp_path)
    assert invocation.inputs == {
        "input_data": InputSpec(type="uri_folder", path=str(tmp_path / "data" / "unlabeled")),
        "bare": InputSpec(type="uri_folder", path=str(tmp_path / "data")),
        "score_mode": InputSpec(type="string", default="append"),
    }
    assert invocation.outputs == {"scores": OutputSpec(type="uri_folder", mode="upload")}


def test_file_names_endpoint_and_deployment(tmp_path: Path) -> None:
    path = write(
        tmp_path / "inputs.yml",
        "$schema: x\nendpoint: from-file\ndeployment: dep\ninputs:\n  d: azureml:a:1\n"
        "outputs:\n  score: azureml://datastores/workspaceblobstore/paths/out\n",
    )
    invocation = parse_invocation(
        endpoint_name="from-flag", file_content=read_invocation_file(path), file_base=tmp_path
    )
    assert (invocation.endpoint_name, invocation.deployment_name) == ("from-file", "dep")
    assert invocation.outputs == {
        "score": OutputSpec(path="azureml://datastores/workspaceblobstore/paths/out")
    }


def test_set_overrides_the_file_field_by_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "inputs.yml",
        "inputs:\n  n: {type: integer, default: 1}\n  d: {type: uri_file, path: azureml:a:1}\n",
    )
    invocation = parse_invocation(
        file_content=read_invocation_file(path),
        file_base=tmp_path,
        set_values=tokens("inputs.n.default=7 inputs.d.path=azureml:a:2"),
    )
    assert invocation.inputs == {
        "n": InputSpec(type="integer", default=7),
        "d": InputSpec(type="uri_file", path="azureml:a:2"),
    }


def test_an_empty_file_gives_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "inputs.yml", "")
    assert read_invocation_file(path) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must hold a mapping"),
        ("inputs: [1, 2]\n", "must be a mapping of names"),
        ("input:\n  a: 1\n", "unknown key 'input'"),
        ("inputs:\n  a: {type: uri_folder, path: x, colour: red}\n", "unknown field 'colour'"),
        ("inputs:\n  a:\n", "has no value"),
        ("inputs:\n  a: [1]\n", "is not accepted"),
        ("outputs:\n  o: 5\n", "give a path or a mapping"),
        ("endpoint: [x]\n", "'endpoint' must be a name"),
        ("inputs: {a: 1\n", "not valid YAML"),
    ],
)
def test_file_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "inputs.yml", text)
    with pytest.raises(ValidationError, match=message):
        parse_invocation(file_content=read_invocation_file(path), file_base=tmp_path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        read_invocation_file(tmp_path / "nope.yml")


# -- helpers --------------------------------------------------------------------------------


def test_a_very_long_literal_is_not_taken_for_a_path(tmp_path: Path) -> None:
    text = "x" * 5000
    assert not looks_like_data_reference(text, tmp_path)
    assert not looks_like_data_reference("~no-such-user-here/x", None)
    assert not looks_like_data_reference("", None)


def test_a_local_path_that_exists_is_data(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    assert looks_like_data_reference("folder", tmp_path)
    assert not looks_like_data_reference("other", tmp_path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, ("boolean", True)),
        (3, ("integer", 3)),
        (1.5, ("number", 1.5)),
        ("1e3", ("number", 1000.0)),
        ("-4", ("integer", -4)),
        ("TRUE", ("boolean", True)),
        ("text", ("string", "text")),
    ],
)
def test_infer_literal(value: str | int | float | bool, expected: tuple[str, object]) -> None:
    assert infer_literal(value) == expected


def test_asset_ids_and_datastore_paths_are_told_apart() -> None:
    assert is_data_asset_reference(DATASET_ID)
    assert is_data_asset_reference(
        "azureml://locations/westus/workspaces/default/data/heart/versions/labels/latest"
    )
    assert not is_data_asset_reference(f"{DATASTORE_ID}/paths/data/x/versions/1")
    assert not is_data_asset_reference("azureml://datastores/workspaceblobstore/paths/data")
