"""``ml_client.datastores``: the storage locations the server knows."""

from __future__ import annotations

from sluiceway.entities.assets import Datastore
from sluiceway.schemas.common import DEFAULT_DATASTORE
from sluiceway.sdk.connection import Connection, segment


class DatastoreOperations:
    """Read the datastores; registering one is the server's administrator's job."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, name: str) -> Datastore:
        """Raises ``ResourceNotFoundError`` when there is no datastore ``name``."""
        return Datastore._from_rest(
            self._connection.request("GET", f"/datastores/{segment(name)}", expected=(200,))
        )

    def list(self) -> list[Datastore]:
        answer = self._connection.request("GET", "/datastores", expected=(200,))
        return [Datastore._from_rest(item) for item in answer or []]

    def get_default(self) -> Datastore:
        """The default datastore (``workspaceblobstore`` unless the server says otherwise)."""
        for store in self.list():
            if store.is_default:
                return store
        return self.get(DEFAULT_DATASTORE)
