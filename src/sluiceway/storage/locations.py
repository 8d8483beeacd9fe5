"""A place in a datastore, and the file operations the server needs on it."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from sluiceway.errors import ValidationError
from sluiceway.storage.datastores.base import DatastoreBackend
from sluiceway.storage.paths import check_relative_path
from sluiceway.storage.redaction import redact_url
from sluiceway.storage.uris import datastore_uri


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the location it was listed from
    size: int


@dataclass(frozen=True)
class Location:
    """``path`` (normalised, relative) inside the datastore ``datastore``."""

    datastore: str
    path: str
    backend: DatastoreBackend
    url: str | None = None  # set for a storage URL outside any datastore: how the user named it

    @property
    def uri(self) -> str:
        """How the server names the location to users; a SAS in a storage URL is hidden."""
        if self.url is not None:
            return redact_url(self.url) or self.url
        return datastore_uri(self.datastore, self.path)

    @property
    def full_path(self) -> str:
        return self.backend.full_path(self.path)

    def local_path(self) -> Path | None:
        return self.backend.local_path(self.path)

    def child(self, relative: str) -> Location:
        """The location ``relative`` below this one.

        Raises:
            ValidationError: ``relative`` could leave this location (``..``, also
                percent-encoded, a backslash, a NUL byte, or an absolute path).
        """
        check_relative_path(relative)
        url = None
        if self.url is not None:
            base, _, query = self.url.partition("?")
            url = posixpath.join(base, relative) + (f"?{query}" if query else "")
        return Location(
            self.datastore, posixpath.join(self.path, relative).strip("/"), self.backend, url
        )

    def exists(self) -> bool:
        return bool(self.backend.fs.exists(self.full_path))

    def is_dir(self) -> bool:
        return bool(self.backend.fs.isdir(self.full_path))

    def is_file(self) -> bool:
        return bool(self.backend.fs.isfile(self.full_path))

    def kind(self) -> str | None:
        """``"file"``, ``"folder"``, or None when nothing is there: one look-up where
        :meth:`exists` and :meth:`is_dir` take one each."""
        try:
            info = self.backend.fs.info(self.full_path)
        except FileNotFoundError:
            return None
        return "folder" if info.get("type") == "directory" else "file"

    def list_files(self) -> list[FileEntry]:
        """Every file below this location, recursively, in path order; a file lists itself."""
        local = self.local_path()
        if local is not None:
            return self._list_local(local)
        fs = self.backend.fs
        root = self.full_path
        if fs.isfile(root):
            return [FileEntry(posixpath.basename(self.path), int(fs.size(root)))]
        if not fs.isdir(root):
            return []
        return self._list_folder()

    def list_paths(self) -> list[str]:
        """The paths of :meth:`list_files`, in the same order; a local folder is listed without
        a ``stat`` per file."""
        local = self.local_path()
        if local is None:
            return [entry.path for entry in self.list_files()]
        return sorted(relative for relative, _ in self._walk_local(local, sizes=False))

    def _list_folder(self) -> list[FileEntry]:
        fs = self.backend.fs
        root = self.full_path
        found = fs.find(root, detail=True)
        prefix = root.rstrip("/") + "/"
        entries = [
            FileEntry(name[len(prefix) :], int(info.get("size") or 0))
            for name, info in found.items()
            if info.get("type") == "file" and name.startswith(prefix)
        ]
        return sorted(entries, key=lambda e: e.path)

    def holds_files(self, *, folder: bool = False) -> bool:
        """Whether :meth:`list_files` would list anything; a local folder is only read up to
        its first file. ``folder``: the caller knows this is a folder (no look-up for it)."""
        local = self.local_path()
        if local is None:
            return bool(self._list_folder() if folder else self.list_files())
        return next(self._walk_local(local, sizes=False), None) is not None

    def _list_local(self, root: Path) -> list[FileEntry]:
        """Files below a local folder, never following a link out of the datastore's root:
        linked folders are not entered, and a linked file counts only when its real path is
        inside the root."""
        entries = [FileEntry(relative, size) for relative, size in self._walk_local(root)]
        return sorted(entries, key=lambda e: e.path)

    def _walk_local(self, root: Path, *, sizes: bool = True) -> Iterator[tuple[str, int]]:
        """The files of :meth:`_list_local` as ``(relative path, size)``, in no order. One
        ``stat`` per plain file: the folder listing already says which entries are folders and
        links; none without ``sizes`` (each size is then 0)."""
        if root.is_file():
            yield posixpath.basename(self.path), root.stat().st_size
            return
        folders = [(str(root), "")]
        while folders:
            folder, prefix = folders.pop()
            try:
                listing = os.scandir(folder)
            except OSError:
                continue  # as os.walk: a folder that cannot be read holds nothing
            with listing:
                for entry in listing:
                    relative = prefix + entry.name
                    try:
                        if entry.is_file(follow_symlinks=False):  # the most common, first
                            yield (
                                relative,
                                entry.stat(follow_symlinks=False).st_size if sizes else 0,
                            )
                        elif entry.is_dir(follow_symlinks=False):
                            folders.append((entry.path, relative + "/"))
                        elif entry.is_symlink():
                            if entry.is_dir():
                                continue  # a linked folder is not entered
                            try:
                                path = self.child(relative).local_path() or Path(entry.path)
                            except ValidationError:
                                continue  # it points out of the datastore's root
                            if path.is_file():
                                yield relative, path.stat().st_size if sizes else 0
                    except FileNotFoundError:
                        continue  # removed while listed

    def open_read(self) -> IO[bytes]:
        return self.backend.fs.open(self.full_path, "rb")  # type: ignore[no-any-return]

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open_read() as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def write_stream(self, chunks: Iterable[bytes], *, overwrite: bool = True) -> int:
        """Write a file atomically: readers see all of it or none of it.

        Raises:
            FileExistsError: ``overwrite`` is False and the file exists, or another writer
                created it meanwhile (the datastore type makes this check atomic).
        """
        return self.backend.write_file(self.path, chunks, overwrite=overwrite)


class Locations(Protocol):
    """What the scheduler needs of the workspace's datastores: where a job's files are, and
    where remote inputs are staged. ``services.datastores.DatastoreService`` is one."""

    staging_dir: Path
    staging_cache_bytes: int

    def location(self, datastore: str, path: str) -> Location:
        """``path`` in ``datastore``; paths that would leave its root are refused."""
        ...

    def stored_location(self, spec: dict[str, Any]) -> Location:
        """The location a job's spec recorded: ``{"datastore", "path"}``, ``{"url"}`` or
        ``{"sealed_url"}`` (a storage URL with a credential, stored encrypted)."""
        ...
