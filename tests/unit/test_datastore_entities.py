"""The SDK's datastore entities and the datastore YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.entities import (
    AccessKeyConfiguration,
    AccountKeyConfiguration,
    AzureBlobDatastore,
    AzureDataLakeGen2Datastore,
    Datastore,
    LocalDatastore,
    S3Datastore,
    SasTokenConfiguration,
)
from sluiceway.errors import ValidationError
from sluiceway.schemas.datastores import DatastoreCreate
from sluiceway.sdk.datastore_operations import load_datastore


def test_azure_entities_carry_their_credentials_to_the_server() -> None:
    store = AzureBlobDatastore(
        name="blob_example",
        account_name="mytestblobstore",
        container_name="data-container",
        credentials=AccountKeyConfiguration(account_key="k=="),
    )
    body = store._to_create_body()
    assert body == {
        "name": "blob_example",
        "type": "azure_blob",
        "account_name": "mytestblobstore",
        "container_name": "data-container",
        "credentials": {"account_key": "k=="},
    }
    DatastoreCreate.model_validate(body)
    gen2 = AzureDataLakeGen2Datastore(
        name="adls", account_name="a", filesystem="fs", credentials=SasTokenConfiguration("?sv=1")
    )
    assert gen2._to_create_body()["filesystem"] == "fs"
    assert gen2._to_create_body()["credentials"] == {"sas_token": "?sv=1"}
    s3 = S3Datastore(name="s3", bucket="b", credentials=AccessKeyConfiguration("id", "secret"))
    assert s3._to_create_body()["credentials"] == {
        "access_key_id": "id",
        "secret_access_key": "secret",
    }
    assert LocalDatastore(name="l", root="/data")._to_create_body()["root"] == "/data"
    assert "credentials" not in repr(store)


def test_the_server_answer_becomes_the_matching_class() -> None:
    answer = {
        "id": "/subscriptions/s/resourceGroups/r/providers/x/workspaces/w/datastores/b",
        "name": "b",
        "type": "azure_blob",
        "account_name": "acct",
        "container_name": "c",
        "credentials": {"type": "account_key"},
        "is_default": False,
    }
    store = Datastore._from_rest(answer)
    assert isinstance(store, AzureBlobDatastore)
    assert (store.account_name, store.container_name, store.credentials) == ("acct", "c", None)
    assert store.id is not None and store.id.endswith("/datastores/b")
    assert store._to_dict() == answer


def test_datastore_yaml(tmp_path: Path) -> None:
    path = tmp_path / "s3.yml"
    path.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/azureBlob.schema.json\n"
        "name: s3_example\ntype: s3\nbucket: my-bucket\nendpoint_url: http://127.0.0.1:9000\n"
        "credentials:\n  access_key_id: id\n  secret_access_key: secret\n"
    )
    store = load_datastore(path)
    assert isinstance(store, S3Datastore)
    assert store._to_create_body()["endpoint_url"] == "http://127.0.0.1:9000"
    path.write_text("name: x\ntype: azure_blob\naccount: a\n")
    with pytest.raises(ValidationError, match="unknown keys account"):
        load_datastore(path)
    path.write_text("- not a mapping\n")
    with pytest.raises(ValidationError, match="mapping"):
        load_datastore(path)
    with pytest.raises(ValidationError, match="does not exist"):
        load_datastore(tmp_path / "missing.yml")
