"""How the Azure ML dialect shows a datastore to azure-ai-ml: an Azure store served over https
with an ``accountName`` that makes the SDK's blob URL that store's, anything else as a
container of the server's blob face."""

from __future__ import annotations

import pytest

from sluiceway.schemas.datastores import DatastoreOut
from sluiceway.server.arm.management import blob_face, direct_url
from sluiceway.server.arm.shapes import STORAGE_SUFFIX, sdk_account_name

STORAGE_URL = "https://{}.blob.{}"  # azure-ai-ml's STORAGE_ACCOUNT_URLS["AzureBlob"]


def store(**fields: object) -> DatastoreOut:
    base: dict[str, object] = {
        "name": "workspaceblobstore",
        "id": "/subscriptions/s/resourceGroups/g/providers/x/workspaces/w/datastores/d",
        "type": "azure_blob",
        "account_name": "acct",
        "container_name": "c",
    }
    return DatastoreOut.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({}, "https://acct.blob.core.windows.net"),
        ({"endpoint": "core.chinacloudapi.cn"}, "https://acct.blob.core.chinacloudapi.cn"),
        (
            {"account_name": "devstoreaccount1", "endpoint": "https://127.0.0.1:10000"},
            "https://127.0.0.1:10000/devstoreaccount1",
        ),
    ],
)
def test_an_https_azure_store_is_reached_directly_at_its_own_url(
    fields: dict[str, object], url: str
) -> None:
    out = store(**fields)
    assert not blob_face(out) and direct_url(out) == url
    built = STORAGE_URL.format(sdk_account_name(url), STORAGE_SUFFIX)
    assert built.split("#")[0] == url


@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "http"},
        {"account_name": "devstoreaccount1", "endpoint": "http://127.0.0.1:10000"},
        {"type": "local", "account_name": None, "container_name": None, "root": "/data"},
        {"type": "s3", "account_name": None, "container_name": None, "bucket": "b"},
    ],
)
def test_other_stores_are_served_through_the_blob_face(fields: dict[str, object]) -> None:
    assert blob_face(store(**fields))
