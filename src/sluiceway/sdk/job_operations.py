"""``ml_client.jobs``: follow batch jobs, read their logs, cancel them, rerun what failed,
and fetch what they wrote."""

from __future__ import annotations

import builtins
import codecs
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sluiceway.entities.job import BatchJob
from sluiceway.errors import ResourceNotFoundError, SluicewayError, ValidationError
from sluiceway.schemas.jobs import JobStatus
from sluiceway.sdk.connection import Connection, file_path, segment
from sluiceway.sdk.poller import LROPoller

if TYPE_CHECKING:
    from rich.console import RenderableType

NAMED_OUTPUTS_FOLDER = "named-outputs"
ARTIFACTS_FOLDER = "artifacts"
OVERVIEW_LOG = "job_progress_overview.txt"
STREAMED_LOG_LINES = 8  # log lines shown under the progress bar


class JobFailedError(SluicewayError):
    """A job the SDK was following ended as ``Failed``; ``job`` holds its last state."""

    status_code = 500
    code = "JobFailed"

    def __init__(self, job: BatchJob) -> None:
        reason = job.error.message if job.error is not None else "the server recorded no error"
        super().__init__(f"Job {job.name} failed: {reason}", target=job.name)
        self.job = job


def _print_line(text: str) -> None:
    print(text, flush=True)


def _safe_relative(value: str) -> PurePosixPath:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValidationError(f"the server listed a file path {value!r} outside the output folder")
    return path


class LogTail:
    """Follows one log file of a job: each :meth:`read` returns the lines added since the last
    one (a log that does not exist yet reads as empty)."""

    def __init__(self, connection: Connection, job: str, path: str) -> None:
        self._connection = connection
        self._url = f"/jobs/{segment(job)}/logs/{file_path(path)}"
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def read(self, *, final: bool = False) -> list[str]:
        """The complete lines added since the last read; with ``final``, a last line without
        its newline too."""
        try:
            data = b"".join(
                self._connection.stream("GET", self._url, params={"offset": self._offset})
            )
        except ResourceNotFoundError:
            data = b""
        self._offset += len(data)
        text = self._partial + self._decoder.decode(data, final=final)
        lines = text.split("\n")
        self._partial = lines.pop()
        if final and self._partial:
            lines.append(self._partial)
            self._partial = ""
        return lines


class _CancelPoller(LROPoller[None]):
    """The cancel of a job: done once the job has ended."""

    def __init__(self, operations: JobOperations, name: str, poll_interval: float) -> None:
        super().__init__(None, status="InProgress")
        self._operations = operations
        self._name = name
        self._poll_interval = poll_interval
        self._callbacks: list[Callable[[LROPoller[None]], object]] = []

    def done(self) -> bool:
        if self._status == "InProgress":
            job = self._operations.get(self._name)
            if job.is_terminal:
                self._status = "Succeeded" if job.status == JobStatus.CANCELED else job.status
                for callback in self._callbacks:
                    callback(self)
        return self._status != "InProgress"

    def status(self) -> str:
        self.done()
        return self._status

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the job has ended, or ``timeout`` seconds (None: for ever)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.done():
            if end is not None and time.monotonic() >= end:
                return
            self._operations._sleep(self._poll_interval)

    def result(self, timeout: float | None = None) -> None:
        """Wait until the job has ended (or ``timeout``); a cancel has no result."""
        self.wait(timeout)

    def add_done_callback(self, func: Callable[[LROPoller[None]], object]) -> None:
        if self.done():
            func(self)
        else:
            self._callbacks.append(func)


class JobOperations:
    """``ml_client.jobs``.

    Args:
        connection: The server.
        out: Where ``stream`` writes its lines (default: standard output).
        sleep: How ``stream`` waits between polls (tests pass a fake).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        out: Callable[[str], None] = _print_line,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connection = connection
        self._out = out
        self._sleep = sleep

    def get(self, name: str) -> BatchJob:
        """Raises ``ResourceNotFoundError`` when there is no job ``name``."""
        return BatchJob._from_rest(
            self._connection.request("GET", f"/jobs/{segment(name)}", expected=(200,))
        )

    def list(
        self,
        endpoint_name: str | None = None,
        deployment_name: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        *,
        parent_job_name: str | None = None,
        list_view_type: Any = None,
    ) -> list[BatchJob]:
        """Jobs, newest first, optionally of one endpoint, deployment or status.

        ``parent_job_name`` is Azure's way to reach the ``batchscoring`` step of a model
        deployment's job; a Sluiceway job is its own step, so the job itself is returned.
        ``list_view_type`` is accepted for compatibility and ignored.
        """
        if parent_job_name is not None:
            return [self.get(parent_job_name)]
        answer = self._connection.request(
            "GET",
            "/jobs",
            params={
                "endpoint_name": endpoint_name,
                "deployment_name": deployment_name,
                "status": status,
                "limit": limit,
            },
            expected=(200,),
        )
        return [BatchJob._from_rest(item) for item in answer or []]

    def begin_cancel(self, name: str, *, poll_interval: float = 1.0) -> LROPoller[None]:
        """Cancel a job, as Azure's ``ml_client.jobs.begin_cancel``.

        A queued job ends ``Canceled`` at once; a running one goes to ``CancelRequested`` and
        its workers are stopped. The poller is done once the job has ended; ``.result()`` and
        ``.wait()`` wait for that.

        Raises:
            ResourceNotFoundError: no such job.
            ConflictError: the job already ended ``Completed`` or ``Failed``.
        """
        self._connection.request("POST", f"/jobs/{segment(name)}/cancel", expected=(202,))
        return _CancelPoller(self, name, poll_interval)

    def rerun_failed(self, name: str) -> BatchJob:
        """Start a new job over exactly the files that failed in job ``name``, with the same
        deployment and settings; its outputs go to the new job's own default location.

        Raises:
            ResourceNotFoundError: no such job.
            ConflictError: the job has not ended, or no file failed in it.
        """
        return BatchJob._from_rest(
            self._connection.request("POST", f"/jobs/{segment(name)}/rerun-failed", expected=(201,))
        )

    def list_logs(self, name: str) -> builtins.list[dict[str, Any]]:
        """The job's log files: ``[{"path", "size"}]``, paths relative to its ``logs`` folder."""
        answer = self._connection.request("GET", f"/jobs/{segment(name)}/logs", expected=(200,))
        return [dict(item) for item in answer or []]

    def read_log(self, name: str, path: str = OVERVIEW_LOG, offset: int = 0) -> str:
        """A log file's text (from byte ``offset`` on).

        Raises:
            ResourceNotFoundError: no such job or log file.
        """
        url = f"/jobs/{segment(name)}/logs/{file_path(path)}"
        data = b"".join(self._connection.stream("GET", url, params={"offset": offset}))
        return data.decode("utf-8", errors="replace")

    def follow_log(
        self, name: str, path: str = OVERVIEW_LOG, *, poll_interval: float = 1.0
    ) -> Iterator[str]:
        """The lines of a log file as they are written, until the job has ended.

        Raises:
            ResourceNotFoundError: no such job.
        """
        tail = LogTail(self._connection, name, path)
        while True:
            ended = self.get(name).is_terminal
            yield from tail.read(final=ended)
            if ended:
                return
            self._sleep(poll_interval)

    def stream(self, name: str, *, poll_interval: float = 2.0) -> None:
        """Print the job's status changes and progress until it ends.

        Raises:
            JobFailedError: the job failed; the message is the job's error.
        """
        job = self.get(name)
        self._out(f"RunId: {job.name}")
        if job.studio_url:
            self._out(f"Web View: {job.studio_url}")
        if self._out is _print_line and sys.stdout.isatty():
            job = self._follow_with_bar(job, poll_interval)
        else:
            job = self._follow_with_lines(job, poll_interval)
        self._out("")
        self._out("Execution Summary")
        self._out("=================")
        self._out(f"RunId: {job.name}")
        self._out(f"Status: {job.status}")
        if job.status_detail and job.status != JobStatus.FAILED:
            self._out(f"Detail: {job.status_detail}")
        if job.status == JobStatus.FAILED:
            if job.error is not None:
                self._out(f"Error: {job.error.message}")
            raise JobFailedError(job)

    def _follow_with_bar(self, job: BatchJob, poll_interval: float) -> BatchJob:
        """A progress bar over the mini-batches, with the newest lines of the job's progress
        log under it, for a terminal."""
        from collections import deque

        from rich.console import Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        columns = (
            TextColumn("{task.description:<15}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("mini-batches  {task.fields[detail]}"),
            TimeElapsedColumn(),
        )
        bar = Progress(*columns)
        task = bar.add_task(str(job.status), total=None, detail="")
        tail = LogTail(self._connection, job.name, OVERVIEW_LOG)
        recent: deque[str] = deque(maxlen=STREAMED_LOG_LINES)

        def view() -> RenderableType:
            return Group(bar, Text("\n".join(recent), style="dim", overflow="ellipsis"))

        with Live(view(), refresh_per_second=4, transient=False) as live:
            while True:
                p = job.progress
                eta = f", ETA {p.eta_seconds:.0f} s" if p.eta_seconds is not None else ""
                rate = f", {p.items_per_second:.1f} items/s" if p.items_per_second else ""
                bar.update(
                    task,
                    description=str(job.status),
                    total=p.mini_batches_total or None,
                    completed=p.mini_batches_done,
                    detail=f"{p.mini_batches_running} running, items {p.items_succeeded} ok / "
                    f"{p.items_failed} failed, {p.mini_batches_retried} retried{rate}{eta}",
                )
                recent.extend(tail.read(final=job.is_terminal))
                live.update(view(), refresh=True)
                if job.is_terminal:
                    return job
                self._sleep(poll_interval)
                job = self.get(job.name or "")

    def _follow_with_lines(self, job: BatchJob, poll_interval: float) -> BatchJob:
        """Status changes and progress as lines, for logs and pipes."""
        name = job.name or ""
        last_status: str | None = None
        last_counts: tuple[int, ...] | None = None
        step_lines: dict[str, str] = {}
        while True:
            if job.status != last_status:
                self._out(f"Status: {job.status}")
                last_status = job.status
            for step in job.steps:  # a pipeline job's steps, as they change
                line = step.describe()
                if step.status != "NotStarted" and step_lines.get(step.name) != line:
                    self._out(line)
                    step_lines[step.name] = line
            progress = job.progress
            counts = (
                progress.mini_batches_total,
                progress.mini_batches_done,
                progress.mini_batches_retried,
                progress.items_succeeded,
                progress.items_failed,
            )
            if progress.mini_batches_total and counts != last_counts:
                self._out(f"Progress: {progress.describe()}")
                last_counts = counts
            if job.is_terminal:
                return job
            self._sleep(poll_interval)
            job = self.get(name)

    def _download_output(self, name: str, output: str, folder: Path) -> None:
        listing = self._connection.request(
            "GET", f"/jobs/{segment(name)}/outputs/{segment(output)}", expected=(200,)
        )
        files = listing.get("files", []) if isinstance(listing, dict) else []
        for item in files:
            relative = _safe_relative(str(item["path"]))
            self._connection.download_to(
                f"/jobs/{segment(name)}/outputs/{segment(output)}/files/{file_path(str(relative))}",
                folder.joinpath(*relative.parts),
            )

    def _download_logs(self, name: str, folder: Path) -> None:
        listing = self._connection.request("GET", f"/jobs/{segment(name)}/logs", expected=(200,))
        for item in listing or []:
            relative = _safe_relative(str(item["path"]))
            self._connection.download_to(
                f"/jobs/{segment(name)}/logs/{file_path(str(relative))}",
                folder.joinpath(*relative.parts),
            )

    def download(
        self,
        name: str,
        download_path: str | os.PathLike[str] = ".",
        output_name: str | None = None,
        all: bool = False,
    ) -> None:
        """Download a job's outputs as Azure lays them out.

        Output ``o`` goes to ``<download_path>/named-outputs/<o>/``. With ``output_name`` only
        that output is downloaded, otherwise every output; ``all=True`` adds the job's logs
        under ``<download_path>/artifacts/``.

        Raises:
            ResourceNotFoundError: no such job or output.
        """
        job = self.get(name)
        base = Path(download_path)
        outputs = [output_name] if output_name is not None else list(job.outputs)
        for output in outputs:
            self._download_output(job.name, output, base / NAMED_OUTPUTS_FOLDER / output)
        if all:
            self._download_logs(job.name, base / ARTIFACTS_FOLDER)
