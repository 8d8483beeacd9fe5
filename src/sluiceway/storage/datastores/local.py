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
from sluiceway.storage.paths import ACCEPTED_PATHS, check_relative_path


@dataclass(frozen=True)
class LocalDatastore:
    root: Path
    type: DatastoreType = DatastoreType.LOCAL
    _fs: LocalFileSystem = field(default_factory=LocalFileSystem, repr=False)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], _credentials: dict[str, Any] | None, _client: Any = None
    ) -> LocalDatastore:
        return cls(Path(config["root"]).resolve())

    def probing(self, timeout: float) -> LocalDatastore:
        return self

    @property
    def fs(self) -> LocalFileSystem:
        return self._fs

    @property
    def service_url(self) -> None:
        return None

    def local_path(self, path: str) -> Path:
        """The real path of ``path``, refusing any that leaves the root, through links too.

        Raises:
            ValidationError: ``path`` is not a datastore path (see
                :func:`~sluiceway.storage.paths.check_relative_path`), or its real path, with
                every symbolic link resolved, is outside the datastore's root.
        """
        relative, _ = check_relative_path(path, leading_slash=True)
        target = (self.root / relative).resolve()
        if target != self.root and self.root not in target.parents:
            raise ValidationError(
                f"The path {path!r} is not accepted: a symbolic link takes it out of the "
                f"datastore's root. Give {ACCEPTED_PATHS}, whose real path stays inside it.",
                target="path",
            )
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


ROOTS_SETTING = "SLUICEWAY_LOCAL_DATASTORE_ROOTS"


def check_root(
    root: str | None, *, allowed: tuple[Path, ...], home: Path, reserved: tuple[Path, ...]
) -> Path:
    """Check where a local datastore may be: an existing folder inside one of ``allowed``.

    Args:
        root: The datastore's ``root`` as given.
        allowed: The folders of ``SLUICEWAY_LOCAL_DATASTORE_ROOTS`` (by default the home).
        home: The workspace home, whose own files (keys, tokens, the database) no datastore
            may reach.
        reserved: Folders in the home that belong to the server (the default datastore's
            folder, the staging folder): no datastore may hold or lie inside them.

    Returns:
        The root's real path.

    Raises:
        ValidationError: naming the root, what is wrong and which setting allows more.
    """
    if not root or not Path(root).is_absolute():
        raise ValidationError(
            f"root {root!r} is not accepted: a local datastore needs an absolute folder.",
            target="root",
        )
    path = Path(root).resolve()
    if not path.is_dir():
        raise ValidationError(f"root {root!r} is not an existing folder.", target="root")
    home = home.resolve()
    if path == home or path in home.parents:
        raise ValidationError(
            f"root {root!r} holds the workspace home, whose files (keys, tokens, the database) "
            "no datastore may reach; choose a folder inside it or elsewhere.",
            target="root",
        )
    for folder in (r.resolve() for r in reserved):
        if path == folder or folder in path.parents or path in folder.parents:
            raise ValidationError(
                f"root {root!r} holds or lies inside {folder}, which the server keeps for "
                "itself in the workspace home; choose another folder.",
                target="root",
            )
    folders = [a.resolve() for a in allowed]
    if not any(path == a or a in path.parents for a in folders):
        raise ValidationError(
            f"root {root!r} is not accepted: local datastores must lie in "
            f"{', '.join(str(a) for a in folders)}. The server's operator can allow other "
            f"folders with {ROOTS_SETTING} (a comma-separated list of folders).",
            target="root",
        )
    return path
