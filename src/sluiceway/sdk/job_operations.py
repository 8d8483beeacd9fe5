"""``ml_client.jobs``: follow batch jobs and fetch what they wrote."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from sluiceway.entities.job import BatchJob
from sluiceway.errors import SluicewayError, ValidationError
from sluiceway.schemas.jobs import JobStatus
from sluiceway.sdk.connection import Connection, file_path, segment

NAMED_OUTPUTS_FOLDER = "named-outputs"
ARTIFACTS_FOLDER = "artifacts"


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
        if job.status == JobStatus.FAILED:
            if job.error is not None:
                self._out(f"Error: {job.error.message}")
            raise JobFailedError(job)

    def _follow_with_bar(self, job: BatchJob, poll_interval: float) -> BatchJob:
        """A progress bar over the mini-batches, for a terminal."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("mini-batches  {task.fields[detail]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns) as bar:
            task = bar.add_task(str(job.status), total=None, detail="")
            while True:
                p = job.progress
                eta = f", ETA {p.eta_seconds:.0f} s" if p.eta_seconds is not None else ""
                bar.update(
                    task,
                    description=str(job.status),
                    total=p.mini_batches_total or None,
                    completed=p.mini_batches_done,
                    detail=f"items {p.items_succeeded} ok / {p.items_failed} failed, "
                    f"{p.mini_batches_retried} retried{eta}",
                )
                if job.is_terminal:
                    return job
                self._sleep(poll_interval)
                job = self.get(job.name or "")

    def _follow_with_lines(self, job: BatchJob, poll_interval: float) -> BatchJob:
        """Status changes and progress as lines, for logs and pipes."""
        name = job.name or ""
        last_status: str | None = None
        last_counts: tuple[int, ...] | None = None
        while True:
            if job.status != last_status:
                self._out(f"Status: {job.status}")
                last_status = job.status
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
