"""``azure_data_lake_gen2``: a file system of an ADLS Gen2 account (``account_name``,
``filesystem``), reached through its Blob API, which serves accounts with a hierarchical
namespace as well.

Credentials: ``account_key``, ``sas_token``, or none for a public file system (read-only).
"""

from __future__ import annotations

from typing import Any

from sluiceway.storage.datastores.azure import AzureContainerDatastore
from sluiceway.storage.datastores.base import ClientSettings, DatastoreType

CONFIG_KEYS = ("account_name", "filesystem", "endpoint", "protocol")


def open_azure_data_lake_gen2(
    config: dict[str, Any], credentials: dict[str, Any] | None, client: ClientSettings
) -> AzureContainerDatastore:
    return AzureContainerDatastore.open(
        DatastoreType.AZURE_DATA_LAKE_GEN2, "filesystem", config, credentials, client
    )
