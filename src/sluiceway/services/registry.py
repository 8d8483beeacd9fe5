"""Registering a model's or some code's files: they are copied into the registry, where no
caller can write, and their manifest is recorded (see :mod:`sluiceway.storage.snapshots`)."""

from __future__ import annotations

from sluiceway.auth.principals import Principal
from sluiceway.errors import ConflictError, ValidationError
from sluiceway.schemas.common import DEFAULT_DATASTORE
from sluiceway.services.datastores import DatastoreService, storage_call
from sluiceway.storage.locations import Location
from sluiceway.storage.references import DatastorePathRef, StorageUrlRef
from sluiceway.storage.snapshots import (
    SnapshotMismatch,
    copy_snapshot,
    read_manifest,
    snapshot_of,
)
from sluiceway.store.files import SnapshotStore


class Registry:
    def __init__(self, store: SnapshotStore, datastores: DatastoreService) -> None:
        self._store = store
        self._datastores = datastores

    def register(self, path: str, principal: Principal, *, target: str) -> str:
        """Copy the file or folder at ``path`` (a datastore path or a storage URL) into the
        registry; return the snapshot's URI (ending in ``/`` for a folder).

        Already registered files (a snapshot's URI, as a deployment shows it) are kept as they
        are.

        Raises:
            ValidationError: ``path`` is not in a datastore, or holds no files.
            ConflictError: a file changed while it was being copied.
        """
        ref = self._datastores.parse_reference(path)
        if isinstance(ref, DatastorePathRef):
            source = self._datastores.location(ref.datastore, ref.path)
        elif isinstance(ref, StorageUrlRef):
            source = self._datastores.url_location(ref)
        else:
            raise ValidationError(
                f"{target} {path!r} must be a datastore path or a storage URL.", target=target
            )
        is_dir = storage_call(f"{target} {path!r}", target, source.is_dir)
        if source.datastore == DEFAULT_DATASTORE and source.url is None:
            found = snapshot_of(source.path)
            if found is not None and self._store.files(found[0]) is not None:
                return _uri(source, is_dir)
        if not storage_call(f"{target} {path!r}", target, source.holds_files):
            raise ValidationError(f"{target} {path!r} holds no files.", target=target)
        manifest = storage_call(f"{target} {path!r}", target, lambda: read_manifest(source))
        registry = self._datastores.location(DEFAULT_DATASTORE, "")

        def copy() -> Location:
            try:
                return copy_snapshot(source, manifest, registry)
            except SnapshotMismatch as exc:
                raise ConflictError(f"{target}: {exc} Register it again.", target=target) from None

        snapshot = storage_call(f"the registry's copy of {path!r}", target, copy, writing=True)
        self._store.put(manifest.digest, manifest.to_json(), principal.name)
        return _uri(snapshot, is_dir)


def _uri(location: Location, is_dir: bool) -> str:
    return location.uri + ("/" if is_dir else "")
