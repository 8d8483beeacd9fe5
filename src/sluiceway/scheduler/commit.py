"""Committing a job's staged outputs into its output folder.

Workers write each succeeded mini-batch's rows as a part file, and the scoring script writes its
own files into ``AZUREML_BI_OUTPUT_PATH``; both live under the job's folder until the job
completes. When that folder is remote, both are kept there as the mini-batches succeed
(``kept_parts``, ``kept_staging``), and the commit takes from there what this machine's copy
lacks: the files made by a scheduler that the job was taken over from. The commit then
copies the script's files into the output folder, joins the parts, in input order, into the rows
file (``append_row``), and writes ``errors.jsonl`` when files failed.

Nothing that exists is overwritten. A commit records its intent in ``<job folder>/commit.json``
before it writes anything, so a scheduler that takes over a job which crashed while committing
finishes that commit (its own files) instead of refusing to overwrite them.

When the output folder and the parts are on this machine's disk, the rows are joined while the
job runs (:class:`StreamedRows`): each part is appended to a hidden file beside the rows file as
soon as every mini-batch before it has ended for good, in a thread of its own, so that the
commit has only the last parts to append before it links the file into place.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sluiceway.clock import utcnow
from sluiceway.runtime.output_formats import OutputFormat
from sluiceway.scheduler.joblog import ERRORS_FILE, JobLog
from sluiceway.scheduler.parquet_join import PartsDisagree, join_parquet
from sluiceway.storage.locations import Location
from sluiceway.storage.paths import open_regular_file
from sluiceway.store.jobs import MiniBatchRecord

COMMIT_RECORD = "commit.json"
PART_CHUNK_BYTES = 1 << 20

logger = logging.getLogger("sluiceway.scheduler")


class CommitRefused(Exception):
    """The outputs cannot be committed; the message says why."""

    def __init__(self, message: str, code: str = "UserError") -> None:
        super().__init__(message)
        self.code = code


class OutputCommit:
    """The commit of one job's outputs.

    Args:
        job_folder: the job's folder (the commit record goes there).
        output_folder: where the outputs go.
        staging_dir: the script's own files (``AZUREML_BI_OUTPUT_PATH``).
        parts_dir: one ``<index:06d>.part`` file per succeeded mini-batch.
        rows_file: the file the rows are joined into, or None for ``summary_only``.
        log: the job's logs.
        keep_lease: called between files, so a long commit keeps the job's lease.
        owner: the scheduler, named in the commit record.
        kept_parts: the job's remote folder of parts, read for a part that ``parts_dir``
            does not hold (it was made by a scheduler that the job was taken over from).
        kept_staging: the job's remote folder of the script's files, of which those that
            ``staging_dir`` does not hold are committed too (this machine's copy wins).
        output_format: what the parts hold; Parquet parts are joined by
            :mod:`~sluiceway.scheduler.parquet_join`, the others by concatenation.
        streamed: the rows joined while the job ran, if they were.
    """

    def __init__(
        self,
        *,
        job_folder: Location,
        output_folder: Location,
        staging_dir: Path,
        parts_dir: Path,
        rows_file: str | None,
        log: JobLog,
        keep_lease: Callable[[], None],
        owner: str,
        kept_parts: Location | None = None,
        kept_staging: Location | None = None,
        output_format: OutputFormat = OutputFormat.TEXT,
        streamed: StreamedRows | None = None,
    ) -> None:
        self._streamed = streamed
        self._job_folder = job_folder
        self._output = output_folder
        self._staging = staging_dir
        self._parts = parts_dir
        self._rows_file = rows_file
        self._log = log
        self._keep_lease = keep_lease
        self._owner = owner
        self._kept_parts = kept_parts
        self._kept_staging = kept_staging
        self._format = output_format

    def commit(
        self, succeeded: Sequence[MiniBatchRecord], error_lines: Sequence[dict[str, Any]]
    ) -> None:
        """Copy the staged files, join the rows and write ``errors.jsonl``.

        Raises:
            CommitRefused: an output file exists already (and is not this job's), the script
                wrote a file named like the rows file, or a part file is missing.
        """
        staged = self._staged_files()
        targets = sorted(staged)
        if self._rows_file is not None:
            if self._rows_file in staged:
                raise CommitRefused(
                    f"The scoring script wrote a file named {self._rows_file!r} into "
                    "AZUREML_BI_OUTPUT_PATH, where the job writes its rows (output_file_name); "
                    "name the script's files differently or use output_action summary_only."
                )
            targets.append(self._rows_file)
        resuming = self._read_record() is not None
        if resuming:
            self._log.overview("Finishing the commit of the outputs that a restart interrupted.")
            self._remove_partial_writes(targets)
        else:
            taken = [t for t in targets if self._output.child(t).exists()]
            if taken:
                raise CommitRefused(
                    f"The output file {self._output.child(taken[0]).uri} already exists, and "
                    "outputs are never overwritten."
                )
            self._write_record(targets)
        for relative, source in staged.items():
            self._commit_file(self._output.child(relative), source, overwrite=resuming)
        if staged:
            self._log.overview(f"Committed {len(staged)} files the script wrote.")
        if self._rows_file is not None:
            self._commit_rows(succeeded, resuming=resuming)
        self.write_errors(error_lines, overwrite=resuming)

    def write_errors(self, lines: Sequence[dict[str, Any]], *, overwrite: bool = False) -> None:
        """``errors.jsonl`` beside the output, when files failed for good."""
        if not lines:
            return
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        target = self._output.child(ERRORS_FILE)
        try:
            target.write_stream(iter([data]), overwrite=overwrite)
        except FileExistsError:
            self._log.overview(
                f"{target.uri} already exists and is not overwritten; the failed files are "
                f"listed in the job's logs/{ERRORS_FILE}."
            )
            return
        self._log.overview(f"Wrote {target.uri} ({len(lines)} failed files).")

    def _commit_rows(self, succeeded: Sequence[MiniBatchRecord], *, resuming: bool) -> None:
        assert self._rows_file is not None
        target = self._output.child(self._rows_file)
        if resuming and target.exists():
            return  # written whole (the write is atomic) before the restart
        items = sum(m.items_succeeded for m in succeeded)
        if not self._format.joined_by_concatenation:
            self._commit_parquet(succeeded, target)
            return
        streamed = self._streamed
        if streamed is not None and not resuming:
            try:
                size = streamed.publish([m.index for m in succeeded])
            except FileExistsError:
                raise CommitRefused(
                    f"The output file {target.uri} already exists, and outputs are never "
                    "overwritten."
                ) from None
            if size is not None:
                self._log.overview(f"Wrote {target.uri} ({size} bytes, {items} rows).")
                return

        def chunks() -> Iterator[bytes]:
            for m in succeeded:
                self._keep_lease()
                yield from self._read_part(m.index)

        try:
            size = target.write_stream(chunks(), overwrite=False)
        except FileExistsError:
            raise CommitRefused(
                f"The output file {target.uri} already exists, and outputs are never overwritten."
            ) from None
        self._log.overview(f"Wrote {target.uri} ({size} bytes, {items} rows).")

    def _commit_parquet(self, succeeded: Sequence[MiniBatchRecord], target: Location) -> None:
        # A file without a name, which code that writes parts cannot replace by a link.
        with tempfile.TemporaryFile(dir=self._parts) as joined:
            try:
                rows = join_parquet(
                    [m.index for m in succeeded], self._open_part, joined, between=self._keep_lease
                )
            except PartsDisagree as exc:
                raise CommitRefused(str(exc)) from None
            joined.seek(0)
            try:
                size = target.write_stream(
                    iter(lambda: joined.read(PART_CHUNK_BYTES), b""), overwrite=False
                )
            except FileExistsError:
                raise CommitRefused(
                    f"The output file {target.uri} already exists, and outputs are never "
                    "overwritten."
                ) from None
        self._log.overview(f"Wrote {target.uri} ({size} bytes, {rows} rows).")

    # File access: each of these is one small step, so another storage can take its place.

    @contextmanager
    def _open_part(self, index: int) -> Iterator[IO[bytes]]:
        """The part, opened for reading (Parquet needs to seek)."""
        part = self._parts / f"{index:06d}.part"
        try:
            file: IO[bytes] = open_regular_file(part, within=self._parts)
        except FileNotFoundError:
            kept = self._kept_parts.child(part.name) if self._kept_parts is not None else None
            if kept is None or not kept.exists():
                raise CommitRefused(
                    f"The rows of mini-batch {index} are missing from the job folder ({part}).",
                    code="SystemError",
                ) from None
            file = kept.open_read()
        except OSError as exc:
            raise CommitRefused(
                f"The rows of mini-batch {index} cannot be read from {part}: {exc.strerror}."
            ) from None
        with file:
            yield file

    def _read_part(self, index: int) -> Iterator[bytes]:
        """The part's bytes in chunks: a part can be as big as its mini-batch's files."""
        part = self._parts / f"{index:06d}.part"
        try:
            file = open_regular_file(part, within=self._parts)
        except FileNotFoundError:
            if self._kept_parts is not None:
                kept = self._kept_parts.child(part.name)
                if kept.exists():
                    yield from kept.iter_bytes(PART_CHUNK_BYTES)
                    return
            raise CommitRefused(
                f"The rows of mini-batch {index} are missing from the job folder ({part}).",
                code="SystemError",
            ) from None
        except OSError as exc:
            raise CommitRefused(
                f"The rows of mini-batch {index} cannot be read from {part}: {exc.strerror}."
            ) from None
        with file:
            while chunk := file.read(PART_CHUNK_BYTES):
                yield chunk

    def _staged_files(self) -> dict[str, Path | Location]:
        """The files the script wrote to ``AZUREML_BI_OUTPUT_PATH``, by relative path: on this
        machine, and, for those it does not hold, kept in the job's remote folder."""
        root = self._staging
        found: dict[str, Path | Location] = {}
        if root.is_dir():
            found.update(
                (p.relative_to(root).as_posix(), p)
                for p in sorted(root.rglob("*"))
                if p.is_file() and not p.is_symlink()  # a link could point at a server's file
            )
        if self._kept_staging is not None:
            for entry in self._kept_staging.list_files():
                found.setdefault(entry.path, self._kept_staging.child(entry.path))
        return dict(sorted(found.items()))

    def _commit_file(self, target: Location, staged: Path | Location, *, overwrite: bool) -> None:
        if isinstance(staged, Location):  # kept by the scheduler the job was taken over from
            target.write_stream(staged.iter_bytes(PART_CHUNK_BYTES), overwrite=overwrite)
            self._keep_lease()
            return
        try:
            file = open_regular_file(staged, within=self._staging)
        except OSError as exc:
            raise CommitRefused(
                f"The file {staged} the script wrote cannot be committed: {exc.strerror}."
            ) from None
        with file as fh:
            target.write_stream(iter(lambda: fh.read(1 << 20), b""), overwrite=overwrite)
        staged.unlink()
        self._keep_lease()

    def _remove_partial_writes(self, targets: Sequence[str]) -> None:
        """Temporary files an interrupted commit left beside its targets."""
        local = self._output.local_path()
        if local is None:
            return
        for relative in targets:
            target = local / relative
            for stale in target.parent.glob(f".{target.name}.*.tmp"):
                stale.unlink(missing_ok=True)

    def _read_record(self) -> dict[str, Any] | None:
        record = self._job_folder.child(COMMIT_RECORD)
        if not record.exists():
            return None
        with record.open_read() as fh:
            value: dict[str, Any] = json.loads(fh.read())
        return value

    def _write_record(self, targets: Sequence[str]) -> None:
        value = {
            "output": self._output.uri,
            "files": list(targets),
            "owner": self._owner,
            "started_at": utcnow().isoformat(),
        }
        data = json.dumps(value, indent=2).encode()
        self._job_folder.child(COMMIT_RECORD).write_stream(iter([data]), overwrite=True)


class StreamedRows:
    """The rows file of a job, joined from its parts while the job runs.

    The parts are appended, in input order, to ``.<rows file>.<job>.tmp`` in the output folder
    (a name of the job's own, which a scheduler that takes the job over starts again). A part
    is appended once its mini-batch and every one before it have ended for good (succeeded, or
    failed with no retry left), by one thread of its own. :meth:`publish` appends what is left
    and links the file to its name, never over an existing file. Anything that goes wrong while
    appending (a part that cannot be read, a full disk) only stops the streaming: the commit
    then joins the parts as it does for a remote output.

    Args:
        folder: the output folder, on this machine's disk.
        rows_file: the rows file's name in it.
        job_name: the job, which names the hidden file.
        parts_dir: the job's part files.
        order: the indexes of the job's mini-batches, in input order.
    """

    def __init__(
        self, folder: Path, rows_file: str, job_name: str, parts_dir: Path, order: Iterable[int]
    ) -> None:
        self.target = folder / rows_file
        self.temporary = folder / f".{rows_file}.{job_name}.tmp"
        self._parts = parts_dir
        self._order = list(order)
        self._next = 0  # where in _order the next part to append is
        self._ended: dict[int, bool] = {}  # mini-batches ended for good, not appended yet
        self._appended: list[int] = []
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._failed: BaseException | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="rows-join")

    def ended(self, index: int, succeeded: bool) -> None:
        """Mini-batch ``index`` ended for good; the parts this completes are appended."""
        with self._lock:
            self._ended[index] = succeeded
            while self._next < len(self._order) and self._order[self._next] in self._ended:
                current = self._order[self._next]
                self._next += 1
                if self._ended.pop(current):
                    self._writer.submit(self._append, current)

    def publish(self, succeeded: Sequence[int]) -> int | None:
        """Append the parts not appended yet and link the file to its name; its size, or
        None when the streaming stopped (the caller joins the parts itself then).

        Args:
            succeeded: the succeeded mini-batches, in input order: what the file must hold.

        Raises:
            FileExistsError: the rows file exists.
        """
        wanted = set(succeeded)
        with self._lock:
            left = [index for index in self._order[self._next :] if index not in self._ended]
        for index in left:
            self.ended(index, index in wanted)
        self._writer.shutdown(wait=True)
        file, self._file = self._file, None
        try:
            if self._failed is not None or self._appended != list(succeeded):
                if self._failed is not None:
                    logger.warning("joining the rows while the job ran stopped: %s", self._failed)
                return None
            if file is None:
                file, self._file = self._open(), None  # no rows
            size = file.seek(0, os.SEEK_END)
            file.close()
            file = None
            try:
                os.link(self.temporary, self.target)  # fails if the name is taken
            except FileNotFoundError:
                return None  # removed meanwhile: the caller joins the parts
            return size
        finally:
            if file is not None:
                file.close()
            self.temporary.unlink(missing_ok=True)

    def discard(self, *, remove: bool = True) -> None:
        """Stop, and remove the hidden file unless ``remove`` is False (another scheduler
        that took the job over writes it now)."""
        self._writer.shutdown(wait=True, cancel_futures=True)
        if self._file is not None:
            self._file.close()
            self._file = None
        if remove:
            self.temporary.unlink(missing_ok=True)

    def _open(self) -> IO[bytes]:
        """The hidden file, made empty, in the output folder (made now if missing: a job
        whose rows never come leaves no folder behind)."""
        self.temporary.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.temporary, "wb", buffering=0)
        return self._file

    def _append(self, index: int) -> None:
        if self._failed is not None:
            return
        try:
            target = self._file if self._file is not None else self._open()
            part = self._parts / f"{index:06d}.part"
            # Written by the deployment's code: never through a link it left there.
            with open_regular_file(part, within=self._parts) as fh:
                _copy(fh, target)
            self._appended.append(index)
        except OSError as exc:
            self._failed = exc


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    """Append ``source`` to ``target`` (both unbuffered or at their ends): in the kernel where
    it can, else through a buffer."""
    size = os.fstat(source.fileno()).st_size
    copied = 0
    try:
        while copied < size:
            done = os.copy_file_range(source.fileno(), target.fileno(), size - copied)
            if done == 0:
                break
            copied += done
    except (AttributeError, OSError):  # not on this system or between these filesystems
        pass
    source.seek(copied)
    while chunk := source.read(PART_CHUNK_BYTES):
        target.write(chunk)
