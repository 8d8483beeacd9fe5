"""``local``: a folder on the server's machine (the embedded default ``workspaceblobstore``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from sluiceway.errors import ValidationError
from sluiceway.storage.datastores.base import DatastoreType


@dataclass(frozen=True)
class LocalDatastore:
    root: Path
    type: DatastoreType = DatastoreType.LOCAL
    _fs: LocalFileSystem = field(default_factory=LocalFileSystem, repr=False)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], _credentials: dict[str, Any] | None
    ) -> LocalDatastore:
        return cls(Path(config["root"]).resolve())

    @property
    def fs(self) -> LocalFileSystem:
        return self._fs

    def local_path(self, path: str) -> Path:
        """The real path of ``path``, refusing any that leaves the root (through links too)."""
        target = (self.root / path).resolve()
        if target != self.root and self.root not in target.parents:
            raise ValidationError(f"Path {path!r} leaves the datastore's root.", target="path")
        return target

    def full_path(self, path: str) -> str:
        return str(self.local_path(path))
