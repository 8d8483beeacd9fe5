"""Local files and folders go to the default datastore before the server sees them.

As Azure's SDK does, a local file or folder is uploaded to ``workspaceblobstore`` at
``LocalUpload/<md5>/<basename>`` and the request carries
``azureml://datastores/workspaceblobstore/paths/LocalUpload/<md5>/<basename>`` (with a
trailing ``/`` for a folder). The md5 is seeded like Azure's and taken over the file's bytes,
or over each file's relative path and bytes in sorted order, so the same content is sent once:
the server remembers finished uploads (``GET /uploads/{md5}``).

Hidden files and folders, ``__pycache__``, and what the folder's ``.amlignore`` (else
``.gitignore``) lists are left out.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sluiceway.errors import ResourceNotFoundError, ValidationError
from sluiceway.manifest import Manifest, ManifestFile, snapshot_uri
from sluiceway.schemas.common import DEFAULT_DATASTORE, datastore_uri
from sluiceway.sdk.connection import Connection, file_path, segment
from sluiceway.upload_hash import HASH_SEED as HASH_SEED
from sluiceway.upload_hash import upload_hash, upload_order

UPLOAD_DATASTORE = DEFAULT_DATASTORE
UPLOAD_FOLDER = "LocalUpload"
IGNORE_FILES = (".amlignore", ".gitignore")
_SKIPPED_NAMES = frozenset({"__pycache__"})
_CHUNK = 1 << 20
# Files up to this size are sent in one body with a Content-Length; larger ones are streamed.
_WHOLE_BODY_LIMIT = 16 << 20


@dataclass(frozen=True)
class LocalFile:
    """One file to upload: its path relative to the uploaded folder, and where it is."""

    relative: str
    path: Path


@dataclass(frozen=True)
class LocalArtifact:
    """A local file or folder, its files, and the hash of their content."""

    source: Path
    is_folder: bool
    files: tuple[LocalFile, ...]
    digest: str

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def datastore_path(self) -> str:
        return f"{UPLOAD_FOLDER}/{self.digest}/{self.name}"

    @property
    def uri(self) -> str:
        uri = datastore_uri(UPLOAD_DATASTORE, self.datastore_path)
        return uri + "/" if self.is_folder else uri

    @property
    def size(self) -> int:
        return sum(f.path.stat().st_size for f in self.files)

    def registered_uri(self) -> str:
        """Where the server keeps these files once they are registered as a model or code."""
        files = []
        for item in self.files:
            digest = hashlib.sha256()
            for chunk in _chunks(item.path):
                digest.update(chunk)
            path = f"{self.name}/{item.relative}" if self.is_folder else self.name
            files.append(ManifestFile(path, digest.hexdigest(), item.path.stat().st_size))
        manifest = Manifest(tuple(sorted(files, key=lambda f: f.path)))
        return snapshot_uri(manifest, self.name, is_folder=self.is_folder)


class IgnoreRules:
    """The patterns of a ``.amlignore`` or ``.gitignore`` (no ``!`` negation)."""

    def __init__(self, patterns: list[str]) -> None:
        self._patterns = patterns

    @classmethod
    def for_folder(cls, root: Path) -> IgnoreRules:
        for name in IGNORE_FILES:
            candidate = root / name
            if candidate.is_file():
                lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
                return cls([p.strip() for p in lines if p.strip() and not p.startswith(("#", "!"))])
        return cls([])

    def excludes(self, relative: str, *, is_dir: bool) -> bool:
        name = relative.rsplit("/", 1)[-1]
        for pattern in self._patterns:
            dir_only = pattern.endswith("/")
            body = pattern.strip("/")
            if not body or (dir_only and not is_dir):
                continue
            anchored = "/" in pattern.rstrip("/")
            target = relative if anchored else name
            if fnmatch.fnmatchcase(target, body):
                return True
        return False


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _SKIPPED_NAMES


def collect_files(root: Path) -> list[LocalFile]:
    """The files of a folder to upload, sorted by relative path as the hash reads them."""
    rules = IgnoreRules.for_folder(root)
    found: list[LocalFile] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        prefix = here.relative_to(root).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        dirs[:] = [
            d for d in dirs if not _skipped(d) and not rules.excludes(prefix + d, is_dir=True)
        ]
        for name in files:
            relative = prefix + name
            if _skipped(name) or rules.excludes(relative, is_dir=False):
                continue
            if (here / name).is_file():
                found.append(LocalFile(relative, here / name))
    return sorted(found, key=lambda f: upload_order(f.relative))


def content_hash(files: tuple[LocalFile, ...] | list[LocalFile], *, is_folder: bool) -> str:
    """The md5 hexdigest Sluiceway names an upload by.

    See :func:`sluiceway.upload_hash.upload_hash`; the files are in the order given
    (:func:`collect_files` sorts them).
    """
    return upload_hash(((item.relative, _chunks(item.path)) for item in files), is_folder=is_folder)


def scan(path: str | os.PathLike[str], *, base: Path | None = None) -> LocalArtifact:
    """Read a local file or folder, ready to upload.

    Args:
        path: The file or folder; a relative path is relative to ``base`` (default: the
            current folder).
        base: The folder relative paths start from.

    Raises:
        ValidationError: it does not exist, or is a folder with nothing to upload.
    """
    source = Path(path).expanduser()
    if not source.is_absolute():
        source = (base or Path.cwd()) / source
    source = source.resolve()
    if source.is_file():
        files: tuple[LocalFile, ...] = (LocalFile(source.name, source),)
        return LocalArtifact(source, False, files, content_hash(files, is_folder=False))
    if source.is_dir():
        files = tuple(collect_files(source))
        if not files:
            raise ValidationError(
                f"local folder {str(source)!r} has no files to upload (hidden files, "
                "__pycache__ and .amlignore/.gitignore entries are left out)",
                target="path",
            )
        return LocalArtifact(source, True, files, content_hash(files, is_folder=True))
    raise ValidationError(
        f"local path {str(source)!r} does not exist; give an existing file or folder, a "
        "datastore path (azureml://datastores/<datastore>/paths/<path>), a registered asset "
        "(azureml:<name>:<version>) or a storage URL",
        target="path",
    )


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from iter(lambda: fh.read(_CHUNK), b"")


class Uploader:
    """Uploads local files and folders to the default datastore, once per content.

    Args:
        connection: The server to upload to.
        report: Called with a line of text before an upload starts (and when one is skipped).
    """

    def __init__(
        self, connection: Connection, *, report: Callable[[str], None] | None = None
    ) -> None:
        self._connection = connection
        self._report = report

    def _say(self, text: str) -> None:
        if self._report is not None:
            self._report(text)

    def already_uploaded(self, artifact: LocalArtifact) -> bool:
        """Whether the server holds a finished upload of this content under this name."""
        try:
            record = self._connection.request(
                "GET",
                f"/uploads/{segment(artifact.digest)}",
                params={"name": artifact.name},
                expected=(200,),
            )
        except ResourceNotFoundError:
            return False
        return isinstance(record, dict) and record.get("name") == artifact.name

    def upload_artifact(self, artifact: LocalArtifact) -> str:
        """Upload unless already there; return the datastore URI the server should get."""
        if self.already_uploaded(artifact):
            self._say(f"{artifact.source} is already uploaded ({artifact.uri})")
            return artifact.uri
        count = len(artifact.files)
        self._say(
            f"Uploading {artifact.source} ({count} file{'s' if count != 1 else ''}, "
            f"{artifact.size / 1e6:.2f} MB) to {artifact.uri}"
        )
        for item in artifact.files:
            target = artifact.datastore_path
            if artifact.is_folder:
                target += "/" + item.relative
            size = item.path.stat().st_size
            content = item.path.read_bytes() if size <= _WHOLE_BODY_LIMIT else _chunks(item.path)
            self._connection.request(
                "PUT",
                f"/datastores/{segment(UPLOAD_DATASTORE)}/files/{file_path(target)}",
                content=content,
                headers={"Content-Type": "application/octet-stream"},
                expected=(200, 201, 204),
            )
        self._connection.request(
            "PUT",
            f"/uploads/{segment(artifact.digest)}",
            json={"name": artifact.name, "path": artifact.uri},
            expected=(200, 201, 204),
        )
        return artifact.uri

    def upload(self, path: str | os.PathLike[str], *, base: Path | None = None) -> str:
        """Upload a local file or folder (see :func:`scan`); return its datastore URI."""
        return self.upload_artifact(scan(path, base=base))
