"""A job's log files, laid out like Azure's batch-scoring logs, under ``<job folder>/logs/``.

``readme.txt`` describes the layout. ``job_progress_overview.txt`` is the summary a user reads
first; ``sys/master_role.txt`` is the scheduler's own record (claims, workers, every mini-batch
sent and answered, leases handed back); ``sys/node/<host>/<worker>.txt`` has one line per
mini-batch a worker ran. ``user/error.txt`` sums up the scoring script's errors and
``user/error/<worker>.txt`` holds their tracebacks; ``user/stdout/<worker>.txt`` is what the
script printed and logged (the workers write it). ``errors.jsonl`` has one line per file of a
mini-batch that failed for good.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sluiceway.clock import utcnow
from sluiceway.executors.base import MiniBatchResult
from sluiceway.storage.redaction import redact_text

logger = logging.getLogger("sluiceway.scheduler")

OVERVIEW = "job_progress_overview.txt"
SCHEDULER_RECORD = "sys/master_role.txt"
ERROR_SUMMARY = "user/error.txt"
ERRORS_FILE = "errors.jsonl"
TRACEBACK_TAIL_LINES = 30
TRACEBACK_TAIL_CHARS = 4000

README = """\
Logs of a Sluiceway batch job.

job_progress_overview.txt     what the job did: inputs, mini-batches, retries, the result or error
errors.jsonl                  one JSON line per input file of a mini-batch that failed after its
                              last retry: path, uri, mini_batch, error_type, message, traceback
                              (its last lines), attempts, failure
sys/master_role.txt           the scheduler's record: claims, workers, each mini-batch sent and
                              answered, leases handed back
sys/node/<host>/<worker>.txt  one line per mini-batch a worker ran: items, duration, result
user/error.txt                a summary of the scoring script's errors, one line per failed attempt
user/error/<worker>.txt       the full tracebacks of those errors
user/stdout/<worker>.txt      what the scoring script printed and logged, at the job's
                              logging_level
"""


def traceback_tail(text: str | None) -> str | None:
    """The last lines of a traceback: enough to see where it was raised, small enough to keep
    in the database for every failed mini-batch."""
    if not text:
        return None
    tail = "\n".join(text.rstrip("\n").splitlines()[-TRACEBACK_TAIL_LINES:])
    return tail[-TRACEBACK_TAIL_CHARS:]


def _stamp() -> str:
    return utcnow().strftime("%Y-%m-%d %H:%M:%S")


class JobLog:
    """Appends to the log files of one job.

    Args:
        job_name: the job, named in the server's own log.
        folder: the job's local ``logs`` folder (created on demand); None keeps the lines in
            the server's log only.
    """

    def __init__(self, job_name: str, folder: Path | None) -> None:
        self.job_name = job_name
        self.folder = folder
        self._host = socket.gethostname()
        self._held: dict[str, list[str]] | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Lines written in the block are appended when it ends, one write per file: a
        scheduler's loop writes a few lines per mini-batch."""
        if self._held is not None:  # an outer block writes them
            yield
            return
        self._held = {}
        try:
            yield
        finally:
            held, self._held = self._held, None
            for relative, texts in held.items():
                self._write(relative, "".join(texts))

    def start(self) -> None:
        """Create the folder and its ``readme.txt``."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        readme = self.folder / "readme.txt"
        if not readme.exists():
            readme.write_text(README, encoding="utf-8")

    def overview(self, message: str) -> None:
        """A line of the job's progress overview (also kept in the scheduler's record)."""
        logger.info("job %s: %s", self.job_name, message)
        self._append(OVERVIEW, f"{_stamp()} {message}\n")
        self.scheduler(message)

    def scheduler(self, message: str) -> None:
        """A line of the scheduler's own record."""
        self._append(SCHEDULER_RECORD, f"{_stamp()} {message}\n")

    def mini_batch(self, result: MiniBatchResult, n_files: int) -> None:
        """What one worker did with one mini-batch."""
        if result.ok:
            outcome = f"succeeded: {result.items_succeeded} items"
        else:
            outcome = f"failed ({result.failure}): {result.error_type}: {result.error_message}"
        self._append(
            f"sys/node/{self._host}/{result.worker}.txt",
            f"{_stamp()} mini-batch {result.index} attempt {result.attempt}: {n_files} files, "
            f"{result.duration:.3f} s, {outcome}\n",
        )

    def script_error(self, result: MiniBatchResult) -> None:
        """One failed attempt: a summary line, and the traceback in the worker's error file."""
        summary = (
            f"{_stamp()} mini-batch {result.index} attempt {result.attempt} on {result.worker}: "
            f"{result.error_type}: {result.error_message}\n"
        )
        self._append(ERROR_SUMMARY, summary)
        if result.traceback:
            self._append(f"user/error/{result.worker}.txt", summary + result.traceback + "\n")

    def failed_files(self, lines: Iterable[dict[str, Any]]) -> None:
        """Lines of ``errors.jsonl``, one per file of a mini-batch that failed for good."""
        self._append(ERRORS_FILE, "".join(json.dumps(line) + "\n" for line in lines))

    def _append(self, relative: str, text: str) -> None:
        if not text or self.folder is None:
            return
        if self._held is not None:
            self._held.setdefault(relative, []).append(text)
            return
        self._write(relative, text)

    def _write(self, relative: str, text: str) -> None:
        assert self.folder is not None
        text = redact_text(text)  # a SAS in an input URL or a storage error stays out
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
