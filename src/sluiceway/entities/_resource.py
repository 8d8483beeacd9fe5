"""What every entity the SDK hands out has in common: the server's JSON, kept as it came.

An entity built in Python (``Data(name=..., path=...)``) has no server JSON; ``_to_dict`` then
describes it in the YAML shape. An entity returned by the server keeps the JSON it was read
from, so ``_to_dict`` (what ``sluice ... show`` prints) is exactly what the server said.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class RestBacked:
    """Base of the entities: keeps the raw server JSON next to the typed attributes."""

    _raw: dict[str, Any] | None = None

    def _local_dict(self) -> dict[str, Any]:
        """The entity in the YAML shape, for entities that did not come from the server."""
        return {}

    def _to_dict(self) -> dict[str, Any]:
        """The server's JSON for this entity, or its YAML shape when it was built locally."""
        if self._raw is not None:
            return copy.deepcopy(self._raw)
        return self._local_dict()

    def _keep(self, raw: Mapping[str, Any]) -> None:
        self._raw = copy.deepcopy(dict(raw))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._to_dict().items() if v not in (None, {}))
        return f"{type(self).__name__}({fields})"


@dataclass(frozen=True)
class SystemData:
    """Who created a resource and when (Azure's ``creation_context``)."""

    created_at: datetime | None = None
    created_by: str | None = None
    last_modified_at: datetime | None = None

    @classmethod
    def _from_rest(cls, raw: Any) -> SystemData | None:
        if not isinstance(raw, Mapping):
            return None
        created_by = raw.get("created_by")
        return cls(
            created_at=parse_datetime(raw.get("created_at")),
            created_by=str(created_by) if created_by is not None else None,
            last_modified_at=parse_datetime(raw.get("last_modified_at")),
        )


def parse_datetime(value: Any) -> datetime | None:
    """A datetime from the server's ISO-8601 text; None for anything else."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def str_dict(value: Any) -> dict[str, str]:
    """Tags and properties: a mapping of strings (Azure accepts any values and stringifies)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def drop_empty(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries whose value is set (not None and not an empty mapping)."""
    return {k: v for k, v in values.items() if v is not None and v != {}}
