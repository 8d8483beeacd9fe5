"""The queries every versioned resource shares (assets, components, environments).

Their rows are keyed by name and version; ``seq`` is the creation order within a name, so the
row with the highest ``seq`` is the latest. A resource narrows the rows with its own conditions
(an asset's kind, an environment's archived flag), passed as ``where``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from sqlalchemy import Column, ColumnElement, func, inspect, select
from sqlalchemy.orm import Session


class VersionedRow(Protocol):
    """A mapped row class with these columns (read on a row; queried through ``_columns``)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def seq(self) -> int: ...


RowT = TypeVar("RowT", bound=VersionedRow)


def _columns(model: type[VersionedRow]) -> tuple[Column[str], Column[int]]:
    """The ``name`` and ``seq`` columns of ``model``, to query by."""
    columns = inspect(model).columns
    return columns["name"], columns["seq"]


def latest_row(s: Session, model: type[RowT], *where: ColumnElement[bool]) -> RowT | None:
    """The row with the highest ``seq`` among those ``where`` holds for."""
    _, seq = _columns(model)
    return s.scalars(select(model).where(*where).order_by(seq.desc()).limit(1)).first()


def version_rows(s: Session, model: type[RowT], *where: ColumnElement[bool]) -> list[RowT]:
    """The rows ``where`` holds for, newest first."""
    _, seq = _columns(model)
    return list(s.scalars(select(model).where(*where).order_by(seq.desc())))


def newest_rows(s: Session, model: type[RowT], *where: ColumnElement[bool]) -> list[RowT]:
    """The newest row of each name among those ``where`` holds for, by name."""
    name, seq = _columns(model)
    newest = select(name, func.max(seq).label("seq")).where(*where).group_by(name).subquery()
    return list(
        s.scalars(
            select(model)
            .join(newest, (name == newest.c.name) & (seq == newest.c.seq))
            .where(*where)
            .order_by(name)
        )
    )


def next_seq(rows: Sequence[VersionedRow]) -> int:
    """The ``seq`` of a name's next version, given all its rows."""
    return max((r.seq for r in rows), default=0) + 1


def next_number(rows: Sequence[VersionedRow]) -> str:
    """One more than the highest numeric version among ``rows`` ("1" when there is none)."""
    numeric = [int(r.version) for r in rows if r.version.isdigit()]
    return str(max(numeric, default=0) + 1)


def with_version(rows: Sequence[RowT], version: str) -> RowT | None:
    """The row of ``version`` among ``rows``, if there is one."""
    return next((r for r in rows if r.version == version), None)
