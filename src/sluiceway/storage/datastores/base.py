"""What a datastore type provides: an fsspec filesystem, the root of the store in it, and writes.

Reads, listings and existence checks go through the fsspec filesystem. Writes go through
:meth:`DatastoreBackend.write_file`, because each store has its own way of making a write
atomic and of refusing to replace a file that exists (a hard link on a local disk, a
conditional ``If-None-Match: *`` request on Azure Blob and S3).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sluiceway.errors import ValidationError
from sluiceway.storage.network import PrivateNetworkPolicy
from sluiceway.storage.paths import check_relative_path


class DatastoreType(StrEnum):
    LOCAL = "local"
    AZURE_BLOB = "azure_blob"
    AZURE_DATA_LAKE_GEN2 = "azure_data_lake_gen2"
    S3 = "s3"


@dataclass(frozen=True)
class ClientSettings:
    """How a backend's storage clients connect.

    Every connection is checked against ``network`` when it is made (see
    :mod:`sluiceway.storage.egress`); by default only public addresses are reached.
    ``timeout`` is set for checks made while a caller waits (an input exists, is a folder):
    each request then gives up after that many seconds, and is not retried.
    """

    network: PrivateNetworkPolicy = field(default_factory=PrivateNetworkPolicy)
    timeout: float | None = None


class DatastoreBackend(Protocol):
    @property
    def type(self) -> DatastoreType:
        """The datastore's type."""

    @property
    def fs(self) -> Any:
        """The fsspec filesystem that reaches the store."""

    @property
    def service_url(self) -> str | None:
        """The URL the store is reached at when its settings name one (None for a local
        folder, or a cloud's own endpoint); the server checks it before connecting."""

    def probing(self, timeout: float) -> DatastoreBackend:
        """The same store, reached with ``timeout`` seconds per request and no retries: for
        checks made while a caller waits."""

    def full_path(self, path: str) -> str:
        """The filesystem path of ``path`` (normalised, relative to the store's root)."""

    def local_path(self, path: str) -> Path | None:
        """A local path to read in place, for stores on this machine; None otherwise."""

    def write_file(self, path: str, chunks: Iterable[bytes], *, overwrite: bool) -> int:
        """Write ``path`` from ``chunks`` so that readers see all of it or nothing.

        Returns:
            The number of bytes written.

        Raises:
            FileExistsError: ``overwrite`` is False and the file exists (also when another
                writer created it while this one was writing).
        """


def contained_path(root: str, path: str) -> str:
    """``root/path`` for a path relative to a store's root; it may not leave the root.

    Args:
        root: The store's root in its filesystem (``container``, ``bucket/prefix``).
        path: A path relative to the root; a leading ``/`` and ``.`` segments are ignored.

    Raises:
        ValidationError: the path could leave the root (``..``, also percent-encoded, a
            backslash or a NUL byte; see :func:`sluiceway.storage.paths.check_relative_path`).
    """
    relative, _ = check_relative_path(path, leading_slash=True)
    return posixpath.join(root, relative) if relative else root


def required(config: dict[str, Any], key: str, type_name: str) -> str:
    """A non-empty string setting of a datastore's config."""
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"A datastore of type {type_name} needs {key!r} (got {value!r}).", target=key
        )
    return value.strip()


def optional(config: dict[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{key!r} must be a string (got {value!r}).", target=key)
    return value.strip()
