"""Environment versions, by name and version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from sluiceway.clock import as_utc, utcnow
from sluiceway.store.db import Database
from sluiceway.store.tables import EnvironmentVersionRow
from sluiceway.store.versioned import (
    latest_row,
    newest_rows,
    next_number,
    next_seq,
    version_rows,
    with_version,
)


@dataclass(frozen=True)
class EnvironmentRecord:
    name: str
    version: str
    spec: dict[str, Any]
    content: dict[str, Any]
    content_hash: str
    archived: bool
    created_at: datetime
    created_by: str


def _record(row: EnvironmentVersionRow) -> EnvironmentRecord:
    return EnvironmentRecord(
        row.name,
        row.version,
        dict(row.spec),
        dict(row.content),
        row.content_hash,
        bool(row.archived),
        as_utc(row.created_at),
        row.created_by,
    )


class EnvironmentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str, version: str) -> EnvironmentRecord | None:
        with self._db.reading() as s:
            row = s.get(EnvironmentVersionRow, (name, version))
            return _record(row) if row else None

    def latest(self, name: str) -> EnvironmentRecord | None:
        """The newest version that is not archived."""
        with self._db.reading() as s:
            row = latest_row(
                s,
                EnvironmentVersionRow,
                EnvironmentVersionRow.name == name,
                ~EnvironmentVersionRow.archived,
            )
            return _record(row) if row else None

    def versions(self, name: str) -> list[EnvironmentRecord]:
        with self._db.reading() as s:
            rows = version_rows(s, EnvironmentVersionRow, EnvironmentVersionRow.name == name)
            return [_record(r) for r in rows]

    def list_latest(self, *, archived: bool = False) -> list[EnvironmentRecord]:
        """The newest version of each name (archived ones only when asked)."""
        where = [] if archived else [~EnvironmentVersionRow.archived]
        with self._db.reading() as s:
            return [_record(r) for r in newest_rows(s, EnvironmentVersionRow, *where)]

    def content_hashes(self) -> set[str]:
        with self._db.reading() as s:
            return set(s.scalars(select(EnvironmentVersionRow.content_hash).distinct()))

    def create(
        self,
        name: str,
        version: str | None,
        spec: dict[str, Any],
        content: dict[str, Any],
        content_hash: str,
        created_by: str,
    ) -> tuple[EnvironmentRecord, bool]:
        """Add a version. Returns the stored record and whether it was new.

        Without ``version``: the latest version when its spec is the same (nothing new), else
        one more than the highest numeric version. With ``version``: an existing version is
        returned as it is (the caller compares the specs: versions do not change).
        """
        with self._db.session() as s:
            rows = s.scalars(
                select(EnvironmentVersionRow).where(EnvironmentVersionRow.name == name)
            ).all()
            if version is None:
                latest = max((r for r in rows if not r.archived), key=lambda r: r.seq, default=None)
                if latest is not None and latest.spec == spec:
                    return _record(latest), False
                version = next_number(rows)
            existing = with_version(rows, version)
            if existing is not None:
                return _record(existing), False
            row = EnvironmentVersionRow(
                name=name,
                version=version,
                seq=next_seq(rows),
                spec=spec,
                content=content,
                content_hash=content_hash,
                archived=False,
                created_at=utcnow(),
                created_by=created_by,
            )
            s.add(row)
            s.flush()
            return _record(row), True

    def set_archived(self, name: str, version: str | None, archived: bool) -> int:
        """Archive (or restore) one version, or every version of ``name``; how many rows."""
        with self._db.session() as s:
            query = select(EnvironmentVersionRow).where(EnvironmentVersionRow.name == name)
            if version is not None:
                query = query.where(EnvironmentVersionRow.version == version)
            rows = s.scalars(query).all()
            for row in rows:
                row.archived = archived
            return len(rows)

    def delete(self, name: str, version: str | None) -> int:
        with self._db.session() as s:
            query = delete(EnvironmentVersionRow).where(EnvironmentVersionRow.name == name)
            if version is not None:
                query = query.where(EnvironmentVersionRow.version == version)
            return int(s.execute(query).rowcount or 0)  # type: ignore[attr-defined]
