"""Datastore types: one module per type, looked up by ``DatastoreType`` in a registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluiceway.errors import UnsupportedError
from sluiceway.storage.datastores.base import DatastoreBackend, DatastoreType
from sluiceway.storage.datastores.local import LocalDatastore

BackendFactory = Callable[[dict[str, Any], dict[str, Any] | None], DatastoreBackend]

_REGISTRY: dict[DatastoreType, BackendFactory] = {
    DatastoreType.LOCAL: LocalDatastore.from_config,
}


def open_backend(
    type_name: str, config: dict[str, Any], credentials: dict[str, Any] | None = None
) -> DatastoreBackend:
    """The backend for a stored datastore's type, config and (decrypted) credentials."""
    try:
        kind = DatastoreType(type_name)
    except ValueError:
        raise UnsupportedError(
            f"Datastore type {type_name!r} is not known; accepted: "
            + ", ".join(t.value for t in DatastoreType)
        ) from None
    factory = _REGISTRY.get(kind)
    if factory is None:
        raise UnsupportedError(
            f"Datastore type {kind.value!r} is not supported by this server yet; supported: "
            + ", ".join(t.value for t in _REGISTRY)
        )
    return factory(config, credentials)


__all__ = ["DatastoreBackend", "DatastoreType", "open_backend"]
