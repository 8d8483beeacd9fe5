"""Registered files: a model's or some code's files, copied where no caller can write and
checked file by file before a job uses them.

A snapshot is stored in the default datastore at ``azureml-registry/sha256/<digest>/<name>``
(``<name>`` is the registered file's or folder's name), with its manifest, the sha256 and size
of each file, at ``azureml-registry/manifests/<digest>.json``. ``<digest>`` is the sha256 of
the manifest itself, so a path that names a snapshot also names its exact content: a job that
finds a file changed, added or missing, or a manifest that does not hash to its digest, does
not run it.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from sluiceway.manifest import Manifest, ManifestFile, manifest_path, snapshot_root
from sluiceway.storage.locations import Location
from sluiceway.storage.reserved import REGISTRY_FOLDER

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class SnapshotMismatch(Exception):
    """Registered files are not what was registered; the message names the file."""


def snapshot_of(path: str) -> tuple[str, str] | None:
    """``(digest, path inside the snapshot)`` when ``path`` names registered files, else None."""
    parts = path.strip("/").split("/", 3)
    if len(parts) == 4 and parts[:2] == [REGISTRY_FOLDER, "sha256"] and _DIGEST.fullmatch(parts[2]):
        return parts[2], parts[3]
    return None


# -- registering -----------------------------------------------------------------------------


def _name(source: Location) -> str:
    return posixpath.basename(source.path) or source.datastore or "files"


def _sources(source: Location) -> Iterator[tuple[str, Location]]:
    """Each file of ``source`` with its path in the snapshot."""
    name = _name(source)
    if source.is_file():
        yield name, source
        return
    for entry in source.list_files():
        yield f"{name}/{entry.path}", source.child(entry.path)


def read_manifest(source: Location) -> Manifest:
    """Hash every file of a file or folder."""
    files = []
    for path, location in _sources(source):
        digest, size = hashlib.sha256(), 0
        for chunk in location.iter_bytes(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        files.append(ManifestFile(path, digest.hexdigest(), size))
    return Manifest(tuple(sorted(files, key=lambda f: f.path)))


def copy_snapshot(source: Location, manifest: Manifest, registry: Location) -> Location:
    """Copy ``source``'s files to their snapshot under ``registry`` (the default datastore's
    root) and write the manifest; return the snapshot's location.

    Raises:
        SnapshotMismatch: a file changed since :func:`read_manifest` hashed it (the copy of
            that file is not written).
    """
    digest = manifest.digest
    root = registry.child(snapshot_root(digest))
    expected = {f.path: f for f in manifest.files}
    for path, location in _sources(source):
        wanted = expected.get(path)
        if wanted is None:
            raise SnapshotMismatch(f"{location.uri} was added while it was being registered.")
        chunks = _checked(location.iter_bytes(_CHUNK), wanted, location.uri)
        root.child(path).write_stream(chunks, overwrite=True)
    registry.child(manifest_path(digest)).write_stream([manifest.encoded()], overwrite=True)
    return root.child(_name(source))


def _checked(chunks: Iterable[bytes], wanted: ManifestFile, uri: str) -> Iterator[bytes]:
    """The chunks; raises at the end (so the write is abandoned) if they are not ``wanted``."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if (digest.hexdigest(), size) != (wanted.sha256, wanted.size):
        raise SnapshotMismatch(f"{uri} changed while it was being registered.")


# -- checking --------------------------------------------------------------------------------


def load_manifest(registry: Location, digest: str) -> Manifest:
    """The manifest of snapshot ``digest``, checked against its digest.

    Raises:
        SnapshotMismatch: it is missing, or does not hash to ``digest``.
    """
    where = registry.child(manifest_path(digest))
    try:
        with where.open_read() as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise SnapshotMismatch(f"the manifest {where.uri} of registered files is missing") from None
    if hashlib.sha256(raw).hexdigest() != digest:
        raise SnapshotMismatch(f"the manifest {where.uri} does not match its digest {digest}")
    return Manifest.from_json(json.loads(raw))


def verify_local(local: Path, location: Location, registry: Location) -> None:
    """Check that ``local`` (the files of ``location``, in place or fetched) is exactly what
    was registered: no file changed, added or missing. A location outside the registry is
    not checked.

    Raises:
        SnapshotMismatch: naming the first file that differs.
    """
    found = snapshot_of(location.path)
    if found is None:
        return
    digest, inside = found
    manifest = load_manifest(registry, digest)
    single = [f for f in manifest.files if f.path == inside]
    if single:  # one registered file: in place, or fetched into a folder of its own
        expected = {posixpath.basename(inside): single[0]}
        actual = {local.name: local} if local.is_file() else _local_files(local)
    else:
        prefix = inside.rstrip("/") + "/"
        expected = {f.path[len(prefix) :]: f for f in manifest.files if f.path.startswith(prefix)}
        actual = _local_files(local)
    what = f"Registered files {location.uri}"
    for relative in sorted(expected.keys() | actual.keys()):
        wanted, path = expected.get(relative), actual.get(relative)
        if wanted is None:
            raise SnapshotMismatch(
                f"{what}: {relative!r} was added after registration; the job does not run them."
            )
        if path is None:
            raise SnapshotMismatch(
                f"{what}: {relative!r} is missing since registration; the job does not run them."
            )
        if path.is_symlink() or _sha256(path) != (wanted.sha256, wanted.size):
            raise SnapshotMismatch(
                f"{what}: {relative!r} does not match its recorded sha256 {wanted.sha256}: it "
                "was changed after registration; the job does not run them."
            )


def _local_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for name in files + [d for d in dirs if (here / d).is_symlink()]:
            found[(here / name).relative_to(root).as_posix()] = here / name
    return found


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
