"""Run one claimed model-deployment job to its end.

The runner plans the job's mini-batches into the database (once: a job taken over after a crash
keeps its plan), runs the pending ones on a worker pool, retries failures, and joins the
succeeded mini-batches' parts, in input order, into the output file. Every state change goes to
the database first, so progress is visible to the API while the job runs, and a job resumed by
another scheduler never runs a succeeded mini-batch again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sluiceway.clock import utcnow
from sluiceway.executors.base import (
    Executor,
    FailureKind,
    MiniBatchResult,
    MiniBatchTask,
    ScorerKind,
    WorkerPool,
    WorkerSpec,
)
from sluiceway.schemas.jobs import JobStatus, MiniBatchStatus
from sluiceway.services.datastores import DatastoreService
from sluiceway.storage.locations import Location
from sluiceway.store.jobs import JobRecord, JobStore

logger = logging.getLogger("sluiceway.scheduler")

NOTHING_SUCCEEDED = (
    "No succeeded mini batch item returned from run(). Please check 'response: run()' in "
    "https://aka.ms/batch-inference-documentation."
)


class JobAborted(Exception):
    """The job cannot go on; ``code`` and the message become the job's error."""

    def __init__(
        self, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []


class LeaseLost(Exception):
    """Another scheduler took the job over, or it was cancelled; stop without touching it."""


@dataclass
class _Paths:
    input_files: list[Path]
    input_root: Path
    model_dir: Path | None
    code_dir: Path | None
    output: Location
    output_dir: Path
    parts_dir: Path
    log_dir: Path


class JobRunner:
    """Runs one job while holding its lease."""

    def __init__(
        self,
        job: JobRecord,
        *,
        store: JobStore,
        datastores: DatastoreService,
        executor: Executor,
        owner: str,
        lease: timedelta,
        stop: threading.Event,
    ) -> None:
        self.job = job
        self._store = store
        self._datastores = datastores
        self._executor = executor
        self._owner = owner
        self._lease = lease
        self._stop = stop
        self._settings: dict[str, Any] = job.spec["settings"]
        self._last_renew = 0.0
        self._failed_files = 0
        self._paths: _Paths | None = None

    # -- entry point ------------------------------------------------------------------------

    def run(self) -> None:
        name = self.job.name
        try:
            paths = self._prepare()
            self._paths = paths
            self._set_status(JobStatus.RUNNING)
            self._run_mini_batches(paths)
            if self._stop.is_set():
                self._store.release(name, self._owner)
                self._log(
                    "Scheduler stopping: the job is handed back and resumes where it stopped."
                )
                return
            self._set_status(JobStatus.FINALIZING)
            self._finalize(paths)
            self._log("Job completed.")
            self._store.set_status(name, JobStatus.COMPLETED, owner=self._owner)
        except LeaseLost:
            logger.info("job %s: lease lost, stopping", name)
        except JobAborted as exc:
            self._fail(exc.code, exc.message, exc.details)
        except Exception as exc:  # a fault of ours: the job fails with it, the server goes on
            logger.exception("job %s failed unexpectedly", name)
            self._fail("SystemError", f"{type(exc).__name__}: {exc}")

    def _fail(self, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        self._log(f"Job failed: {message}")
        self._store.set_status(
            self.job.name,
            JobStatus.FAILED,
            owner=self._owner,
            error={"code": code, "message": message, "details": details or []},
        )

    def _set_status(self, status: JobStatus) -> None:
        if not self._store.set_status(self.job.name, status, owner=self._owner):
            raise LeaseLost

    # -- preparing --------------------------------------------------------------------------

    def _prepare(self) -> _Paths:
        spec = self.job.spec
        folder = self._datastores.location(
            spec["job_folder"]["datastore"], spec["job_folder"]["path"]
        )
        log_dir = self._local(folder.child("logs"), "the job folder")
        parts_dir = self._local(folder.child("parts"), "the job folder")
        log_dir.mkdir(parents=True, exist_ok=True)
        parts_dir.mkdir(parents=True, exist_ok=True)
        self._log_dir = log_dir

        (input_spec,) = spec["inputs"].values()
        source = self._datastores.location(input_spec["datastore"], input_spec["path"])
        input_root = self._local(source, f"input {input_spec['uri']!r}")
        if not source.exists():
            raise JobAborted("UserError", f"Input {input_spec['uri']!r} no longer exists.")
        if source.is_file():
            files = [input_root]
            input_root = input_root.parent
        else:
            files = [input_root / e.path for e in source.list_files()]
        if not files:
            raise JobAborted("UserError", f"Input {input_spec['uri']!r} holds no files.")

        model = spec["model"]
        model_dir = self._local(
            self._datastores.location(model["datastore"], model["path"]), "the model"
        )
        code_dir = None
        if spec.get("code"):
            code = spec["code"]
            code_dir = self._local(
                self._datastores.location(code["datastore"], code["path"]), "the code"
            )

        out = next(iter(spec["outputs"].values()))
        output_folder = self._datastores.location(out["datastore"], out["path"])
        output_dir = self._local(output_folder, f"output {out['uri']!r}")
        output_dir.mkdir(parents=True, exist_ok=True)

        size = int(self._settings["mini_batch_size"])
        # Stored relative to the input's root, so a job resumed elsewhere finds them again.
        relative = [p.relative_to(input_root).as_posix() for p in files]
        batches = [relative[i : i + size] for i in range(0, len(relative), size)]
        self._store.plan(self.job.name, batches)
        self._store.reset_running(self.job.name)
        self._log(
            f"Input {input_spec['uri']}: {len(files)} files in {len(batches)} mini-batches of up "
            f"to {size} files."
        )
        return _Paths(
            input_files=files,
            input_root=input_root,
            model_dir=model_dir,
            code_dir=code_dir,
            output=output_folder.child(out["file_name"]),
            output_dir=output_dir,
            parts_dir=parts_dir,
            log_dir=log_dir,
        )

    @staticmethod
    def _local(location: Location, what: str) -> Path:
        path = location.local_path()
        if path is None:
            raise JobAborted(
                "UserError",
                f"{what} is in datastore {location.datastore!r}, which this server cannot read in "
                "place yet; only local datastores are supported for job data in this version.",
            )
        return path

    # -- running ----------------------------------------------------------------------------

    def _worker_spec(self, paths: _Paths) -> WorkerSpec:
        spec = self.job.spec
        code = spec.get("code")
        return WorkerSpec(
            job_name=self.job.name,
            scorer=ScorerKind(spec["scorer"]),
            model_dir=str(paths.model_dir) if paths.model_dir else None,
            output_dir=str(paths.output_dir),
            parts_dir=str(paths.parts_dir),
            log_dir=str(paths.log_dir),
            code_dir=str(paths.code_dir) if paths.code_dir else None,
            scoring_script=code["scoring_script"] if code else None,
            append_rows=self._settings["output_action"] == "append_row",
            logging_level=self._settings["logging_level"],
            environment_variables=dict(self._settings.get("environment_variables") or {}),
        )

    def _run_mini_batches(self, paths: _Paths) -> None:
        done = self._store.mini_batches(self.job.name)
        self._failed_files = sum(len(m.files) for m in done if m.status is MiniBatchStatus.FAILED)
        pending = deque(m for m in done if m.status is MiniBatchStatus.PENDING)
        if not pending:
            return
        attempts = {m.index: m.attempts for m in pending}
        files = {m.index: m.files for m in pending}
        settings = self._settings
        wanted = int(settings["instance_count"]) * int(settings["max_concurrency_per_instance"])
        workers = max(1, min(wanted, len(pending)))
        self._log(f"Starting {workers} workers for {len(pending)} pending mini-batches.")
        self._input_root = paths.input_root
        pool = self._executor.open_pool(self._worker_spec(paths), workers)
        try:
            self._dispatch(pool, pending, attempts, files)
        finally:
            pool.close(kill=True)

    def _dispatch(
        self,
        pool: WorkerPool,
        pending: deque[Any],
        attempts: dict[int, int],
        files: dict[int, tuple[str, ...]],
    ) -> None:
        timeout = float(self._settings["timeout"])
        max_attempts = int(self._settings["max_retries"]) + 1
        in_flight = 0
        while pending or in_flight:
            self._heartbeat()
            if self._stop.is_set():
                return
            while pending and pool.idle() > 0:
                batch = pending.popleft()
                attempts[batch.index] += 1
                local = tuple(str(self._input_root / f) for f in batch.files)
                task = MiniBatchTask(batch.index, local, attempts[batch.index], timeout)
                self._store.start_mini_batch(self.job.name, batch.index, task.attempt, "pool")
                pool.submit(task)
                in_flight += 1
            for result in pool.poll(0.5):
                in_flight -= 1
                retry = self._record(result, max_attempts, len(files[result.index]))
                if retry:
                    pending.append(_Pending(result.index, files[result.index]))

    def _record(self, result: MiniBatchResult, max_attempts: int, n_files: int) -> bool:
        """Store a mini-batch's result; True when it should be tried again."""
        name = self.job.name
        if result.ok:
            self._store.finish_mini_batch(
                name,
                result.index,
                status=MiniBatchStatus.SUCCEEDED,
                items_succeeded=result.items_succeeded,
            )
            self._log(
                f"Mini-batch {result.index} succeeded on {result.worker} "
                f"(attempt {result.attempt}, "
                f"{result.items_succeeded} items, {result.duration:.2f} s)."
            )
            return False
        error = {
            "type": result.error_type,
            "message": result.error_message,
            "failure": result.failure.value if result.failure else None,
            "attempt": result.attempt,
            "worker": result.worker,
        }
        self._write_error(result)
        if result.failure is FailureKind.INIT_ERROR:
            self._store.finish_mini_batch(
                name, result.index, status=MiniBatchStatus.FAILED, error=error
            )
            raise JobAborted(
                "UserError",
                f"The scoring script's init() failed: {result.error_type}: {result.error_message}",
                [error],
            )
        retry = result.attempt < max_attempts
        status = MiniBatchStatus.PENDING if retry else MiniBatchStatus.FAILED
        self._store.finish_mini_batch(name, result.index, status=status, error=error)
        self._log(
            f"Mini-batch {result.index} failed on {result.worker} (attempt {result.attempt}): "
            f"{result.error_type}: {result.error_message}"
            + ("; retrying." if retry else "; no retries left.")
        )
        if retry:
            return True
        self._failed_files += n_files
        threshold = int(self._settings["error_threshold"])
        if threshold != -1 and self._failed_files > threshold:
            raise JobAborted(
                "UserError",
                f"{self._failed_files} files failed, which is more than error_threshold "
                f"({threshold}). Last error: {result.error_type}: {result.error_message}",
                [error],
            )
        return False

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_renew < self._lease.total_seconds() / 3:
            return
        self._last_renew = now
        status = self._store.renew(self.job.name, self._owner, self._lease)
        if status is None or status.is_terminal:
            raise LeaseLost

    # -- finalizing -------------------------------------------------------------------------

    def _finalize(self, paths: _Paths) -> None:
        batches = self._store.mini_batches(self.job.name)
        succeeded = [m for m in batches if m.status is MiniBatchStatus.SUCCEEDED]
        items = sum(m.items_succeeded for m in succeeded)
        failed = [m for m in batches if m.status is MiniBatchStatus.FAILED]
        self._log(
            f"Processed {len(batches)} mini-batches: {len(succeeded)} succeeded, {len(failed)} "
            f"failed; {items} items succeeded."
        )
        if items == 0:
            details = [m.error for m in failed if m.error][:10]
            raise JobAborted("UserError", NOTHING_SUCCEEDED, details)
        if self._settings["output_action"] != "append_row":
            return

        def chunks() -> Iterator[bytes]:
            for m in succeeded:
                part = paths.parts_dir / f"{m.index:06d}.part"
                if part.exists():
                    yield part.read_bytes()

        try:
            size = paths.output.write_stream(chunks(), overwrite=False)
        except FileExistsError:
            raise JobAborted(
                "UserError",
                f"The output file {paths.output.uri} already exists, and outputs are never "
                "overwritten.",
            ) from None
        self._log(f"Wrote {paths.output.uri} ({size} bytes, {items} rows).")

    # -- logs -------------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        log_dir = getattr(self, "_log_dir", None)
        logger.info("job %s: %s", self.job.name, message)
        if log_dir is None:
            return
        stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S")
        with open(log_dir / "job_progress_overview.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")

    def _write_error(self, result: MiniBatchResult) -> None:
        log_dir: Path | None = getattr(self, "_log_dir", None)
        if log_dir is None:
            return
        user = log_dir / "user"
        (user / "error").mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S")
        summary = (
            f"{stamp} mini-batch {result.index} attempt {result.attempt} on {result.worker}: "
            f"{result.error_type}: {result.error_message}\n"
        )
        with open(user / "error.txt", "a", encoding="utf-8") as fh:
            fh.write(summary)
        if result.traceback:
            with open(user / "error" / f"{result.worker}.txt", "a", encoding="utf-8") as fh:
                fh.write(summary + result.traceback + "\n")
        if self._paths is not None:
            with open(log_dir / "errors.jsonl", "a", encoding="utf-8") as fh:
                for path in self._files_of(result.index):
                    fh.write(
                        json.dumps(
                            {
                                "file": path,
                                "mini_batch": result.index,
                                "attempt": result.attempt,
                                "error_type": result.error_type,
                                "error": result.error_message,
                            }
                        )
                        + "\n"
                    )

    def _files_of(self, index: int) -> tuple[str, ...]:
        for m in self._store.mini_batches(self.job.name):
            if m.index == index:
                return m.files
        return ()


@dataclass(frozen=True)
class _Pending:
    index: int
    files: tuple[str, ...]
