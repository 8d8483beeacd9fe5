"""Registered computes: named Ray clusters that deployments' jobs run on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from sluiceway.clock import as_utc, utcnow
from sluiceway.store.db import Database
from sluiceway.store.tables import ComputeRow, new_id, text_map


@dataclass(frozen=True)
class ComputeRecord:
    name: str
    id: str
    type: str
    address: str
    description: str | None
    tags: dict[str, str]
    created_at: datetime
    created_by: str


def _record(row: ComputeRow) -> ComputeRecord:
    return ComputeRecord(
        name=row.name,
        id=row.id,
        type=row.type,
        address=row.address,
        description=row.description,
        tags=text_map(row.tags),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
    )


class ComputeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> ComputeRecord | None:
        with self._db.reading() as s:
            row = s.get(ComputeRow, name)
            return _record(row) if row else None

    def list(self) -> list[ComputeRecord]:
        with self._db.reading() as s:
            return [_record(r) for r in s.scalars(select(ComputeRow).order_by(ComputeRow.name))]

    def put(
        self,
        name: str,
        *,
        type_: str,
        address: str,
        description: str | None,
        tags: dict[str, str],
        created_by: str,
    ) -> tuple[ComputeRecord, bool]:
        """Create the compute, or replace its settings (its id and creation stay); the record
        and whether it was new."""
        with self._db.session() as s:
            row = s.get(ComputeRow, name)
            created = row is None
            if row is None:
                row = ComputeRow(name=name, id=new_id(), created_at=utcnow(), created_by=created_by)
                s.add(row)
            row.type = type_
            row.address = address
            row.description = description
            row.tags = dict(tags)
            s.flush()
            return _record(row), created

    def delete(self, name: str) -> bool:
        with self._db.session() as s:
            row = s.get(ComputeRow, name)
            if row is None:
                return False
            s.delete(row)
            return True
