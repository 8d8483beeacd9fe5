"""Who wrote which file through the files API, and the manifests of registered files."""

from __future__ import annotations

from typing import Any

from sluiceway.clock import utcnow
from sluiceway.store.db import Database
from sluiceway.store.tables import FileWriterRow, SnapshotRow


class FileWriterStore:
    """The identity that wrote each file through the files API, by (datastore, path)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def writer(self, datastore: str, path: str) -> str | None:
        """The id of the identity that wrote the file, or None (the server, or no one known)."""
        with self._db.reading() as s:
            row = s.get(FileWriterRow, (datastore, path))
            return row.writer_id if row else None

    def put(self, datastore: str, path: str, writer_id: str) -> None:
        with self._db.session() as s:
            s.merge(
                FileWriterRow(
                    datastore=datastore, path=path, writer_id=writer_id, written_at=utcnow()
                )
            )


class SnapshotStore:
    """Manifests of registered files, by digest."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def files(self, digest: str) -> list[dict[str, Any]] | None:
        with self._db.reading() as s:
            row = s.get(SnapshotRow, digest)
            return list(row.files) if row else None

    def put(self, digest: str, files: list[dict[str, Any]], created_by: str) -> None:
        """Record a manifest; one recorded before under the same digest is the same."""
        with self._db.session() as s:
            if s.get(SnapshotRow, digest) is None:
                s.add(
                    SnapshotRow(
                        digest=digest, files=files, created_at=utcnow(), created_by=created_by
                    )
                )
