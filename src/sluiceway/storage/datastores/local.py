"""``local``: a folder on the server's machine (the embedded default ``workspaceblobstore``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
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
        target = (self.root / path.lstrip("/")).resolve()
        if target != self.root and self.root not in target.parents:
            raise ValidationError(f"Path {path!r} leaves the datastore's root.", target="path")
        return target

    def full_path(self, path: str) -> str:
        return str(self.local_path(path))

    def write_file(self, path: str, chunks: Iterable[bytes], *, overwrite: bool) -> int:
        target = self.local_path(path)
        if not overwrite and target.exists():
            raise FileExistsError(str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        size = 0
        try:
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    size += len(chunk)
            if overwrite:
                os.replace(tmp, target)
            else:
                # link() fails if the name was taken meanwhile: no job ever overwrites a file.
                os.link(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return size
