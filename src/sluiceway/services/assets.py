"""Data assets and models: versioned pointers to data in a datastore."""

from __future__ import annotations

from typing import Literal

from sluiceway.auth.policy import WORKSPACE, Action, datastore_scope
from sluiceway.auth.principals import Principal
from sluiceway.clock import utcnow
from sluiceway.errors import ConflictError, ResourceNotFoundError, ValidationError
from sluiceway.schemas.assets import DataCreate, DataOut, ModelCreate, ModelOut
from sluiceway.schemas.common import CreationContext, WorkspaceScope
from sluiceway.services.datastores import DatastoreService, storage_call
from sluiceway.storage.locations import Location
from sluiceway.storage.references import (
    DatastorePathRef,
    LocalPathRef,
    StorageUrlRef,
    parse_reference,
)
from sluiceway.store.assets import AssetRecord, AssetStore

Kind = Literal["data", "model"]
_WHAT = {"data": "Data asset", "model": "Model"}


class AssetService:
    def __init__(
        self, store: AssetStore, datastores: DatastoreService, scope: WorkspaceScope
    ) -> None:
        self._store = store
        self._datastores = datastores
        self._scope = scope

    # -- registration -----------------------------------------------------------------------

    def create_data(self, body: DataCreate, principal: Principal) -> tuple[DataOut, bool]:
        record, created = self._create(
            "data",
            body.name,
            body.version,
            body.type,
            body.path,
            body.description,
            body.tags,
            body.properties,
            principal,
        )
        return self.data_out(record), created

    def create_model(self, body: ModelCreate, principal: Principal) -> tuple[ModelOut, bool]:
        record, created = self._create(
            "model",
            body.name,
            body.version,
            body.type,
            body.path,
            body.description,
            body.tags,
            body.properties,
            principal,
        )
        return self.model_out(record), created

    def _create(
        self,
        kind: Kind,
        name: str,
        version: str | None,
        type_: str,
        path: str,
        description: str | None,
        tags: dict[str, str],
        properties: dict[str, str],
        principal: Principal,
    ) -> tuple[AssetRecord, bool]:
        path = self._check_path(kind, type_, path)
        wanted = AssetRecord(
            kind=kind,
            name=name,
            version=version or "",
            type=type_,
            path=path,
            description=description,
            tags=dict(tags),
            properties=dict(properties),
            created_at=utcnow(),
            created_by=principal.name,
        )
        record, created = self._store.create(wanted, auto_version=version is None)
        if not created and (record.path, record.type) != (wanted.path, wanted.type):
            raise ConflictError(
                f"{_WHAT[kind]} {name}:{record.version} already exists with another path or type; "
                "give a new version, or leave the version out to get the next one.",
                target="version",
            )
        return record, created

    def _check_path(self, kind: Kind, type_: str, path: str) -> str:
        ref = self._datastores.parse_reference(path)
        if isinstance(ref, LocalPathRef):
            raise ValidationError(
                f"path {path!r} is a local path: the server does not read its own disk for a "
                "caller. Upload it with the CLI or SDK (they do so for local paths), or give a "
                "datastore path azureml://datastores/<datastore>/paths/<path>.",
                target="path",
            )
        if isinstance(ref, StorageUrlRef):
            location = self._datastores.probing(self._datastores.url_location(ref))
            storage_call(f"path {path!r}", "path", lambda: _check_type(location, path, type_))
            return ref.url
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(
                f"path {path!r} must be a datastore path or a storage URL, not another asset.",
                target="path",
            )
        location = self._datastores.probing(self._datastores.location(ref.datastore, ref.path))
        is_dir = storage_call(f"path {path!r}", "path", lambda: _check_type(location, path, type_))
        return location.uri + ("/" if is_dir else "")

    # -- lookup -----------------------------------------------------------------------------

    def get(self, kind: Kind, name: str, version: str | None = None) -> AssetRecord:
        """A version, or the latest when ``version`` is None."""
        record = self._store.get(kind, name, version) if version else self._store.latest(kind, name)
        if record is None:
            which = f"{name}:{version}" if version else f"{name} (any version)"
            raise ResourceNotFoundError(f"{_WHAT[kind]} {which} does not exist.", target="name")
        return record

    def versions(self, kind: Kind, name: str) -> list[AssetRecord]:
        records = self._store.versions(kind, name)
        if not records:
            raise ResourceNotFoundError(f"{_WHAT[kind]} {name!r} does not exist.", target="name")
        return records

    def list_latest(self, kind: Kind) -> list[AssetRecord]:
        return self._store.list_latest(kind)

    # -- uploads ----------------------------------------------------------------------------

    def get_upload(self, content_hash: str, principal: Principal) -> tuple[str, str]:
        """The name and path of a finished upload.

        Raises:
            ResourceNotFoundError: no upload of that content was recorded.
            PermissionDeniedError: the caller may not read the datastore the upload is in.
        """
        found = self._store.get_upload(content_hash)
        if found is None:
            raise ResourceNotFoundError(f"No finished upload with hash {content_hash!r}.")
        ref = parse_reference(found[1], self._scope)
        scope = datastore_scope(ref.datastore) if isinstance(ref, DatastorePathRef) else WORKSPACE
        principal.require(Action.READ_DATA, scope, what=f"upload {content_hash}")
        return found

    def record_upload(self, content_hash: str, name: str, path: str, principal: Principal) -> None:
        """Remember that ``path`` holds the upload of content ``content_hash``.

        Raises:
            ValidationError: ``path`` is not an existing datastore path.
            PermissionDeniedError: the caller may not write the datastore ``path`` is in.
        """
        ref = parse_reference(path, self._scope)
        if isinstance(ref, DatastorePathRef):
            principal.require(
                Action.WRITE_DATA, datastore_scope(ref.datastore), what=f"upload {content_hash}"
            )
        if (
            not isinstance(ref, DatastorePathRef)
            or not self._datastores.location(ref.datastore, ref.path).exists()
        ):
            raise ValidationError(
                f"upload path {path!r} is not an existing datastore path.", target="path"
            )
        self._store.put_upload(content_hash, name, path)

    # -- shapes -----------------------------------------------------------------------------

    def _context(self, record: AssetRecord) -> CreationContext:
        return CreationContext(created_at=record.created_at, created_by=record.created_by)

    def data_out(self, record: AssetRecord) -> DataOut:
        return DataOut(
            id=self._scope.data_id(record.name, record.version),
            name=record.name,
            version=record.version,
            type=record.type,
            path=record.path,
            description=record.description,
            tags=record.tags,
            properties=record.properties,
            creation_context=self._context(record),
        )

    def model_out(self, record: AssetRecord) -> ModelOut:
        return ModelOut(
            id=self._scope.model_id(record.name, record.version),
            name=record.name,
            version=record.version,
            type=record.type,
            path=record.path,
            description=record.description,
            tags=record.tags,
            properties=record.properties,
            creation_context=self._context(record),
        )


def _check_type(location: Location, path: str, type_: str) -> bool:
    """That ``path`` exists and fits ``type_``; whether it is a folder."""
    if not location.exists():
        raise ValidationError(f"path {path!r} does not exist ({location.uri}).", target="path")
    is_dir = location.is_dir()
    if type_ == "uri_file" and is_dir:
        raise ValidationError(f"path {path!r} is a folder, but type is uri_file.", target="path")
    if type_ == "uri_folder" and not is_dir:
        raise ValidationError(f"path {path!r} is a file, but type is uri_folder.", target="path")
    return is_dir
