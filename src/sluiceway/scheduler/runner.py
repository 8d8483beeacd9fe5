"""Run one claimed model-deployment job to its end.

The runner plans the job's mini-batches into the database (once: a job taken over after a crash
keeps its plan), runs the pending ones on a worker pool, retries failures, and commits the
succeeded mini-batches' parts, in input order, into the output file. Every state change goes to
the database first, so progress is visible to the API while the job runs, and a job resumed by
another scheduler never runs a succeeded mini-batch again.

Outputs are staged, then committed (``commit.py``): workers write part files and the script's
own files (``AZUREML_BI_OUTPUT_PATH``) under the job's folder, and only a job that completes
copies them into its output. A canceled job commits nothing.

While it runs, the runner checks the job's status about twice a second: a cancel request stops
the workers at once; a lost lease (another scheduler took the job over) stops the runner without
touching the job. A graceful stop lets running mini-batches finish for the drain period, hands
the others back and releases the lease.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sluiceway.environments.cache import BuildFailed, JobEnvironments
from sluiceway.errors import ValidationError
from sluiceway.executors.base import (
    BuildsEnvironments,
    Executor,
    ExecutorUnavailable,
    FailureKind,
    Interpreter,
    JobContext,
    JobData,
    MiniBatchResult,
    MiniBatchTask,
    ScorerKind,
    WorkerPool,
    WorkerSpec,
)
from sluiceway.runtime.output_formats import OutputFormat
from sluiceway.runtime.parts import part_path
from sluiceway.scheduler.access import JobAccess, JobAccessRefused, check_access
from sluiceway.scheduler.commit import CommitRefused, OutputCommit, StreamedRows
from sluiceway.scheduler.joblog import ERRORS_FILE, JobLog, traceback_tail
from sluiceway.scheduler.lease import JobCanceled, JobLease, LeaseLost
from sluiceway.scheduler.observer import MiniBatchOutcome, SchedulerObserver
from sluiceway.scheduler.staging import InputFiles, JobStaging, RegisteredFilesChanged
from sluiceway.schemas.jobs import JobStatus, MiniBatchStatus
from sluiceway.storage.locations import Location, Locations
from sluiceway.storage.paths import open_regular_file
from sluiceway.storage.redaction import describe_error, redact_text
from sluiceway.store.jobs import (
    JobRecord,
    JobStore,
    MiniBatchEnd,
    MiniBatchRecord,
    MiniBatchStart,
)

logger = logging.getLogger("sluiceway.scheduler")
_T = TypeVar("_T")

NOTHING_SUCCEEDED = (
    "No succeeded mini batch item returned from run(). Please check 'response: run()' in "
    "https://aka.ms/batch-inference-documentation."
)
POLL_SECONDS = 0.5  # how long one poll of the pool waits for results
ERROR_DETAILS = 10  # failed mini-batches described in a failed job's error


class JobAborted(Exception):
    """The job cannot go on; ``code`` and the message become the job's error."""

    def __init__(
        self, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class _Paths:
    input_root: Path  # mini-batch files are stored relative to it
    model_dir: Path | None
    code_dir: Path | None
    output_folder: Location  # the output: the rows file and the script's files go here
    output_name: str
    rows_file: str  # append_row: the file, in output_folder, that the rows are joined into
    job_folder: Location
    staging_dir: Path  # AZUREML_BI_OUTPUT_PATH: the script's own files, until committed
    parts_dir: Path  # append_row: one part file per succeeded mini-batch
    log_dir: Path
    # The model and code are read in place (a local datastore), not fetched for this job alone:
    # only then can the workers outlive the job (the fetched copies go with it).
    shared_folders: bool = True
    # append_row in a remote job folder: where each succeeded mini-batch's part is kept, so a
    # scheduler on another machine that takes the job over finds the parts it did not make.
    kept_parts: Location | None = None
    # A remote job folder: where the script's staged files are kept as mini-batches succeed,
    # for the same reason (``staging_dir`` is this folder's local mirror).
    kept_staging: Location | None = None


class JobRunner:
    """Runs one job while holding its lease."""

    def __init__(
        self,
        job: JobRecord,
        *,
        store: JobStore,
        datastores: Locations,
        executor: Executor,
        owner: str,
        lease: timedelta,
        stop: threading.Event,
        drain_seconds: float = 10.0,
        access: JobAccess | None = None,
        max_workers: int | None = None,
        observer: SchedulerObserver | None = None,
        environments: JobEnvironments | None = None,
    ) -> None:
        self.job = job
        self._observer = observer or SchedulerObserver()
        self._environments = environments
        self._interpreter: Interpreter | None = None
        self._built_there: str | None = None  # an environment the executor built (Ray nodes)
        self._access = access
        self._max_workers = max_workers
        self._store = store
        self._datastores = datastores
        self._executor = executor
        self._owner = owner
        self._stop = stop
        self._drain = drain_seconds
        self._settings: dict[str, Any] = job.spec["settings"]
        self._staging = JobStaging(datastores, job.name)
        # A remote job folder's logs go up every few seconds while the job runs.
        self._lease = JobLease(store, job.name, owner, lease, checked=self._staging.upload_logs)
        self._failed_files = 0
        self._done = 0
        self._total = 0
        self._ended: list[MiniBatchEnd] = []  # results not written yet; see _flush()
        self._paths: _Paths | None = None
        self._inputs: InputFiles | None = None
        self._streamed: StreamedRows | None = None  # the rows joined while the job runs
        self._log = JobLog(job.name, self._staging.work_dir(self._job_folder().child("logs")))

    # -- entry point ------------------------------------------------------------------------

    def nudge(self) -> None:
        """A cancel was requested: see it at the next check rather than when one is due."""
        self._lease.nudge()

    def run(self) -> None:
        name = self.job.name
        try:
            self._log.start()
            self._log.scheduler(
                f"Claimed by scheduler {self._owner} with status {self.job.status.value}."
            )
            if self.job.status is JobStatus.CANCEL_REQUESTED:
                raise JobCanceled
            check_access(self._access, self.job, "start")
            with self._environment():
                paths = self._prepare()
                self._paths = paths
                self._lease.set_status(JobStatus.RUNNING)
                if not self._run_mini_batches(paths):
                    self._hand_back()
                    return
                self._lease.set_status(JobStatus.FINALIZING)
                self._finalize(paths)
        except LeaseLost:
            if self._streamed is not None:
                self._streamed.discard(remove=False)  # the job's new scheduler writes it
                self._streamed = None
            logger.info("job %s: lease lost, stopping", name)
            self._log.scheduler("The lease was lost; another scheduler runs the job now.")
        except JobCanceled:
            self._cancel()
        except JobAborted as exc:
            self._fail(exc.code, exc.message, exc.details)
        except JobAccessRefused as exc:
            self._fail("Forbidden", str(exc))
        except ExecutorUnavailable as exc:
            self._fail("ComputeUnavailable", str(exc))
        except Exception as exc:  # a fault of ours: the job fails with it, the server goes on
            logger.exception("job %s failed unexpectedly", name)
            self._fail("SystemError", describe_error(exc))
        finally:
            if self._streamed is not None:
                self._streamed.discard()
            self._staging.close()

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        """The deployment's environment, built first if it is not, held while the job runs.

        The build runs off this thread (the lease is kept and a cancel seen meanwhile): here,
        or, for an executor whose workers run elsewhere (a Ray cluster), where they run.
        """
        content = self.job.spec.get("environment")
        note = self.job.spec.get("environment_note")
        if note:
            self._log.overview(note)
        if not content:
            yield
            return
        if self._environments is None:
            raise JobAborted(
                "SystemError",
                "The deployment names an environment, and this scheduler builds none.",
            )
        self._log.scheduler(f"Environment {content.get('hash', '')}: getting its build.")
        try:
            if isinstance(self._executor, BuildsEnvironments):
                built = self._executor.prepare_environment(content, self._environments.files)
                self._built_there = self._wait(built)
                self._log.scheduler(
                    f"Environment {self._built_there}: built on the compute's nodes; the "
                    "workers run its interpreter there."
                )
                yield
                return
            self._wait(self._environments.start(content))
            with self._environments.use(content) as interpreter:
                self._interpreter = interpreter
                self._log.scheduler(f"Workers run {interpreter.executable}.")
                yield
        except BuildFailed as exc:
            raise JobAborted(
                "UserError", f"The deployment's environment could not be built:\n{exc.tail}"
            ) from None

    def _wait(self, future: Future[_T]) -> _T:
        """``future``'s result, keeping the lease and watching for a cancel meanwhile."""
        while True:
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                self._lease.check_in()

    # -- endings ----------------------------------------------------------------------------

    def _complete(self, failed_files: int) -> None:
        if failed_files:
            self._log.overview(
                f"Job completed; {failed_files} files failed and are listed in {ERRORS_FILE}."
            )
        else:
            self._log.overview("Job completed.")
        if self._store.set_status(self.job.name, JobStatus.COMPLETED, owner=self._owner):
            self._remove_staged()

    def _fail(self, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        message = redact_text(message)
        self._flush_results()
        self._store.reset_running(self.job.name)
        if self._paths is not None:
            with contextlib.suppress(Exception):
                self._output_commit(self._paths).write_errors(self._all_error_lines())
        self._log.overview(f"Job failed: {message}")
        if self._store.set_status(
            self.job.name,
            JobStatus.FAILED,
            owner=self._owner,
            error={"code": code, "message": message, "details": details or []},
        ):
            self._remove_staged()

    def _cancel(self) -> None:
        self._flush_results()
        self._store.reset_running(self.job.name)
        if not self._store.set_status(self.job.name, JobStatus.CANCELED, owner=self._owner):
            return
        self._log.overview("Job canceled; nothing was committed to its outputs.")
        self._remove_staged()

    def _remove_staged(self) -> None:
        """The parts and the script's staged files, of no use once the job has ended."""
        if self._paths is not None:
            folders = [self._paths.parts_dir, self._paths.staging_dir.parent]
        else:
            found = (self._job_folder().child(f).local_path() for f in ("parts", "staging"))
            folders = [folder for folder in found if folder is not None]
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        if self._paths is not None:
            for kept in (self._paths.kept_parts, self._paths.kept_staging):
                if kept is not None:
                    with contextlib.suppress(Exception):
                        kept.backend.fs.rm(kept.full_path, recursive=True)

    def _hand_back(self) -> None:
        returned = self._store.reset_running(self.job.name)
        self._store.release(self.job.name, self._owner)
        self._log.overview(
            "Scheduler stopping: the job is handed back and resumes where it stopped"
            + (f" ({returned} running mini-batches will run again)." if returned else ".")
        )

    # -- preparing --------------------------------------------------------------------------

    def _job_folder(self) -> Location:
        folder = self.job.spec["job_folder"]
        return self._datastores.location(folder["datastore"], folder["path"])

    def _prepare(self) -> _Paths:
        spec = self.job.spec
        job_folder = self._job_folder()
        log_dir = self._staging.work_dir(job_folder.child("logs"))
        parts_dir = self._staging.work_dir(job_folder.child("parts"))
        parts_dir.mkdir(parents=True, exist_ok=True)

        (input_spec,) = spec["inputs"].values()
        input_root = self._plan(input_spec)

        model = spec["model"]
        model_location = self._datastores.location(model["datastore"], model["path"])
        model_dir = self._registered(model_location)
        shared = model_location.local_path() is not None
        code_dir = None
        if spec.get("code"):
            code = spec["code"]
            code_location = self._datastores.location(code["datastore"], code["path"])
            code_dir = self._registered(code_location)
            shared = shared and code_location.local_path() is not None

        parts = job_folder.child("parts")
        kept_parts = None
        if parts.local_path() is None and self._settings["output_action"] == "append_row":
            kept_parts = parts
        output_name, out = next(iter(spec["outputs"].items()))
        output_folder = self._datastores.location(out["datastore"], out["path"])
        staging = job_folder.child(f"staging/{output_name}")
        staging_dir = self._staging.work_dir(staging)
        staging_dir.mkdir(parents=True, exist_ok=True)
        return _Paths(
            input_root=input_root,
            model_dir=model_dir,
            code_dir=code_dir,
            output_folder=output_folder,
            output_name=output_name,
            rows_file=out["file_name"],
            job_folder=job_folder,
            staging_dir=staging_dir,
            parts_dir=parts_dir,
            log_dir=log_dir,
            shared_folders=shared,
            kept_parts=kept_parts,
            kept_staging=staging if staging.local_path() is None else None,
        )

    def _registered(self, location: Location) -> Path:
        """The model's or code's folder, checked against what was registered."""
        try:
            return self._staging.folder(location)
        except RegisteredFilesChanged as exc:
            raise JobAborted("SystemError", str(exc)) from None

    def _plan(self, input_spec: dict[str, Any]) -> Path:
        """Cut the input into mini-batches, unless a scheduler before this one did; return the
        folder the mini-batches' file paths are relative to."""
        source = self._datastores.stored_location(input_spec)
        if not source.exists():
            raise JobAborted("UserError", f"Input {input_spec['uri']!r} no longer exists.")
        self._inputs = self._staging.inputs(source)
        root = self._inputs.root
        reset = self._store.reset_running(self.job.name)
        if self._store.counts(self.job.name).total:
            self._log.overview(
                "Resuming the job where it stopped"
                + (f"; {reset} mini-batches that were running will run again." if reset else ".")
            )
            return root
        files = self._input_files(source, input_spec)
        size = int(self._settings["mini_batch_size"])
        batches = [files[i : i + size] for i in range(0, len(files), size)]
        self._store.plan(self.job.name, batches)
        self._log.overview(
            f"Input {input_spec['uri']}: {len(files)} files in {len(batches)} mini-batches of up "
            f"to {size} files."
        )
        return root

    def _input_files(self, source: Location, input_spec: dict[str, Any]) -> list[str]:
        """The input's files, relative to its folder, in input order; an explicit list in the
        job (a rerun of failed files) is used as it is, once every file is checked."""
        if source.is_file():
            return [source.path.rsplit("/", 1)[-1]]
        listed = input_spec.get("files")
        if listed is None:
            files = source.list_paths()
            if not files:
                raise JobAborted("UserError", f"Input {input_spec['uri']!r} holds no files.")
            return files
        missing = [f for f in listed if not source.child(f).is_file()]
        if missing:
            shown = ", ".join(repr(f) for f in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise JobAborted(
                "UserError",
                f"{len(missing)} files the job lists no longer exist in input "
                f"{input_spec['uri']!r}: {shown}{more}.",
            )
        return [str(f) for f in listed]

    # -- running ----------------------------------------------------------------------------

    def _worker_spec(self, paths: _Paths) -> WorkerSpec:
        spec = self.job.spec
        code = spec.get("code")
        return WorkerSpec(
            scorer=ScorerKind(spec["scorer"]),
            model_dir=str(paths.model_dir) if paths.model_dir else None,
            code_dir=str(paths.code_dir) if paths.code_dir else None,
            scoring_script=code["scoring_script"] if code else None,
            logging_level=self._settings["logging_level"],
            environment_variables=dict(self._settings.get("environment_variables") or {}),
            interpreter=self._interpreter,
            environment=self._built_there,
        )

    def _job_context(self, paths: _Paths) -> JobContext:
        return JobContext(
            job_name=self.job.name,
            output_dir=str(paths.staging_dir),
            parts_dir=str(paths.parts_dir),
            log_dir=str(paths.log_dir),
            append_rows=self._settings["output_action"] == "append_row",
            input_dir=str(paths.input_root),
            output_format=self._output_format,
            input_columns=bool(self._settings.get("include_input_columns", False)),
        )

    @property
    def _output_format(self) -> OutputFormat:
        # Jobs submitted before formats existed have none: Azure's text.
        return OutputFormat(self._settings.get("output_format", OutputFormat.TEXT.value))

    def _run_mini_batches(self, paths: _Paths) -> bool:
        """Run every pending mini-batch; False when the scheduler is stopping first."""
        batches = self._store.mini_batches(self.job.name)
        self._total = len(batches)
        self._done = sum(1 for m in batches if m.status is not MiniBatchStatus.PENDING)
        self._failed_files = sum(
            len(m.files) for m in batches if m.status is MiniBatchStatus.FAILED
        )
        pending = deque(m for m in batches if m.status is MiniBatchStatus.PENDING)
        if not pending:
            return True
        self._streamed = self._stream_rows(paths, batches)
        settings = self._settings
        wanted = int(settings["instance_count"]) * int(settings["max_concurrency_per_instance"])
        workers = max(1, min(wanted, len(pending)))
        if self._max_workers is not None and workers > self._max_workers:
            self._log.overview(
                f"{wanted} workers asked for (instance_count x max_concurrency_per_instance); "
                f"this server runs at most {self._max_workers} for a job while others may run "
                "(SLUICEWAY_MAX_WORKERS over SLUICEWAY_MAX_CONCURRENT_JOBS)."
            )
            workers = self._max_workers
        where = self._executor.describe(workers)
        self._log.overview(f"Running {len(pending)} pending mini-batches on {where}.")
        data = self._job_data() if self._executor.reads_datastores else None
        concurrency = wanted if self._max_workers is None else min(wanted, self._max_workers)
        pool = self._executor.open_pool(
            replace(self._worker_spec(paths), concurrency=max(concurrency, 1)),
            self._job_context(paths),
            workers,
            data,
        )
        finished = False
        try:
            finished = self._dispatch(pool, pending, paths.input_root)
            return finished
        finally:
            # Only a pool whose job ran to its end is kept warm; a cancel, a stop, a lost lease
            # or an error stops its workers at once, whatever they are doing.
            if finished and (paths.shared_folders or self._executor.reads_datastores):
                pool.release()
            else:
                pool.close(kill=not finished)

    def _stream_rows(self, paths: _Paths, batches: list[MiniBatchRecord]) -> StreamedRows | None:
        """The rows file joined while the job runs, when it and the parts are on this
        machine's disk (see :class:`~sluiceway.scheduler.commit.StreamedRows`); the
        mini-batches that ended before are in it from the start."""
        if self._settings["output_action"] != "append_row" or paths.kept_parts is not None:
            return None
        if not self._output_format.joined_by_concatenation:
            return None  # Parquet parts are joined into one file at the commit
        folder = paths.output_folder.local_path()
        if folder is None:
            return None
        streamed = StreamedRows(
            folder, paths.rows_file, self.job.name, paths.parts_dir, [m.index for m in batches]
        )
        for m in batches:
            if m.status is not MiniBatchStatus.PENDING:
                streamed.ended(m.index, m.status is MiniBatchStatus.SUCCEEDED)
        return streamed

    def _dispatch(
        self, pool: WorkerPool, pending: deque[MiniBatchRecord], input_root: Path
    ) -> bool:
        timeout = float(self._settings["timeout"])
        max_attempts = int(self._settings["max_retries"]) + 1
        remote = self._executor.reads_datastores  # workers read the inputs: nothing staged here
        in_flight: dict[int, MiniBatchRecord] = {}
        drain_until: float | None = None
        while pending or in_flight:
            self._lease.check_in()  # uploads a remote job folder's logs every few seconds
            sending: list[tuple[MiniBatchRecord, MiniBatchTask]] = []
            if self._stop.is_set():
                if drain_until is None:
                    drain_until = time.monotonic() + self._drain
                    self._log.scheduler(
                        f"Scheduler stopping: waiting up to {self._drain:g} s for "
                        f"{len(in_flight)} running mini-batches."
                    )
                if not in_flight or time.monotonic() >= drain_until:
                    self._flush()
                    return False
            else:
                idle = pool.idle()
                while pending and len(sending) < idle:
                    batch = pending.popleft()
                    attempt = batch.attempts + 1
                    sending.append(
                        (replace(batch, attempts=attempt), self._task(batch, attempt, timeout))
                    )
            # The results of the last poll and the mini-batches about to be sent, in one
            # transaction: each is marked running before a worker has it.
            self._flush([MiniBatchStart(task.index, task.attempt, "pool") for _, task in sending])
            with self._log.held():  # a line per mini-batch, written at once
                for batch, task in sending:
                    pool.submit(task)
                    in_flight[batch.index] = batch
                    self._log.scheduler(f"Mini-batch {batch.index} sent (attempt {task.attempt}).")
            if not self._stop.is_set() and self._inputs is not None:
                for later in list(pending)[: pool.size]:  # fetched while the others run
                    if remote:  # by the workers themselves
                        names = tuple(later.files)
                        pool.prefetch(MiniBatchTask(later.index, (), 0, timeout, names=names))
                    else:
                        self._inputs.prefetch(later.index, later.files)
            with self._log.held():
                for result in pool.poll(POLL_SECONDS):
                    batch = in_flight.pop(result.index)
                    if self._record(result, batch, max_attempts):
                        pending.append(batch)
                    elif self._inputs is not None:
                        self._inputs.release(result.index)
        self._flush()
        return True

    def _task(self, batch: MiniBatchRecord, attempt: int, timeout: float) -> MiniBatchTask:
        """The mini-batch as a task: its files as local paths (staged here when remote), or
        only their names when the executor's workers read the datastore themselves."""
        names = tuple(batch.files)
        if self._executor.reads_datastores:
            return MiniBatchTask(batch.index, (), attempt, timeout, names=names)
        assert self._inputs is not None
        local = self._inputs.paths(batch.index, batch.files)
        return MiniBatchTask(batch.index, local, attempt, timeout, names=names)

    def _job_data(self) -> JobData:
        """The job's inputs, model and code as datastore locations."""
        spec = self.job.spec
        (input_spec,) = spec["inputs"].values()
        source = self._datastores.stored_location(input_spec)
        model, code = spec["model"], spec.get("code")
        return JobData(
            input=source,
            model=self._datastores.location(model["datastore"], model["path"]),
            code=self._datastores.location(code["datastore"], code["path"]) if code else None,
            single_file=source.is_file(),
        )

    def _flush(self, started: list[MiniBatchStart] | None = None, *, keep: bool = True) -> None:
        """Write the results recorded since the last flush, and ``started``, in one transaction.
        With ``keep``, the script's files are kept in a remote job folder first (see
        :meth:`_keep_staged`), when a mini-batch's success is among the results.

        Raises:
            LeaseLost: the lease is lost; nothing was written.
            JobAborted: the script's files could not be kept; nothing was written.
        """
        if not self._ended and not started:
            return
        if keep and any(e.status is MiniBatchStatus.SUCCEEDED for e in self._ended):
            self._keep_staged()
        if not self._store.update_mini_batches(
            self.job.name, ended=self._ended, started=started or (), owner=self._owner
        ):
            raise LeaseLost
        self._ended.clear()

    def _flush_results(self) -> None:
        """Write the results that came in before the job stopped, so its progress counts them;
        nothing if the lease is lost."""
        with contextlib.suppress(LeaseLost):
            self._flush(keep=False)  # a job that stops here commits nothing

    def _record(self, result: MiniBatchResult, batch: MiniBatchRecord, max_attempts: int) -> bool:
        """Record a mini-batch's result (written by the next :meth:`_flush`); True when it
        should be tried again."""
        self._log.mini_batch(result, len(batch.files))
        if result.ok:
            self._keep_part(result.index)
            if self._streamed is not None:
                self._streamed.ended(result.index, True)
            self._observer.mini_batch(MiniBatchOutcome.SUCCEEDED, result.duration)
            self._ended.append(
                MiniBatchEnd(
                    result.index,
                    MiniBatchStatus.SUCCEEDED,
                    result.items_succeeded,
                    worker=result.worker,
                )
            )
            self._log.scheduler(
                f"Mini-batch {result.index} succeeded on {result.worker} (attempt "
                f"{result.attempt}, {result.items_succeeded} items, {result.duration:.2f} s)."
            )
            self._count_done()
            return False
        error = {
            "type": result.error_type,
            "message": result.error_message,
            "traceback": traceback_tail(result.traceback),
            "failure": result.failure.value if result.failure else None,
            "attempt": result.attempt,
            "worker": result.worker,
        }
        self._log.script_error(result)
        if result.failure is FailureKind.INIT_ERROR:
            self._observer.mini_batch(MiniBatchOutcome.FAILED, result.duration)
            self._ended.append(
                MiniBatchEnd(
                    result.index, MiniBatchStatus.FAILED, error=error, worker=result.worker
                )
            )
            self._flush()
            raise JobAborted(
                "UserError",
                f"The scoring script's init() failed: {result.error_type}: {result.error_message}",
                [{**error, "mini_batch": result.index, "files": list(batch.files)}],
            )
        retry = result.attempt < max_attempts
        outcome = MiniBatchOutcome.RETRIED if retry else MiniBatchOutcome.FAILED
        self._observer.mini_batch(outcome, result.duration)
        status = MiniBatchStatus.PENDING if retry else MiniBatchStatus.FAILED
        self._ended.append(MiniBatchEnd(result.index, status, error=error, worker=result.worker))
        self._log.overview(
            f"Mini-batch {result.index} failed on {result.worker} (attempt {result.attempt} of "
            f"{max_attempts}): {result.error_type}: {result.error_message}"
            + ("; retrying." if retry else "; no retries left.")
        )
        if retry:
            return True
        if self._streamed is not None:
            self._streamed.ended(result.index, False)
        self._log.failed_files(self._error_lines(batch, error))
        self._failed_files += len(batch.files)
        self._count_done()
        threshold = int(self._settings["error_threshold"])
        if threshold != -1 and self._failed_files > threshold:
            self._flush()
            first = self._failure_details(1)
            shown = first[0] if first else error
            raise JobAborted(
                "UserError",
                f"{self._failed_files} files failed, which is more than error_threshold "
                f"({threshold}); the job stopped. First error: {shown['type']}: "
                f"{shown['message']}",
                self._failure_details(ERROR_DETAILS),
            )
        return False

    def _keep_part(self, index: int) -> None:
        """Copy a succeeded mini-batch's part to the job's remote folder before its success is
        recorded: a job taken over on another machine then has every recorded part."""
        paths = self._paths
        if paths is None or paths.kept_parts is None:
            return
        local = part_path(str(paths.parts_dir), index)
        try:
            # Written by the deployment's code: never through a link it left there.
            fh = open_regular_file(local, within=paths.parts_dir)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise JobAborted(
                "SystemError", f"The part of mini-batch {index} cannot be read: {exc}."
            ) from None
        with fh:
            paths.kept_parts.child(local.name).write_stream(
                iter(lambda: fh.read(1 << 20), b""), overwrite=True
            )

    def _keep_staged(self) -> None:
        """Upload the files the script wrote into ``AZUREML_BI_OUTPUT_PATH`` that are new or
        changed since the last upload, to the job's remote folder, before the successes that
        made them are recorded: a job taken over on another machine then commits them too.
        Once per flush, not per mini-batch; nothing to do when the job's folder is local."""
        paths = self._paths
        if paths is None or paths.kept_staging is None:
            return
        try:
            self._staging.keep(paths.kept_staging)
        except OSError as exc:
            raise JobAborted(
                "SystemError",
                f"A file the scoring script wrote into AZUREML_BI_OUTPUT_PATH cannot be read: "
                f"{exc}.",
            ) from None
        except ValidationError as exc:
            raise JobAborted(
                "UserError",
                f"The scoring script wrote a file into AZUREML_BI_OUTPUT_PATH whose name "
                f"cannot be an output's: {exc}",
            ) from None

    def _count_done(self) -> None:
        """A progress line in the overview at every tenth of the mini-batches."""
        self._done += 1
        step = max(self._total // 10, 1)
        if self._done % step == 0 or self._done == self._total:
            self._log.overview(f"{self._done} of {self._total} mini-batches processed.")

    def _error_lines(self, batch: MiniBatchRecord, error: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``errors.jsonl`` lines of a mini-batch that failed for good: one per file."""
        (input_spec,) = self.job.spec["inputs"].values()
        source = self._datastores.stored_location(input_spec)
        single = input_spec.get("type") == "uri_file"
        lines = []
        for path in batch.files:
            uri = source.uri if single else source.child(path).uri
            lines.append(
                {
                    "path": path,
                    "uri": uri,
                    "mini_batch": batch.index,
                    "error_type": error.get("type"),
                    "message": error.get("message"),
                    "traceback": error.get("traceback"),
                    "attempts": error.get("attempt"),
                    "failure": error.get("failure"),
                }
            )
        return lines

    def _failure_details(self, limit: int) -> list[dict[str, Any]]:
        """The errors of the first failed mini-batches, in input order, for the job's error."""
        details = []
        for m in self._store.mini_batches(self.job.name, MiniBatchStatus.FAILED)[:limit]:
            if m.error:
                details.append({**m.error, "mini_batch": m.index, "files": list(m.files)})
        return details

    # -- finalizing -------------------------------------------------------------------------

    def _finalize(self, paths: _Paths) -> None:
        batches = self._store.mini_batches(self.job.name)
        succeeded = [m for m in batches if m.status is MiniBatchStatus.SUCCEEDED]
        failed = [m for m in batches if m.status is MiniBatchStatus.FAILED]
        items = sum(m.items_succeeded for m in succeeded)
        failed_files = sum(len(m.files) for m in failed)
        self._log.overview(
            f"Processed {len(batches)} mini-batches: {len(succeeded)} succeeded, {len(failed)} "
            f"failed; {items} items succeeded, {failed_files} files failed."
        )
        if items == 0:
            details = self._failure_details(ERROR_DETAILS)
            first = (
                f" First error: {details[0]['type']}: {details[0]['message']}" if details else ""
            )
            raise JobAborted("UserError", NOTHING_SUCCEEDED + first, details)
        self._lease.check_in(now=True)  # the last moment a cancel stops the job
        check_access(self._access, self.job, "commit its outputs")
        # What the script wrote last (in shutdown(), say), and removed: a commit that a
        # scheduler elsewhere finishes finds in the kept files what this one commits.
        self._keep_staged()
        try:
            self._output_commit(paths).commit(succeeded, self._all_error_lines())
        except CommitRefused as exc:
            raise JobAborted(exc.code, str(exc)) from None
        self._complete(failed_files)

    def _output_commit(self, paths: _Paths) -> OutputCommit:
        return OutputCommit(
            job_folder=paths.job_folder,
            output_folder=paths.output_folder,
            staging_dir=paths.staging_dir,
            parts_dir=paths.parts_dir,
            rows_file=paths.rows_file if self._settings["output_action"] == "append_row" else None,
            log=self._log,
            keep_lease=self._lease.keep,
            owner=self._owner,
            kept_parts=paths.kept_parts,
            kept_staging=paths.kept_staging,
            output_format=self._output_format,
            streamed=self._streamed,
        )

    def _all_error_lines(self) -> list[dict[str, Any]]:
        failed = self._store.mini_batches(self.job.name, MiniBatchStatus.FAILED)
        return [line for m in failed for line in self._error_lines(m, m.error or {})]
