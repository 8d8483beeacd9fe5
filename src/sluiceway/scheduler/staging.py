"""Local places for one job's data, whichever datastore holds it.

Workers read and write local files. A job's data in a local datastore is used in place, without
a copy. Data in a remote datastore (Azure Blob, ADLS Gen2, S3, a storage URL) is staged under
``<staging_dir>/<job>/``:

- **Inputs** stream through a bounded cache: a mini-batch's files are fetched when it is
  dispatched (if they were not fetched ahead), the next mini-batches' files are prefetched in
  the background while there is room, and a mini-batch's files are deleted as soon as it is
  done. The cache holds at most ``capacity`` bytes, plus one mini-batch that alone is larger.
- **Model and code** folders are fetched once per job. Registered ones (in the registry, see
  :mod:`sluiceway.storage.snapshots`) are checked file by file against their manifest, in place
  or once fetched, before a job uses them.
- **The job folder** (logs, parts, the script's staged outputs), when the default datastore is
  remote, is a local mirror. Its logs are uploaded every ``LOG_UPLOAD_SECONDS`` while the job
  runs and when the runner ends; the runner keeps the script's staged outputs there as the
  mini-batches succeed (:meth:`JobStaging.keep`), so a scheduler on another machine that takes
  the job over finds them.

Downloads stream from storage to disk in chunks, so the server's memory stays flat whatever
the size of the input.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sluiceway.storage.locations import Location, Locations
from sluiceway.storage.paths import open_regular_file
from sluiceway.storage.redaction import describe_error
from sluiceway.storage.snapshots import SnapshotMismatch, verify_local

logger = logging.getLogger("sluiceway.scheduler")

FETCH_THREADS = 4
# How often the log files of a job whose folder is remote are uploaded while it runs: a
# scheduler killed mid-job loses at most the lines of this many seconds.
LOG_UPLOAD_SECONDS = 10.0
# Log files a taken-over job's new scheduler does not fetch from the one before: the scoring
# script's output, which the workers (another user) write under the same names.
WORKER_LOGS = "user/stdout/"


class StagingError(Exception):
    """A remote file could not be fetched; the message names it and says why."""


class RegisteredFilesChanged(StagingError):
    """A registered model's or code's files are not what was registered; the message names
    the file."""


def download(location: Location, target: Path) -> int:
    """Copy one remote file to ``target`` (through a temporary name); its size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        location.backend.fs.get_file(location.full_path, str(tmp))
        os.replace(tmp, target)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise StagingError(f"{location.uri} could not be fetched: {describe_error(exc)}") from None
    return target.stat().st_size


@dataclass
class _Batch:
    files: tuple[str, ...]
    folder: Path
    futures: list[Future[int]] = field(default_factory=list)
    released: bool = False

    def size(self) -> int:
        return sum(f.result() for f in self.futures if f.done() and f.exception() is None)


class InputFiles:
    """The files of one input as local paths, mini-batch by mini-batch.

    Args:
        source: the input: a folder, or one file.
        cache_dir: where remote files are staged.
        capacity: the most bytes the cache holds for prefetching.
    """

    def __init__(self, source: Location, cache_dir: Path, capacity: int) -> None:
        self._source = source
        self._single = source.is_file()
        local = source.local_path()
        if local is not None:
            self._local_root: Path | None = local.parent if self._single else local
        else:
            self._local_root = None
        self._cache = cache_dir
        self._capacity = capacity
        self._batches: dict[int, _Batch] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def streamed(self) -> bool:
        """Whether files are fetched (remote) rather than read in place (local)."""
        return self._local_root is None

    @property
    def root(self) -> Path:
        """The folder the local paths are under."""
        return self._local_root if self._local_root is not None else self._cache

    def paths(self, index: int, files: Sequence[str]) -> tuple[str, ...]:
        """Local paths of mini-batch ``index``'s files, fetched now unless fetched ahead.

        Raises:
            StagingError: a file could not be fetched.
        """
        if self._local_root is not None:
            root = str(self._local_root)  # os.path.join: a tenth of pathlib's cost per file
            return tuple(os.path.join(root, f) for f in files)
        batch = self._start(index, tuple(files))
        for future in batch.futures:
            future.result()  # raises StagingError
        return tuple(str(batch.folder / f) for f in batch.files)

    def prefetch(self, index: int, files: Sequence[str]) -> bool:
        """Start fetching a later mini-batch if the cache has room; whether it was started."""
        if self._local_root is not None:
            return False
        with self._lock:
            if index in self._batches:
                return True
            used = self._used_bytes()
            if used >= self._capacity or used + self._estimate() > self._capacity:
                return False
        self._start(index, tuple(files))
        return True

    def release(self, index: int) -> None:
        """Mini-batch ``index`` is done: delete its staged files."""
        with self._lock:
            batch = self._batches.pop(index, None)
        if batch is None:
            return
        batch.released = True
        for future in batch.futures:
            future.cancel()
        for future in batch.futures:
            if not future.cancelled():
                try:
                    future.result()
                except Exception:
                    pass
        shutil.rmtree(batch.folder, ignore_errors=True)

    def cached_bytes(self) -> int:
        """The bytes of fetched files the cache holds now."""
        with self._lock:
            return self._used_bytes()

    def close(self) -> None:
        for index in list(self._batches):
            self.release(index)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _start(self, index: int, files: tuple[str, ...]) -> _Batch:
        with self._lock:
            batch = self._batches.get(index)
            if batch is not None and batch.files == files:
                return batch
            if self._pool is None:
                self._pool = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="stage-in")
            batch = _Batch(files, self._cache / f"{index:06d}")
            for relative in files:
                remote = self._source if self._single else self._source.child(relative)
                batch.futures.append(self._pool.submit(download, remote, batch.folder / relative))
            self._batches[index] = batch
            return batch

    def _used_bytes(self) -> int:
        return sum(b.size() for b in self._batches.values())

    def _estimate(self) -> int:
        """The expected size of one more mini-batch: the largest fetched so far."""
        sizes = [b.size() for b in self._batches.values() if all(f.done() for f in b.futures)]
        return max(sizes, default=0)


class JobStaging:
    """The local side of one job: staged inputs, model and code, and its folder's mirror."""

    def __init__(self, datastores: Locations, job_name: str) -> None:
        self._datastores = datastores
        self.root = datastores.staging_dir / job_name
        self._mirrors: dict[str, tuple[Location, Path]] = {}
        self._inputs: list[InputFiles] = []
        # Each mirror's files as last uploaded: relative path -> (size, mtime_ns).
        self._uploaded: dict[str, dict[str, tuple[int, int]]] = {}
        self._logs_uploaded_at = time.monotonic()

    def inputs(self, source: Location) -> InputFiles:
        """The input's files: in place when local, else streamed through the cache."""
        files = InputFiles(source, self.root / "inputs", self._datastores.staging_cache_bytes)
        self._inputs.append(files)
        return files

    def folder(self, location: Location) -> Path:
        """A folder a job reads whole (the model, the code): in place, or fetched once.

        Raises:
            StagingError: a file could not be fetched.
            RegisteredFilesChanged: registered files changed since they were registered.
        """
        local = location.local_path()
        if local is not None:
            self._verify(local, location)
            return local
        target = self.root / "folders" / f"{location.datastore or 'url'}" / location.path
        done = target.with_name(target.name + ".complete")
        if done.exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        entries = location.list_files()
        if location.is_file():
            download(location, target / location.path.rsplit("/", 1)[-1])
        else:
            for entry in entries:
                download(location.child(entry.path), target / entry.path)
        self._verify(target, location)
        done.touch()
        return target

    def _verify(self, local: Path, location: Location) -> None:
        try:
            verify_local(local, location, self._datastores.location(location.datastore, ""))
        except SnapshotMismatch as exc:
            raise RegisteredFilesChanged(str(exc)) from None

    def work_dir(self, location: Location) -> Path:
        """A local folder standing for a folder of the job's own (logs, parts, staged outputs):
        the folder itself in a local datastore, else a mirror under the staging root."""
        local = location.local_path()
        if local is not None:
            return local
        mirror = self.root / "job" / location.path
        if location.uri not in self._mirrors and _is_logs(location):
            self._fetch_logs(location, mirror)
        self._mirrors[location.uri] = (location, mirror)
        return mirror

    def _fetch_logs(self, location: Location, mirror: Path) -> None:
        """The log files an earlier scheduler of the job uploaded (it was killed, or handed
        the job back): this one appends to them rather than replacing them. The workers' own
        files (``user/stdout/``) are not fetched: this run's workers write theirs anew."""
        try:
            entries = location.list_files()
        except Exception:
            logger.exception("could not list the logs in %s", location.uri)
            return
        for entry in entries:
            if entry.path.startswith(WORKER_LOGS):
                continue
            target = mirror / entry.path
            try:
                download(location.child(entry.path), target)
            except (StagingError, ValueError):
                logger.exception("could not fetch the log %s", entry.path)
                continue
            stat = target.stat()
            uploaded = self._uploaded.setdefault(location.uri, {})
            uploaded[entry.path] = (stat.st_size, stat.st_mtime_ns)

    def upload_logs(self, *, every: float | None = LOG_UPLOAD_SECONDS) -> None:
        """Upload the mirrored log files changed since their last upload; with ``every``,
        only when that many seconds passed since the last time (call it as often as you
        like). A file that cannot be uploaded is logged and tried again next time."""
        if every is not None and time.monotonic() - self._logs_uploaded_at < every:
            return
        self._logs_uploaded_at = time.monotonic()
        for location, mirror in list(self._mirrors.values()):
            if _is_logs(location) and mirror.is_dir():
                self._upload_changed(location, mirror, strict=False)

    def keep(self, location: Location) -> int:
        """Upload the files of a remote folder's mirror (see :meth:`work_dir`) that are new or
        changed since their last upload, and remove from it those deleted here since; the
        number of files uploaded. Nothing to do for a folder in a local datastore.

        Raises:
            OSError: a file could not be read.
            ValidationError: a file's name is not a datastore path.
            Exception: the storage's error when a file could not be uploaded.
        """
        mirrored = self._mirrors.get(location.uri)
        if mirrored is None or not mirrored[1].is_dir():
            return 0
        return self._upload_changed(location, mirrored[1], strict=True)

    def _upload_changed(self, location: Location, mirror: Path, *, strict: bool) -> int:
        """Upload the mirror's files whose (size, mtime) changed since their last upload;
        ``strict``: raise on the first failure, and remove what was deleted here."""
        uploaded = self._uploaded.setdefault(location.uri, {})
        seen: set[str] = set()
        count = 0
        for relative, stat in sorted(_regular_files(mirror)):
            seen.add(relative)
            current = (stat.st_size, stat.st_mtime_ns)
            if uploaded.get(relative) == current:
                continue
            try:
                # Workers write these files: a link could point at a server's file.
                location.child(relative).write_stream(
                    _file_chunks(mirror / relative, mirror), overwrite=True
                )
            except FileNotFoundError:
                continue  # deleted since it was listed
            except Exception:
                if strict:
                    raise
                logger.exception("could not upload %s to %s", relative, location.uri)
                continue
            uploaded[relative] = current
            count += 1
        if strict:
            for relative in [r for r in uploaded if r not in seen]:
                del uploaded[relative]
                gone = location.child(relative)
                with contextlib.suppress(FileNotFoundError):
                    gone.backend.fs.rm(gone.full_path)
        return count

    def close(self) -> None:
        """Upload mirrored folders' files, then delete everything staged for the job."""
        for files in self._inputs:
            files.close()
        self.upload_logs(every=None)
        shutil.rmtree(self.root, ignore_errors=True)


def _is_logs(location: Location) -> bool:
    return location.path.rsplit("/", 1)[-1] == "logs"


def _regular_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """The regular files below ``root``, by path relative to it, with their ``lstat``: links
    are neither followed nor listed (the deployment's code writes there)."""
    folders = [(root, "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # removed meanwhile, or not readable: nothing of it to upload
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((Path(entry.path), f"{prefix}{entry.name}/"))
                elif entry.is_file(follow_symlinks=False):
                    yield f"{prefix}{entry.name}", entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue


def _file_chunks(path: Path, within: Path) -> Iterator[bytes]:
    with open_regular_file(path, within=within) as fh:
        while chunk := fh.read(1 << 20):
            yield chunk
