"""Data assets and models: versioned pointers to data in a datastore."""

from __future__ import annotations

import re
from typing import Literal

from sluiceway.auth.policy import WORKSPACE, Action, datastore_scope
from sluiceway.auth.principals import Principal
from sluiceway.clock import utcnow
from sluiceway.errors import ConflictError, ResourceNotFoundError, ValidationError
from sluiceway.schemas.assets import DataCreate, DataOut, ModelCreate, ModelOut
from sluiceway.schemas.common import (
    DEFAULT_DATASTORE,
    CreationContext,
    WorkspaceScope,
    datastore_uri,
)
from sluiceway.services.datastores import DatastoreService, storage_call
from sluiceway.services.registry import Registry
from sluiceway.storage.locations import Location
from sluiceway.storage.references import (
    DatastorePathRef,
    LocalPathRef,
    StorageUrlRef,
    parse_reference,
)
from sluiceway.storage.reserved import UPLOAD_FOLDER
from sluiceway.store.assets import AssetRecord, AssetStore
from sluiceway.upload_hash import azureml_object_hash, upload_hash, upload_order

Kind = Literal["data", "model"]
_WHAT = {"data": "Data asset", "model": "Model"}
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check_upload(content_hash: str, name: str, digest: re.Pattern[str], described: str) -> None:
    """Refuse an upload's hash that is not the ``digest`` it should be, or a name that is not
    one file's or folder's."""
    if not digest.fullmatch(content_hash):
        raise ValidationError(f"upload hash {content_hash!r} is not {described}.", target="hash")
    if not name or "/" in name or name in {".", ".."}:
        raise ValidationError(
            f"upload name {name!r} must be the uploaded file's or folder's name.", target="name"
        )


class AssetService:
    def __init__(
        self,
        store: AssetStore,
        datastores: DatastoreService,
        scope: WorkspaceScope,
        registry: Registry,
    ) -> None:
        self._store = store
        self._datastores = datastores
        self._scope = scope
        self._registry = registry

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
        if kind == "model":  # a model's files are copied where no caller can change them
            path = self._registry.register(path, principal, target="path")
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

    def get_upload(
        self, content_hash: str, principal: Principal, name: str | None = None
    ) -> tuple[str, str]:
        """The name and path of a finished upload (named ``name``, if given).

        Raises:
            ResourceNotFoundError: no upload of that content was recorded.
            PermissionDeniedError: the caller may not read the datastore the upload is in.
        """
        found = self._store.get_upload(content_hash, name)
        if found is None:
            named = f" named {name!r}" if name is not None else ""
            raise ResourceNotFoundError(f"No finished upload{named} with hash {content_hash!r}.")
        ref = parse_reference(found[1], self._scope)
        scope = datastore_scope(ref.datastore) if isinstance(ref, DatastorePathRef) else WORKSPACE
        principal.require(Action.READ_DATA, scope, what=f"upload {content_hash}")
        return found

    def record_upload(self, content_hash: str, name: str, path: str, principal: Principal) -> None:
        """Remember that ``path`` holds the upload of content ``content_hash``.

        The path is ``LocalUpload/<content_hash>/<name>`` of the default datastore, as the
        SDK and CLI upload to, and its files must hash to ``content_hash`` (the SDK's hash).
        A recorded upload is never re-pointed, and its folder is write-once from then on.

        Raises:
            ValidationError: ``path`` is not that path, does not exist, or holds other content.
            PermissionDeniedError: the caller may not write the default datastore.
        """
        _check_upload(content_hash, name, _MD5, "an md5 hexdigest (32 characters 0-9a-f)")
        expected = f"{UPLOAD_FOLDER}/{content_hash}/{name}"
        ref = parse_reference(path, self._scope)
        if isinstance(ref, DatastorePathRef):
            principal.require(
                Action.WRITE_DATA, datastore_scope(ref.datastore), what=f"upload {content_hash}"
            )
        if (
            not isinstance(ref, DatastorePathRef)
            or ref.datastore != DEFAULT_DATASTORE
            or ref.path.strip("/") != expected
        ):
            raise ValidationError(
                f"upload path {path!r} is not accepted: an upload of hash {content_hash} named "
                f"{name!r} is at {datastore_uri(DEFAULT_DATASTORE, expected)}.",
                target="path",
            )
        recorded = self._store.get_upload(content_hash, name)
        if recorded is not None:
            if recorded[1].rstrip("/") != path.rstrip("/"):
                raise ConflictError(
                    f"upload {content_hash} ({name!r}) is recorded at {recorded[1]}; a recorded "
                    "upload is never re-pointed.",
                    target="path",
                )
            return
        location = self._datastores.location(ref.datastore, ref.path)
        found = storage_call(f"upload path {path!r}", "path", lambda: _upload_hash(location, name))
        if found is None:
            raise ValidationError(
                f"upload path {path!r} is not an existing datastore path.", target="path"
            )
        if found != content_hash:
            raise ValidationError(
                f"the files at {path!r} hash to {found}, not {content_hash}: an upload is "
                "recorded under the hash of its content (see sluiceway.upload_hash).",
                target="hash",
            )
        self._store.put_upload(content_hash, name, path)

    def record_azureml_upload(self, content_hash: str, name: str, principal: Principal) -> None:
        """Remember a finished upload of the azure-ai-ml SDK: ``LocalUpload/<sha256>/<name>`` of
        the default datastore, whose files must hash (as the SDK hashes) to ``content_hash``.
        From then on the folder is write-once, and the SDK, finding it confirmed, does not send
        the same content again.

        Raises:
            ValidationError: not a sha256 hash, no such upload, or other content.
            PermissionDeniedError: the caller may not write the default datastore.
        """
        _check_upload(content_hash, name, _SHA256, "a sha256 hexdigest (64 characters 0-9a-f)")
        principal.require(
            Action.WRITE_DATA, datastore_scope(DEFAULT_DATASTORE), what=f"upload {content_hash}"
        )
        folder = f"{UPLOAD_FOLDER}/{content_hash}/{name}"
        path = datastore_uri(DEFAULT_DATASTORE, folder)
        if self._store.get_upload(content_hash, name) is not None:
            return
        location = self._datastores.location(DEFAULT_DATASTORE, folder)
        found = storage_call(path, "path", lambda: _azureml_hash(location, name))
        if found is None:
            raise ValidationError(f"Nothing was uploaded to {path}.", target="path")
        if found != content_hash:
            raise ValidationError(
                f"The files at {path} hash to {found}, not {content_hash}: an upload is "
                "confirmed only under the hash of its content.",
                target="hash",
            )
        self._store.put_upload(content_hash, name, path)

    def upload_confirmed(self, content_hash: str, name: str) -> bool:
        """Whether the upload ``LocalUpload/<content_hash>/<name>`` was recorded as finished."""
        return self._store.get_upload(content_hash, name) is not None

    # -- shapes -----------------------------------------------------------------------------

    def _context(self, record: AssetRecord) -> CreationContext:
        return CreationContext(created_at=record.created_at, created_by=record.created_by)

    def out(self, record: AssetRecord) -> DataOut | ModelOut:
        """The record as the API shows a version of its kind."""
        return self.data_out(record) if record.kind == "data" else self.model_out(record)

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


def _upload_hash(location: Location, name: str) -> str | None:
    """The upload hash of the file or folder at ``location``; None if there is nothing."""
    if location.is_file():
        return upload_hash([(name, location.iter_bytes())], is_folder=False)
    if not location.is_dir():
        return None
    entries = sorted(location.list_files(), key=lambda e: upload_order(e.path))
    return upload_hash(
        ((e.path, location.child(e.path).iter_bytes()) for e in entries), is_folder=True
    )


def _azureml_hash(location: Location, name: str) -> str | None:
    """azure-ai-ml's hash of the file or folder at ``location``; None if there is nothing."""
    if location.is_file():
        return azureml_object_hash([(name, location.iter_bytes())], is_folder=False)
    if not location.is_dir():
        return None
    entries = location.list_files()
    return azureml_object_hash(
        ((e.path, location.child(e.path).iter_bytes()) for e in entries), is_folder=True
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
