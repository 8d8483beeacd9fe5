"""``azure_blob``: a container of an Azure storage account (``account_name``, ``container_name``).

Credentials: ``account_key``, ``sas_token``, or none for a public container (read-only).
"""

from __future__ import annotations

from typing import Any

from sluiceway.storage.datastores.azure import AzureContainerDatastore
from sluiceway.storage.datastores.base import ClientSettings, DatastoreType

CONFIG_KEYS = ("account_name", "container_name", "endpoint", "protocol")


def open_azure_blob(
    config: dict[str, Any], credentials: dict[str, Any] | None, client: ClientSettings
) -> AzureContainerDatastore:
    return AzureContainerDatastore.open(
        DatastoreType.AZURE_BLOB, "container_name", config, credentials, client
    )
