"""The manifest of registered files (each file's path, sha256 and size) and the digest that
names them, shared by the server, which copies registered files to a snapshot named by it
(:mod:`sluiceway.storage.snapshots`), and the SDK, which recognises local files that are
registered already."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sluiceway.storage.reserved import REGISTRY_FOLDER
from sluiceway.storage.uris import DEFAULT_DATASTORE, datastore_uri


@dataclass(frozen=True)
class ManifestFile:
    path: str  # relative to the snapshot's root: "<name>" or "<name>/<relative>"
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    files: tuple[ManifestFile, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files]

    @classmethod
    def from_json(cls, raw: Any) -> Manifest:
        return cls(
            tuple(ManifestFile(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in raw)
        )

    def encoded(self) -> bytes:
        """The manifest file's bytes, whose sha256 is :attr:`digest`."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.encoded()).hexdigest()


def snapshot_root(digest: str) -> str:
    return f"{REGISTRY_FOLDER}/sha256/{digest}"


def manifest_path(digest: str) -> str:
    return f"{REGISTRY_FOLDER}/manifests/{digest}.json"


def snapshot_uri(manifest: Manifest, name: str, *, is_folder: bool) -> str:
    """Where the server keeps registered files named ``name`` with this manifest."""
    uri = datastore_uri(DEFAULT_DATASTORE, f"{snapshot_root(manifest.digest)}/{name}")
    return uri + "/" if is_folder else uri
