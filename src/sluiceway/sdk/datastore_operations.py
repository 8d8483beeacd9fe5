"""``ml_client.datastores``: register, show, list and delete storage locations."""

from __future__ import annotations

import os
from pathlib import Path

from sluiceway.entities.datastore import Datastore
from sluiceway.errors import ValidationError
from sluiceway.schemas.common import DEFAULT_DATASTORE
from sluiceway.schemas.datastores import DatastoreCreate
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.validate import validate_shape
from sluiceway.sdk.yaml_file import read_yaml


class DatastoreOperations:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create_or_update(self, datastore: Datastore) -> Datastore:
        """Register a datastore, or replace the settings of one; credentials are sent once and
        stored encrypted by the server (the answer does not hold them).

        Raises:
            ValidationError: a setting is missing, not of the datastore's type, or not valid.
            ConflictError: the name is the default datastore's.
        """
        if not datastore.name:
            raise ValidationError("A datastore needs a name", target="name")
        body = datastore._to_create_body()
        checked = validate_shape(DatastoreCreate, body, source=f"datastore {datastore.name!r}")
        answer = self._connection.request(
            "PUT",
            f"/datastores/{segment(datastore.name)}",
            json=checked.model_dump(mode="json", exclude_none=True, by_alias=True),
            expected=(200, 201),
        )
        return Datastore._from_rest(answer)

    def get(self, name: str) -> Datastore:
        """Raises ``ResourceNotFoundError`` when there is no datastore ``name``."""
        return Datastore._from_rest(
            self._connection.request("GET", f"/datastores/{segment(name)}", expected=(200,))
        )

    def list(self) -> list[Datastore]:
        answer = self._connection.request("GET", "/datastores", expected=(200,))
        return [Datastore._from_rest(item) for item in answer or []]

    def delete(self, name: str) -> None:
        """Forget a datastore (its files stay). Raises ``ResourceNotFoundError`` or
        ``ConflictError`` (the default datastore)."""
        self._connection.request("DELETE", f"/datastores/{segment(name)}", expected=(204,))

    def get_default(self) -> Datastore:
        """The default datastore (``workspaceblobstore`` unless the server says otherwise)."""
        for store in self.list():
            if store.is_default:
                return store
        return self.get(DEFAULT_DATASTORE)


def load_datastore(source: str | os.PathLike[str]) -> Datastore:
    """A datastore from its YAML file (Azure's datastore YAML; ``type`` picks the class).

    Raises:
        ValidationError: the file cannot be read, is not YAML, or has unknown keys.
    """
    path = Path(source)
    content = read_yaml(path, "datastore YAML").content
    if not isinstance(content, dict):
        raise ValidationError(f"{path}: a datastore YAML is a mapping", target="file")
    try:
        return Datastore._from_yaml(content)
    except TypeError as exc:
        raise ValidationError(f"{path}: {exc}", target="file") from None
