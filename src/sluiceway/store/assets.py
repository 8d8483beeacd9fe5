"""Datastores, versioned assets (data and models) and finished local uploads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select

from sluiceway.clock import as_utc, utcnow
from sluiceway.store.db import Database
from sluiceway.store.tables import (
    AssetVersionRow,
    DatastoreRow,
    FileWriterRow,
    RoleAssignmentRow,
    UploadRow,
    new_id,
    text_map,
    text_or_none,
)
from sluiceway.store.versioned import (
    latest_row,
    newest_rows,
    next_number,
    next_seq,
    version_rows,
    with_version,
)


@dataclass(frozen=True)
class DatastoreRecord:
    name: str
    type: str
    description: str | None
    tags: dict[str, Any]
    config: dict[str, Any]
    secret: str | None
    is_default: bool
    created_at: datetime
    created_by: str
    id: str = ""  # immutable: what role assignments on the datastore reference


@dataclass(frozen=True)
class AssetRecord:
    kind: str
    name: str
    version: str
    type: str
    path: str
    description: str | None
    tags: dict[str, Any]
    properties: dict[str, Any]
    created_at: datetime
    created_by: str


def _datastore(row: DatastoreRow) -> DatastoreRecord:
    return DatastoreRecord(
        row.name,
        row.type,
        text_or_none(row.description),
        text_map(row.tags),
        dict(row.config),
        row.secret,
        row.is_default,
        as_utc(row.created_at),
        row.created_by,
        row.id,
    )


def _asset(row: AssetVersionRow) -> AssetRecord:
    return AssetRecord(
        row.kind,
        row.name,
        row.version,
        row.type,
        row.path,
        text_or_none(row.description),
        text_map(row.tags),
        text_map(row.properties),
        as_utc(row.created_at),
        row.created_by,
    )


def _named(kind: str, name: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return AssetVersionRow.kind == kind, AssetVersionRow.name == name


class DatastoreStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> DatastoreRecord | None:
        with self._db.reading() as s:
            row = s.get(DatastoreRow, name)
            return _datastore(row) if row else None

    def list_all(self) -> list[DatastoreRecord]:
        with self._db.reading() as s:
            return [
                _datastore(r) for r in s.scalars(select(DatastoreRow).order_by(DatastoreRow.name))
            ]

    def put(self, record: DatastoreRecord) -> DatastoreRecord:
        """Insert or replace a datastore; a replaced one keeps its id (and the roles on it)."""
        with self._db.session() as s:
            row = s.get(DatastoreRow, record.name)
            if row is None:
                row = DatastoreRow(name=record.name, id=new_id())
                s.add(row)
            row.type = record.type
            row.description = record.description
            row.tags = record.tags
            row.config = record.config
            row.secret = record.secret
            row.is_default = record.is_default
            row.created_at = record.created_at
            row.created_by = record.created_by
            s.flush()
            return _datastore(row)

    def delete(self, name: str) -> bool:
        """Remove a datastore's row, the roles granted on it and the record of who wrote its
        files (a new datastore of the same name starts with neither); False when there was
        none."""
        with self._db.session() as s:
            row = s.get(DatastoreRow, name)
            if row is None:
                return False
            s.execute(delete(RoleAssignmentRow).where(RoleAssignmentRow.resource_id == row.id))
            s.execute(delete(FileWriterRow).where(FileWriterRow.datastore == name))
            s.delete(row)
        return True


class AssetStore:
    """Versions of data assets (``kind="data"``) and models (``kind="model"``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, kind: str, name: str, version: str) -> AssetRecord | None:
        with self._db.reading() as s:
            row = s.get(AssetVersionRow, (kind, name, version))
            return _asset(row) if row else None

    def latest(self, kind: str, name: str) -> AssetRecord | None:
        with self._db.reading() as s:
            row = latest_row(s, AssetVersionRow, *_named(kind, name))
            return _asset(row) if row else None

    def versions(self, kind: str, name: str) -> list[AssetRecord]:
        with self._db.reading() as s:
            return [_asset(r) for r in version_rows(s, AssetVersionRow, *_named(kind, name))]

    def list_latest(self, kind: str) -> list[AssetRecord]:
        with self._db.reading() as s:
            rows = newest_rows(s, AssetVersionRow, AssetVersionRow.kind == kind)
            return [_asset(r) for r in rows]

    def create(self, record: AssetRecord, *, auto_version: bool) -> tuple[AssetRecord, bool]:
        """Add a version. Returns the stored record and whether it was new.

        With ``auto_version`` the version is one more than the highest numeric version of the
        name. An existing version with the same content is returned as is (not new); one with
        other content is left alone and returned for the caller to refuse.
        """
        with self._db.session() as s:
            rows = s.scalars(select(AssetVersionRow).where(*_named(record.kind, record.name))).all()
            version = record.version
            if auto_version:
                version = next_number(rows)
            existing = with_version(rows, version)
            if existing is not None:
                return _asset(existing), False
            row = AssetVersionRow(
                kind=record.kind,
                name=record.name,
                version=version,
                seq=next_seq(rows),
                type=record.type,
                path=record.path,
                description=record.description,
                tags=record.tags,
                properties=record.properties,
                created_at=utcnow(),
                created_by=record.created_by,
            )
            s.add(row)
            s.flush()
            return _asset(row), True

    def get_upload(self, content_hash: str, name: str | None = None) -> tuple[str, str] | None:
        """The name and path of a recorded upload of ``content_hash`` (named ``name``)."""
        query = select(UploadRow).where(UploadRow.hash == content_hash)
        if name is not None:
            query = query.where(UploadRow.name == name)
        with self._db.reading() as s:
            row = s.scalars(query).first()
            return (row.name, row.path) if row else None

    def put_upload(self, content_hash: str, name: str, path: str) -> None:
        """Record an upload; one recorded meanwhile under the same hash and name is kept."""
        with self._db.session() as s:
            if s.get(UploadRow, (content_hash, name)) is None:
                s.add(UploadRow(hash=content_hash, name=name, path=path, created_at=utcnow()))
