"""What a datastore type provides: an fsspec filesystem and the root of the store in it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol


class DatastoreType(StrEnum):
    LOCAL = "local"
    AZURE_BLOB = "azure_blob"
    AZURE_DATA_LAKE_GEN2 = "azure_data_lake_gen2"
    S3 = "s3"


class DatastoreBackend(Protocol):
    @property
    def type(self) -> DatastoreType:
        """The datastore's type."""

    @property
    def fs(self) -> Any:
        """The fsspec filesystem that reaches the store."""

    def full_path(self, path: str) -> str:
        """The filesystem path of ``path`` (normalised, relative to the store's root)."""

    def local_path(self, path: str) -> Path | None:
        """A local path to read in place, for stores on this machine; None otherwise."""
