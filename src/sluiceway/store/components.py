"""Component versions: command and pipeline components, by name and version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from sluiceway.clock import as_utc, utcnow
from sluiceway.store.db import Database
from sluiceway.store.tables import ComponentVersionRow
from sluiceway.store.versioned import (
    latest_row,
    newest_rows,
    next_number,
    next_seq,
    version_rows,
    with_version,
)


@dataclass(frozen=True)
class ComponentRecord:
    name: str
    version: str
    type: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str


def _record(row: ComponentVersionRow) -> ComponentRecord:
    return ComponentRecord(
        row.name, row.version, row.type, dict(row.spec), as_utc(row.created_at), row.created_by
    )


class ComponentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str, version: str) -> ComponentRecord | None:
        with self._db.reading() as s:
            row = s.get(ComponentVersionRow, (name, version))
            return _record(row) if row else None

    def latest(self, name: str) -> ComponentRecord | None:
        with self._db.reading() as s:
            row = latest_row(s, ComponentVersionRow, ComponentVersionRow.name == name)
            return _record(row) if row else None

    def versions(self, name: str) -> list[ComponentRecord]:
        with self._db.reading() as s:
            rows = version_rows(s, ComponentVersionRow, ComponentVersionRow.name == name)
            return [_record(r) for r in rows]

    def list_latest(self) -> list[ComponentRecord]:
        with self._db.reading() as s:
            return [_record(r) for r in newest_rows(s, ComponentVersionRow)]

    def create(
        self, name: str, version: str | None, type_: str, spec: dict[str, Any], created_by: str
    ) -> tuple[ComponentRecord, bool]:
        """Add a version. Returns the stored record and whether it was new.

        Without ``version``: the latest version when its spec is the same (nothing new), else
        one more than the highest numeric version. With ``version``: an existing version is
        returned as it is (the caller compares the specs).
        """
        with self._db.session() as s:
            rows = s.scalars(
                select(ComponentVersionRow).where(ComponentVersionRow.name == name)
            ).all()
            if version is None:
                latest = max(rows, key=lambda r: r.seq, default=None)
                if latest is not None and _same(latest.spec, spec):
                    return _record(latest), False
                version = next_number(rows)
            existing = with_version(rows, version)
            if existing is not None:
                return _record(existing), False
            row = ComponentVersionRow(
                name=name,
                version=version,
                seq=next_seq(rows),
                type=type_,
                spec={**spec, "version": version},
                created_at=utcnow(),
                created_by=created_by,
            )
            s.add(row)
            s.flush()
            return _record(row), True


def _same(stored: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether two specs are the same component, whatever their versions."""
    return {k: v for k, v in stored.items() if k != "version"} == {
        k: v for k, v in spec.items() if k != "version"
    }
