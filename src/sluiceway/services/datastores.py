"""Datastores: the default ``workspaceblobstore`` and locations inside any datastore."""

from __future__ import annotations

from sluiceway.clock import utcnow
from sluiceway.errors import ResourceNotFoundError
from sluiceway.home import WorkspaceHome
from sluiceway.schemas.assets import DatastoreOut
from sluiceway.schemas.common import DEFAULT_DATASTORE, WorkspaceScope
from sluiceway.storage.datastores import open_backend
from sluiceway.storage.datastores.base import DatastoreBackend, DatastoreType
from sluiceway.storage.locations import Location
from sluiceway.storage.references import normalise_datastore_path
from sluiceway.store.assets import DatastoreRecord, DatastoreStore

HOME_ROOT = ""  # a local datastore whose root is the workspace home's blobstore/


class DatastoreService:
    def __init__(self, store: DatastoreStore, home: WorkspaceHome, scope: WorkspaceScope) -> None:
        self._store = store
        self._home = home
        self._scope = scope
        self._backends: dict[str, DatastoreBackend] = {}

    def ensure_default(self, created_by: str) -> None:
        """``workspaceblobstore`` always exists: a local folder in the workspace home."""
        self._home.blobstore.mkdir(parents=True, exist_ok=True)
        if self._store.get(DEFAULT_DATASTORE) is None:
            self._store.put(
                DatastoreRecord(
                    name=DEFAULT_DATASTORE,
                    type=DatastoreType.LOCAL.value,
                    description="The workspace's default datastore.",
                    tags={},
                    config={"root": HOME_ROOT},
                    secret=None,
                    is_default=True,
                    created_at=utcnow(),
                    created_by=created_by,
                )
            )

    def record(self, name: str) -> DatastoreRecord:
        record = self._store.get(name)
        if record is None:
            known = ", ".join(r.name for r in self._store.list_all())
            raise ResourceNotFoundError(
                f"Datastore {name!r} does not exist; known datastores: {known}.", target="datastore"
            )
        return record

    def get(self, name: str) -> DatastoreOut:
        return self._out(self.record(name))

    def list_all(self) -> list[DatastoreOut]:
        return [self._out(r) for r in self._store.list_all()]

    def backend(self, name: str) -> DatastoreBackend:
        if name not in self._backends:
            record = self.record(name)
            config = dict(record.config)
            if record.type == DatastoreType.LOCAL.value and config.get("root") == HOME_ROOT:
                config["root"] = str(self._home.blobstore)
            self._backends[name] = open_backend(record.type, config, None)
        return self._backends[name]

    def location(self, datastore: str, path: str) -> Location:
        """A normalised location; paths that would leave the datastore's root are refused."""
        relative, _ = normalise_datastore_path(path)
        return Location(datastore, relative, self.backend(datastore))

    def _out(self, record: DatastoreRecord) -> DatastoreOut:
        return DatastoreOut(
            id=self._scope.datastore_id(record.name),
            name=record.name,
            type=record.type,
            description=record.description,
            tags={k: str(v) for k, v in record.tags.items()},
            is_default=record.is_default,
        )
