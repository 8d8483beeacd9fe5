"""Part files: the rows of one succeeded ``append_row`` mini-batch, committed atomically.

A worker writes a mini-batch's rows as they are scored into a temporary file of its own, and
only a mini-batch that succeeds renames it to ``<parts_dir>/<index:06d>.part``, after an
``fsync`` of the file and of the folder; one that fails leaves nothing. The scheduler records
the mini-batch as succeeded only after the worker answered, so a recorded part is on disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self


def part_path(parts_dir: str, index: int) -> Path:
    """The committed rows of mini-batch ``index``: ``<parts_dir>/<index:06d>.part``."""
    return Path(parts_dir) / f"{index:06d}.part"


class PartFile:
    """A part file being written; a context manager that commits it when the block succeeds
    and removes it when the block raises.

    Args:
        parts_dir: the folder of the job's part files (created if missing).
        index: the mini-batch's index.
        durable: ``fsync`` the file before the rename and the folder after it. False leaves
            that to the caller (:func:`make_durable`), which must do it before the mini-batch's
            success is told to anyone.
    """

    def __init__(self, parts_dir: str, index: int, *, durable: bool = True) -> None:
        self.path = part_path(parts_dir, index)
        self._durable = durable
        # A name of this process's own: a worker killed mid-write never shares it with the next.
        self._temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        self._file: BinaryIO | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Closed by __exit__, which commits or removes it.
        self._file = open(self._temporary, "wb")
        return self

    def write(self, data: bytes) -> None:
        """Append rows (whole lines, or a whole Parquet file) to the part."""
        assert self._file is not None, "write() outside the with block"
        self._file.write(data)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        file, self._file = self._file, None
        assert file is not None
        if exc_type is not None:
            file.close()
            self._temporary.unlink(missing_ok=True)
            return
        try:
            file.flush()
            if self._durable:
                os.fsync(file.fileno())
        finally:
            file.close()
        os.replace(self._temporary, self.path)
        if self._durable:
            sync_folder(self.path.parent)


def make_durable(paths: Sequence[str]) -> None:
    """``fsync`` committed part files (:class:`PartFile` with ``durable=False``) and, once,
    the folder of each."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for folder in dict.fromkeys(os.path.dirname(path) for path in paths):
        sync_folder(folder)


def sync_folder(folder: str | os.PathLike[str]) -> None:
    """``fsync`` a folder: the renames into it are durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(parts_dir: str, index: int, data: bytes) -> Path:
    """Commit one mini-batch's rows at once (see :class:`PartFile`); the part's path."""
    with PartFile(parts_dir, index) as part:
        part.write(data)
    return part.path


__all__ = ["PartFile", "make_durable", "part_path", "sync_folder", "write_part"]
