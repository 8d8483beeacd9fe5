"""Datastore types: one module per type, looked up by ``DatastoreType`` in a registry.

Adding a type is one module with a factory ``(config, credentials) -> DatastoreBackend`` and
one line here; the shared conformance suite (``tests/integration/test_datastore_conformance.py``)
then runs against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluiceway.errors import UnsupportedError
from sluiceway.storage.datastores.azure_blob import open_azure_blob
from sluiceway.storage.datastores.azure_data_lake_gen2 import open_azure_data_lake_gen2
from sluiceway.storage.datastores.base import ClientSettings, DatastoreBackend, DatastoreType
from sluiceway.storage.datastores.local import LocalDatastore
from sluiceway.storage.datastores.s3 import S3Datastore
from sluiceway.storage.retired import gen1_refusal, is_gen1_type

BackendFactory = Callable[[dict[str, Any], dict[str, Any] | None, ClientSettings], DatastoreBackend]

_REGISTRY: dict[DatastoreType, BackendFactory] = {
    DatastoreType.LOCAL: LocalDatastore.from_config,
    DatastoreType.AZURE_BLOB: open_azure_blob,
    DatastoreType.AZURE_DATA_LAKE_GEN2: open_azure_data_lake_gen2,
    DatastoreType.S3: S3Datastore.from_config,
}


def datastore_type(type_name: str) -> DatastoreType:
    """The type named ``type_name``, or an error that lists the accepted ones (and, for ADLS
    Gen1, says it was retired)."""
    if is_gen1_type(type_name):
        raise gen1_refusal(f"datastore type {type_name!r}", target="type")
    try:
        return DatastoreType(type_name)
    except ValueError:
        raise UnsupportedError(
            f"Datastore type {type_name!r} is not known; accepted: "
            + ", ".join(t.value for t in DatastoreType),
            target="type",
        ) from None


def open_backend(
    type_name: str,
    config: dict[str, Any],
    credentials: dict[str, Any] | None = None,
    client: ClientSettings | None = None,
) -> DatastoreBackend:
    """The backend for a stored datastore's type, config and (decrypted) credentials.

    Opening checks the settings but reaches no storage: filesystems connect on first use, and
    each connection is checked against ``client.network`` (by default, public addresses only).
    """
    kind = datastore_type(type_name)
    factory = _REGISTRY.get(kind)
    if factory is None:
        raise UnsupportedError(
            f"Datastore type {kind.value!r} is not supported by this server yet; supported: "
            + ", ".join(t.value for t in _REGISTRY),
            target="type",
        )
    return factory(config, credentials, client or ClientSettings())


__all__ = ["ClientSettings", "DatastoreBackend", "DatastoreType", "datastore_type", "open_backend"]
