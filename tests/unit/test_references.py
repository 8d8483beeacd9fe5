"""Every reference form parses into the right typed reference, and every wrong one says why."""

from __future__ import annotations

import dataclasses

import pytest

from sluiceway.errors import UnsupportedError, ValidationError
from sluiceway.schemas.common import WorkspaceScope
from sluiceway.storage import references
from sluiceway.storage.paths import check_relative_path
from sluiceway.storage.references import (
    ACCEPTED_INPUT_FORMS,
    ACCEPTED_MODEL_FORMS,
    DataAssetRef,
    DatastorePathRef,
    LocalPathRef,
    ModelRef,
    Reference,
    StorageUrlRef,
    parse_model_reference,
    parse_reference,
)

SCOPE = WorkspaceScope(subscription_id="sub-1", resource_group="rg-1", workspace_name="ws1")
ARM = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.MachineLearningServices"
LONG = "azureml://subscriptions/sub-1/resourcegroups/rg-1"
LOCATION = "azureml://locations/westeurope/workspaces/ws1"
EMULATOR = "http://127.0.0.1:10000"


def test_public_names_are_pinned() -> None:
    assert sorted(references.__all__) == [
        "ACCEPTED_INPUT_FORMS",
        "ACCEPTED_MODEL_FORMS",
        "DataAssetRef",
        "DatastorePathRef",
        "LocalPathRef",
        "ModelRef",
        "Reference",
        "StorageUrlKind",
        "StorageUrlRef",
        "parse_model_reference",
        "parse_reference",
    ]


# --- datastore paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "azureml://datastores/workspaceblobstore/paths/data/heart.csv",
            DatastorePathRef("workspaceblobstore", "data/heart.csv", False),
        ),
        (
            "azureml://datastores/workspaceblobstore/paths/LocalUpload/abc/heart/",
            DatastorePathRef("workspaceblobstore", "LocalUpload/abc/heart", True),
        ),
        ("azureml://datastores/my_store/paths/", DatastorePathRef("my_store", "", True)),
        ("azureml://datastores/my_store/paths", DatastorePathRef("my_store", "", True)),
        ("azureml://datastores/s/paths/a//b", DatastorePathRef("s", "a/b", False)),
        ("azureml://datastores/s/paths/a/./b/c", DatastorePathRef("s", "a/b/c", False)),
        ("azureml://datastores/s/paths/a?b=c", DatastorePathRef("s", "a?b=c", False)),
        ("  azureml://datastores/s/paths/a.csv\n", DatastorePathRef("s", "a.csv", False)),
        ("AZUREML://Datastores/s/Paths/A.csv", DatastorePathRef("s", "A.csv", False)),
        (f"{LONG}/workspaces/ws1/datastores/s/paths/a.csv", DatastorePathRef("s", "a.csv", False)),
        (
            "azureml://subscriptions/x/resourceGroups/y/workspaces/ws1/datastores/s/paths/d/",
            DatastorePathRef("s", "d", True),
        ),
        (
            f"{LONG}/providers/Microsoft.MachineLearningServices/workspaces/ws1/datastores/s/paths/a",
            DatastorePathRef("s", "a", False),
        ),
        (
            f"{ARM}/workspaces/ws1/datastores/s/paths/a/b.csv",
            DatastorePathRef("s", "a/b.csv", False),
        ),
        (
            f"azureml:{ARM}/workspaces/ws1/datastores/s/paths/folder/",
            DatastorePathRef("s", "folder", True),
        ),
        (
            "/subscriptions/other/resourcegroups/other/providers/microsoft.machinelearningservices"
            "/workspaces/WS1/datastores/s/paths/a",
            DatastorePathRef("s", "a", False),
        ),
    ],
)
def test_datastore_path_forms(value: str, expected: DatastorePathRef) -> None:
    assert parse_reference(value, SCOPE) == expected


@pytest.mark.parametrize(
    ("ref", "uri"),
    [
        (DatastorePathRef("s", "a/b.csv", False), "azureml://datastores/s/paths/a/b.csv"),
        (DatastorePathRef("s", "a/b", True), "azureml://datastores/s/paths/a/b/"),
        (DatastorePathRef("s", "", True), "azureml://datastores/s/paths/"),
    ],
)
def test_datastore_uri_round_trips(ref: DatastorePathRef, uri: str) -> None:
    assert ref.uri == uri
    assert parse_reference(uri, SCOPE) == ref


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.csv", ("a/b.csv", False)),
        ("a/b/", ("a/b", True)),
        ("a/./b/c", ("a/b/c", False)),
        ("a//b///c", ("a/b/c", False)),
        ("", ("", True)),
        (".", ("", True)),
        ("./a", ("a", False)),
        ("a/.", ("a", True)),
        ("a/.../b", ("a/.../b", False)),
        ("a/..b", ("a/..b", False)),
        ("a/%2e/b", ("a/%2e/b", False)),
        ("100%.csv", ("100%.csv", False)),
        ("my%20file.csv", ("my%20file.csv", False)),
        ("c:d/e", ("c:d/e", False)),
        ("with space/x y.csv", ("with space/x y.csv", False)),
    ],
)
def test_check_relative_path(path: str, expected: tuple[str, bool]) -> None:
    assert check_relative_path(path) == expected


@pytest.mark.parametrize(
    "path", ["..", "../x", "/../x", "a/../../etc", "a/b/../../..", "./..", "a/.."]
)
def test_normalise_refuses_climbing_above_the_root(path: str) -> None:
    with pytest.raises(ValidationError, match="leaves the datastore's root") as info:
        check_relative_path(path)
    assert repr(path) in info.value.message


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("a/../b", "'..' segment"),
        ("%2e%2e/etc", "once percent-decoded, it has a '..' segment"),
        ("a/%2E%2e/b", "once percent-decoded, it has a '..' segment"),
        ("%2E%2e%2fetc", "once percent-decoded, it has a '..' segment"),
        ("%252e%252e/etc", "once percent-decoded, it has a '..' segment"),
        ("%25252e%25252e%25252fetc", "once percent-decoded, it has a '..' segment"),
        ("a\\..\\..\\b", "backslash"),
        ("a%5cb", "once percent-decoded, it holds a backslash"),
        ("a\x00b", "NUL byte"),
        ("a%00.csv", "once percent-decoded, it holds a NUL byte"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("%2fetc/passwd", "once percent-decoded, it is absolute"),
        ("C:/Windows", "drive letter"),
        ("c:", "drive letter"),
    ],
)
def test_hostile_paths_are_refused(path: str, reason: str) -> None:
    with pytest.raises(ValidationError, match="is not accepted") as info:
        check_relative_path(path)
    assert reason in info.value.message and repr(path) in info.value.message
    assert info.value.target == "path"


@pytest.mark.parametrize(
    "value",
    [
        "azureml://datastores/s/paths/a/../../etc",
        "azureml://datastores/s/paths/../secret",
        f"{ARM}/workspaces/ws1/datastores/s/paths/x/../../y",
    ],
)
def test_datastore_reference_refuses_climbing_above_the_root(value: str) -> None:
    with pytest.raises(ValidationError, match="leaves the datastore's root") as info:
        parse_reference(value, SCOPE)
    assert repr(value) in info.value.message


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("azureml://datastores/my-store/paths/a", "my-store"),
        ("azureml://datastores//paths/a", ""),
        ("azureml://datastores/st.ore/paths/a", "st.ore"),
        (f"azureml://datastores/{'a' * 256}/paths/a", "a" * 256),
        (f"{ARM}/workspaces/ws1/datastores/bad name/paths/a", "bad name"),
    ],
)
def test_invalid_datastore_names(value: str, name: str) -> None:
    with pytest.raises(ValidationError, match="datastore name") as info:
        parse_reference(value, SCOPE)
    assert repr(name) in info.value.message
    assert "letters, digits or underscores" in info.value.message


# --- data assets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("azureml:heart:1", DataAssetRef("heart", "1", None)),
        ("azureml:heart-data_v2.x:2024.01.31", DataAssetRef("heart-data_v2.x", "2024.01.31", None)),
        ("azureml:heart@latest", DataAssetRef("heart", None, "latest")),
        ("azureml:/heart@latest", DataAssetRef("heart", None, "latest")),
        ("azureml:/heart:3", DataAssetRef("heart", "3", None)),
        ("AzureML:heart@Latest", DataAssetRef("heart", None, "latest")),
        (f"{ARM}/workspaces/ws1/data/heart/versions/4", DataAssetRef("heart", "4", None)),
        (f"azureml:{ARM}/workspaces/ws1/data/heart/versions/4", DataAssetRef("heart", "4", None)),
        (f"{LOCATION}/data/heart/versions/5", DataAssetRef("heart", "5", None)),
        (f"{LOCATION}/data/heart/versions/labels/latest", DataAssetRef("heart", None, "latest")),
        (f"{LONG}/workspaces/ws1/data/heart/versions/6", DataAssetRef("heart", "6", None)),
        (
            f"{LONG}/providers/Microsoft.MachineLearningServices/workspaces/ws1/data/h/versions/7",
            DataAssetRef("h", "7", None),
        ),
    ],
)
def test_data_asset_forms(value: str, expected: DataAssetRef) -> None:
    assert parse_reference(value, SCOPE) == expected


@pytest.mark.parametrize(
    ("ref", "uri"),
    [
        (DataAssetRef("heart", "1", None), "azureml:heart:1"),
        (DataAssetRef("heart", None, "latest"), "azureml:heart@latest"),
    ],
)
def test_data_asset_uri_round_trips(ref: DataAssetRef, uri: str) -> None:
    assert ref.uri == uri
    assert parse_reference(uri, SCOPE) == ref


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("azureml:-heart:1", "data asset name '-heart'"),
        ("azureml:he art:1", "data asset name 'he art'"),
        (f"azureml:{'h' * 256}:1", "data asset name"),
        ("azureml::1", "data asset name ''"),
        ("azureml:heart:", "version ''"),
        ("azureml:heart:1:2", "version '1:2'"),
        ("azureml:heart:1 2", "version '1 2'"),
        (f"{ARM}/workspaces/ws1/data/heart/versions/-1", "version '-1'"),
        (f"{LOCATION}/data/heart/versions/", "version ''"),
        (f"{LOCATION}/data/he$rt/versions/1", r"data asset name 'he\$rt'"),
    ],
)
def test_invalid_asset_names_and_versions(value: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        parse_reference(value, SCOPE)
    assert repr(value) in info.value.message


@pytest.mark.parametrize(
    "value",
    [
        "azureml:heart@prod",
        "azureml:heart@",
        "azureml:/heart@v2",
        f"{LOCATION}/data/heart/versions/labels/prod",
    ],
)
def test_labels_other_than_latest_are_unsupported(value: str) -> None:
    with pytest.raises(UnsupportedError, match="'latest'") as info:
        parse_reference(value, SCOPE)
    assert repr(value) in info.value.message


@pytest.mark.parametrize(
    ("name", "version", "label"),
    [("a", None, None), ("a", "1", "latest"), ("a", None, "prod")],
)
def test_asset_refs_hold_exactly_one_of_version_and_latest(
    name: str, version: str | None, label: str | None
) -> None:
    with pytest.raises(ValueError):
        DataAssetRef(name, version, label)
    with pytest.raises(ValueError):
        ModelRef(name, version, label)


def test_data_asset_and_model_refs_differ() -> None:
    data: object = DataAssetRef("a", "1", None)
    assert data != ModelRef("a", "1", None)


# --- storage URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "https://acct.blob.core.windows.net/data/heart/heart.csv",
            ("blob", "acct", "data", "heart/heart.csv", None),
        ),
        (
            "https://acct.blob.core.windows.net/data/folder/?sv=2022&sig=a%2Bb",
            ("blob", "acct", "data", "folder/", "sv=2022&sig=a%2Bb"),
        ),
        ("https://acct.blob.core.windows.net/data", ("blob", "acct", "data", "", None)),
        (
            "https://acct.blob.core.chinacloudapi.cn/c/x.csv",
            ("blob", "acct", "c", "x.csv", None),
        ),
        (
            "HTTPS://ACCT.blob.core.windows.net/c/My%20File.csv",
            ("blob", "acct", "c", "My%20File.csv", None),
        ),
        (
            "abfss://fs@acct.dfs.core.windows.net/raw/2024/",
            ("abfss", "acct", "fs", "raw/2024/", None),
        ),
        (
            "wasbs://cont@acct.blob.core.windows.net/a/b.csv",
            ("wasbs", "acct", "cont", "a/b.csv", None),
        ),
        ("s3://bucket/key/part.parquet", ("s3", None, "bucket", "key/part.parquet", None)),
        ("s3://bucket", ("s3", None, "bucket", "", None)),
        (
            "https://example.com/datasets/heart.csv?token=x",
            ("https", None, None, "datasets/heart.csv", "token=x"),
        ),
        ("http://example.com", ("https", None, None, "", None)),
        (
            "https://acct.dfs.core.windows.net/fs/a.csv",
            ("https", None, None, "fs/a.csv", None),
        ),
    ],
)
def test_storage_urls(
    value: str, expected: tuple[str, str | None, str | None, str, str | None]
) -> None:
    ref = parse_reference(value, SCOPE)
    assert isinstance(ref, StorageUrlRef)
    assert (ref.kind, ref.account, ref.container, ref.path, ref.query) == expected
    assert ref.url == value


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("https://acct.blob.core.windows.net/", "names no container"),
        ("https:///path", "has no host"),
        ("abfss://acct.dfs.core.windows.net/x", "abfss://<container>@<account>"),
        ("abfss://fs@acct.blob.core.windows.net/x", "abfss://<container>@<account>"),
        ("wasbs://c@example.com/x", "wasbs://<container>@<account>"),
        ("s3:///key", "names no bucket"),
        ("https://[::1/x", "not a valid URL"),
    ],
)
def test_malformed_storage_urls(value: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        parse_reference(value, SCOPE)
    assert repr(value) in info.value.message


@pytest.mark.parametrize("value", ["gs://b/k", "ftp://h/x", "file:///tmp/x"])
def test_other_schemes_are_unsupported(value: str) -> None:
    with pytest.raises(UnsupportedError, match="is not supported") as info:
        parse_reference(value, SCOPE)
    assert repr(value) in info.value.message
    assert ACCEPTED_INPUT_FORMS in info.value.message


def test_adls_gen1_urls_are_refused_as_retired() -> None:
    with pytest.raises(UnsupportedError, match="retired by Microsoft") as info:
        parse_reference("adl://store.azuredatalakestore.net/x", SCOPE)
    assert "abfss://" in info.value.message and "azure_data_lake_gen2" in info.value.message


# --- blob emulator ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "endpoints", "expected"),
    [
        (
            f"{EMULATOR}/devstoreaccount1/data/a/b.csv",
            (EMULATOR,),
            ("devstoreaccount1", "data", "a/b.csv", None),
        ),
        (
            f"{EMULATOR}/devstoreaccount1/data/folder/?sv=1&sig=2",
            (f"{EMULATOR}/",),
            ("devstoreaccount1", "data", "folder/", "sv=1&sig=2"),
        ),
        (
            "http://azurite:10000/acct/c",
            ("http://other:1", "http://AZURITE:10000"),
            ("acct", "c", "", None),
        ),
    ],
)
def test_blob_emulator_urls(
    value: str, endpoints: tuple[str, ...], expected: tuple[str, str, str, str | None]
) -> None:
    ref = parse_reference(value, SCOPE, blob_emulator_endpoints=endpoints)
    assert ref == StorageUrlRef("blob", value, *expected)


def test_emulator_urls_are_plain_https_without_the_endpoint() -> None:
    ref = parse_reference(f"{EMULATOR}/devstoreaccount1/data/a.csv", SCOPE)
    assert isinstance(ref, StorageUrlRef)
    assert ref.kind == "https"


@pytest.mark.parametrize(
    "value", [EMULATOR, f"{EMULATOR}/", f"{EMULATOR}/acct", f"{EMULATOR}/acct/"]
)
def test_emulator_urls_need_account_and_container(value: str) -> None:
    with pytest.raises(ValidationError, match="<account>/<container>/<path>") as info:
        parse_reference(value, SCOPE, blob_emulator_endpoints=(EMULATOR,))
    assert repr(value) in info.value.message


# --- local paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["data/heart.csv", "./data/", "/home/me/data", "C:\\data\\heart.csv", "heart:1", "~/x@y"],
)
def test_local_paths(value: str) -> None:
    assert parse_reference(value, SCOPE) == LocalPathRef(value)


# --- workspace and malformed values ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        f"{ARM}/workspaces/other/datastores/s/paths/a",
        f"azureml:{ARM}/workspaces/other/data/heart/versions/1",
        "azureml://subscriptions/sub-1/resourceGroups/rg-1/workspaces/other/datastores/s/paths/a",
        "azureml://locations/westeurope/workspaces/other/data/heart/versions/labels/latest",
    ],
)
def test_other_workspace_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="'other'") as info:
        parse_reference(value, SCOPE)
    assert "this server serves workspace 'ws1'" in info.value.message
    assert repr(value) in info.value.message


@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
def test_empty_values_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="is empty"):
        parse_reference(value, SCOPE)
    with pytest.raises(ValidationError, match="is empty"):
        parse_model_reference(value, SCOPE)


@pytest.mark.parametrize(
    "value",
    [
        "azureml:heart",
        "azureml:",
        "azureml:heart:1@latest",
        "azureml:a/b:1",
        "azureml://heart@latest",
        "azureml://datastores/s",
        "azureml://datastores/s/files/a",
        "azureml://registries/reg/data/heart/versions/1",
        "azureml://locations/westeurope/data/heart/versions/1",
        "azureml:/subscriptions/x",
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices",
        f"{ARM}/workspaces/ws1/datastores/s",
        f"{ARM}/workspaces/ws1/data/heart",
        f"{ARM}/workspaces/ws1/jobs/j1",
        f"{LOCATION}/data/heart/versions/1/extra",
    ],
)
def test_unrecognised_azureml_forms_list_the_accepted_forms(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_reference(value, SCOPE)
    assert not isinstance(info.value, UnsupportedError)
    assert repr(value) in info.value.message
    assert ACCEPTED_INPUT_FORMS in info.value.message


@pytest.mark.parametrize(
    "value",
    [f"{ARM}/workspaces/ws1/models/m/versions/1", f"{LOCATION}/models/m/versions/1"],
)
def test_model_ids_are_not_data(value: str) -> None:
    with pytest.raises(ValidationError, match="names a model"):
        parse_reference(value, SCOPE)


def test_references_are_frozen() -> None:
    refs: list[Reference | ModelRef] = [
        DatastorePathRef("s", "a", False),
        DataAssetRef("a", "1", None),
        ModelRef("m", "1", None),
        StorageUrlRef("s3", "s3://b/k", None, "b", "k", None),
        LocalPathRef("x"),
    ]
    for ref in refs:
        with pytest.raises(dataclasses.FrozenInstanceError):
            ref.path = "y"  # type: ignore[misc,union-attr]


# --- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("azureml:heart-model:1", ModelRef("heart-model", "1", None)),
        ("azureml:heart-model@latest", ModelRef("heart-model", None, "latest")),
        ("azureml:/heart-model@latest", ModelRef("heart-model", None, "latest")),
        ("heart-model:2", ModelRef("heart-model", "2", None)),
        ("heart-model@latest", ModelRef("heart-model", None, "latest")),
        (" heart.model_v1:3 ", ModelRef("heart.model_v1", "3", None)),
        (f"{ARM}/workspaces/ws1/models/m/versions/4", ModelRef("m", "4", None)),
        (f"azureml:{ARM}/workspaces/ws1/models/m/versions/4", ModelRef("m", "4", None)),
        (f"{LOCATION}/models/m/versions/5", ModelRef("m", "5", None)),
        (f"{LOCATION}/models/m/versions/labels/latest", ModelRef("m", None, "latest")),
        (f"{LONG}/workspaces/ws1/models/m/versions/6", ModelRef("m", "6", None)),
    ],
)
def test_model_forms(value: str, expected: ModelRef) -> None:
    assert parse_model_reference(value, SCOPE) == expected


def test_model_uri_round_trips() -> None:
    ref = ModelRef("m", "3", None)
    assert ref.uri == "azureml:m:3"
    assert parse_model_reference(ref.uri, SCOPE) == ref


@pytest.mark.parametrize(
    "value",
    [
        "heart-model",
        "azureml:heart-model",
        "/heart-model@latest",
        "./model",
        "azureml://datastores/s/paths/model/",
        f"{ARM}/workspaces/ws1/data/heart/versions/1",
        f"{ARM}/workspaces/ws1/models/m",
        "https://acct.blob.core.windows.net/c/model.pkl",
        "azureml://registries/r/models/m/versions/1",
    ],
)
def test_unrecognised_model_forms(value: str) -> None:
    with pytest.raises(ValidationError, match="is not a model reference") as info:
        parse_model_reference(value, SCOPE)
    assert repr(value) in info.value.message
    assert ACCEPTED_MODEL_FORMS in info.value.message


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("azureml:heart-model@prod", UnsupportedError, "'prod'"),
        ("-model:1", ValidationError, "model name '-model'"),
        ("model:1:2", ValidationError, "version '1:2'"),
        (f"{ARM}/workspaces/other/models/m/versions/1", ValidationError, "serves workspace 'ws1'"),
    ],
)
def test_invalid_model_references(value: str, error: type[ValidationError], match: str) -> None:
    with pytest.raises(error, match=match):
        parse_model_reference(value, SCOPE)


def test_workspace_scope_is_named_by_its_path_coordinates() -> None:
    scope = WorkspaceScope(subscription_id="sub", resource_group="Group", workspace_name="ws")
    assert scope.is_named("sub", "group", "ws")
    assert scope.is_named("sub", "GROUP", "ws")
    assert not scope.is_named("other", "group", "ws")
    assert not scope.is_named("sub", "other", "ws")
    assert not scope.is_named("sub", "group", "WS")
