"""Writing files through the API: where a caller may write, and what it may replace.

- The job folders (``azureml/``) and the registry (``azureml-registry/``) of the default
  datastore are the server's (:mod:`sluiceway.storage.reserved`): no caller writes there.
- ``LocalUpload/<hash>/`` is write-once: a file there is never replaced, and nothing is added
  once the upload of ``<hash>`` is recorded.
- Elsewhere an existing file is replaced only by the identity that wrote it through the API,
  and only when it asks to (``overwrite``).

Writing the very bytes a file already holds changes nothing and is accepted, so that an upload
that stopped midway can be sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO

from sluiceway.auth.principals import Principal
from sluiceway.errors import ConflictError, PermissionDeniedError, ValidationError
from sluiceway.services.datastores import DatastoreService, storage_call
from sluiceway.storage.locations import Location
from sluiceway.storage.reserved import server_owned, upload_of
from sluiceway.store.assets import AssetStore
from sluiceway.store.files import FileWriterStore

_CHUNK = 1 << 20


class FileService:
    def __init__(
        self, datastores: DatastoreService, writers: FileWriterStore, uploads: AssetStore
    ) -> None:
        self._datastores = datastores
        self._writers = writers
        self._uploads = uploads

    def write(
        self, datastore: str, path: str, body: IO[bytes], principal: Principal, *, overwrite: bool
    ) -> tuple[str, int]:
        """Write ``body`` (a seekable file) to ``path``; return the normalised path and size.

        Raises:
            PermissionDeniedError: ``path`` is a job's folder or the registry.
            ConflictError: the file exists and may not be replaced, or ``path`` is in a
                finished upload.
        """
        location = self._datastores.location(datastore, path)
        if not location.path:
            raise ValidationError("A file path inside the datastore is needed.", target="path")
        owner = server_owned(datastore, location.path)
        if owner is not None:
            raise PermissionDeniedError(
                f"Identity {principal.name!r} may not write {location.uri}: it is in {owner}. "
                "Write to another path (for example data/...).",
                target="path",
            )
        upload = upload_of(datastore, location.path)
        if upload is not None and self._uploads.get_upload(*upload) is not None:
            raise ConflictError(
                f"{location.uri} is in the finished upload LocalUpload/{'/'.join(upload)}, "
                "which is write-once: changed content is uploaded under its own hash.",
                target="path",
            )
        exists = storage_call(location.uri, "path", location.is_file)
        if exists:
            if _same_bytes(location, body):
                return location.path, _size(body)
            if upload is not None:
                raise ConflictError(
                    f"{location.uri} already exists with other content, and LocalUpload/ is "
                    "write-once: changed content is uploaded under its own hash.",
                    target="path",
                )
            if self._writers.writer(datastore, location.path) != principal.id:
                raise ConflictError(
                    f"{location.uri} already exists and identity {principal.name!r} did not "
                    "write it: a file is replaced only by the identity that wrote it. Write to "
                    "another path.",
                    target="path",
                )
            if not overwrite:
                raise ConflictError(
                    f"{location.uri} already exists; to replace it, write it again with "
                    "?overwrite=true.",
                    target="path",
                )
        body.seek(0)

        def write() -> int:
            try:
                return location.write_stream(_chunks(body), overwrite=exists)
            except FileExistsError:
                raise ConflictError(
                    f"{location.uri} was created by another request meanwhile; it is not replaced.",
                    target="path",
                ) from None

        size = storage_call(location.uri, "path", write, writing=True)
        self._writers.put(datastore, location.path, principal.id)
        return location.path, size


def _chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(_CHUNK):
        yield chunk


def _size(fh: IO[bytes]) -> int:
    fh.seek(0, 2)
    return fh.tell()


def _same_bytes(location: Location, body: IO[bytes]) -> bool:
    """Whether the stored file holds exactly ``body``'s bytes."""
    size = _size(body)

    def stored() -> bytes | None:
        if int(location.backend.fs.size(location.full_path)) != size:
            return None
        digest = hashlib.sha256()
        for chunk in location.iter_bytes(_CHUNK):
            digest.update(chunk)
        return digest.digest()

    theirs = storage_call(location.uri, "path", stored)
    if theirs is None:
        return False
    body.seek(0)
    ours = hashlib.sha256()
    for chunk in _chunks(body):
        ours.update(chunk)
    return ours.digest() == theirs
