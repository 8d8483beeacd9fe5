"""A scoring worker as a Ray actor: what runs on the nodes of a ``ray`` compute.

An actor is the Ray counterpart of a local worker process (:mod:`sluiceway.runtime.worker`),
and runs the same scorer code. It may run on a node that cannot see the server's disk, so it
fetches what it needs itself, from the datastores:

- When it starts, the deployment's model and code, into a folder of its own; registered ones
  (``azureml-registry/sha256/<digest>/``) are checked file by file against the registry's
  manifest, as the server checks them at job start, so an actor only ever runs what was
  registered. Then the scorer's ``init()`` runs, once.
- For each mini-batch, its files (read in place when the datastore's folder is on the node,
  else downloaded, in parallel, and deleted afterwards).

What it produces goes back to the server with each answer, through Ray's object store: the
mini-batch's rows (the server writes them as the mini-batch's part in the job's staging folder,
from where it commits outputs as for local workers), the files the script wrote to
``AZUREML_BI_OUTPUT_PATH`` since the last answer, and the new lines of the actor's stdout and
stderr, which the server appends to ``logs/user/stdout/<worker>.txt``.

The actor's setup (the worker spec and the :class:`~sluiceway.executors.base.JobData`, which
holds the datastores' credentials) is given by reference to an object in the object store,
never as a task argument in clear text: Ray's dashboard and logs show the reference only.
"""

from __future__ import annotations

import faulthandler
import io
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sluiceway.executors.base import (
    FailureKind,
    JobContext,
    JobData,
    MiniBatchResult,
    MiniBatchTask,
    WorkerSpec,
)
from sluiceway.runtime import worker as local_worker
from sluiceway.runtime.output_formats import OutputFormat
from sluiceway.runtime.scoring import Scorer, load_scorer
from sluiceway.storage.locations import Location
from sluiceway.storage.snapshots import SnapshotMismatch, verify_local

logger = logging.getLogger("sluiceway.worker")

FETCH_THREADS = 4
LOG_CHUNK_BYTES = 1 << 20  # the most stdout sent with one answer; the rest is skipped, and said


@dataclass(frozen=True)
class ActorSetup:
    """What every actor of a pool needs: put in the object store once per pool."""

    spec: WorkerSpec
    data: JobData


@dataclass(frozen=True)
class ActorAnswer:
    """An actor's answer to a mini-batch: the result, and what goes to the server's disk."""

    result: MiniBatchResult  # part_path is None: the server writes ``rows``
    rows: bytes | None  # append_row: the mini-batch's part
    outputs: dict[str, bytes]  # files written to AZUREML_BI_OUTPUT_PATH since the last answer
    log: bytes  # new stdout and stderr


@dataclass(frozen=True)
class ActorReady:
    pid: int
    node: str
    init_seconds: float
    init_error: local_worker.ErrorReport | None
    log: bytes


def _fetch(location: Location, target: Path) -> Path:
    """``location`` as a local file: in place if its datastore's folder is here, else copied."""
    local = location.local_path()
    if local is not None and local.is_file():
        return local
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    location.backend.fs.get_file(location.full_path, str(temporary))
    os.replace(temporary, target)
    return target


def _fetch_folder(location: Location, target: Path) -> Path:
    """A model's or code's files on this node, checked against what was registered."""
    local = location.local_path()
    if local is not None and local.exists():
        folder = local
    else:
        entries = location.list_files()
        if location.is_file():
            _fetch(location, target / location.path.rsplit("/", 1)[-1])
        else:
            for entry in entries:
                _fetch(location.child(entry.path), target / entry.path)
        folder = target
    # The registry's manifests are in the same datastore, as the server checks them.
    verify_local(folder, location, Location(location.datastore, "", location.backend))
    return folder


class ScoringActor:
    """One scoring worker on a Ray node; see the module's docstring.

    Args:
        setup: a one-element list holding the reference to the pool's :class:`ActorSetup` (in a
            list, so Ray passes the reference rather than inlining the value into the task).
        worker: the worker's name (``worker-<i>``).
    """

    def __init__(self, setup: list[Any], worker: str) -> None:
        import ray

        started = time.monotonic()
        self._worker = worker
        self._dir = Path(tempfile.mkdtemp(prefix="sluiceway-actor-"))
        self._log = self._dir / "stdout.txt"
        self._log_sent = 0
        self._outputs = self._dir / "output"
        self._outputs.mkdir()
        self._sent_outputs: dict[str, tuple[int, int]] = {}
        self._job: str | None = None
        self._fetcher = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="fetch")
        # The next mini-batch's files, fetched while this one is scored: (task, futures).
        self._ahead: tuple[MiniBatchTask, list[Future[Path]]] | None = None
        local_worker.redirect_output(self._log)
        faulthandler.enable()
        self._scorer: Scorer | None = None
        self._init_error: local_worker.ErrorReport | None = None
        try:
            found: ActorSetup = ray.get(setup[0])
            self._data = found.data
            spec = self._local_spec(found.spec, found.data)
            os.environ.update(spec.environment_variables)
            os.environ["AZUREML_BI_OUTPUT_PATH"] = str(self._outputs)
            if spec.model_dir is not None:
                os.environ["AZUREML_MODEL_DIR"] = spec.model_dir
            local_worker._configure_logging(spec.logging_level)
            local_worker._set_arguments(spec)
            logger.info(
                "%s started (pid %d, node %s, Python %s: %s)",
                worker,
                os.getpid(),
                socket.gethostname(),
                sys.version.split()[0],
                sys.executable,
            )
            self._scorer = load_scorer(spec)
        except (Exception, SystemExit) as exc:
            self._init_error = local_worker.ErrorReport.from_exception(exc)
            logger.error("init() failed:\n%s", self._init_error.traceback)
        else:
            logger.info("init() done in %.2f s", time.monotonic() - started)
        self._init_seconds = time.monotonic() - started

    def _local_spec(self, spec: WorkerSpec, data: JobData) -> WorkerSpec:
        model_dir = code_dir = None
        try:
            if data.model is not None:
                model_dir = str(_fetch_folder(data.model, self._dir / "model"))
            if data.code is not None:
                code_dir = str(_fetch_folder(data.code, self._dir / "code"))
        except SnapshotMismatch as exc:
            raise RuntimeError(str(exc)) from None
        return replace(spec, model_dir=model_dir, code_dir=code_dir)

    def ready(self) -> ActorReady:
        """Sent once the constructor (and ``init()``) has finished."""
        local_worker._flush_output()
        return ActorReady(
            os.getpid(), socket.gethostname(), self._init_seconds, self._init_error, self._new_log()
        )

    def run(
        self,
        task: MiniBatchTask,
        job_name: str,
        append_rows: bool,
        upcoming: MiniBatchTask | None = None,
        output_format: OutputFormat = OutputFormat.TEXT,
        input_columns: bool = False,
    ) -> ActorAnswer:
        """Fetch the mini-batch's files (unless fetched ahead), start fetching ``upcoming``'s,
        score, and answer with rows (in ``output_format``), outputs and log."""
        if self._job is not None and job_name != self._job:
            logger.info(
                "%s (pid %d, %s) kept warm from an earlier job of an equal deployment: init() "
                "does not run again; this log starts with job %s",
                self._worker,
                os.getpid(),
                sys.executable,
                job_name,
            )
        self._job = job_name
        rows = None
        if self._scorer is None:
            error = self._init_error
            assert error is not None
            result = MiniBatchResult.failed(
                task,
                self._worker,
                FailureKind.INIT_ERROR,
                error.type,
                error.message,
                traceback=error.traceback,
            )
        else:
            folder = self._dir / "in" / f"{task.index:06d}"
            try:
                paths = self._fetch_inputs(task, folder)
                self._fetch_ahead(upcoming)
            except Exception as exc:
                error = local_worker.ErrorReport.from_exception(exc)
                result = MiniBatchResult.failed(
                    task,
                    self._worker,
                    FailureKind.RUN_ERROR,
                    "InputNotReadable",
                    f"the mini-batch's files could not be read from the datastore: {error.type}: "
                    f"{error.message}",
                )
            else:
                job = JobContext(
                    job_name=job_name,
                    output_dir=str(self._outputs),
                    parts_dir=str(self._dir / "parts"),  # not written: rows go to ``sink``
                    log_dir=str(self._dir),
                    append_rows=append_rows,
                    output_format=output_format,
                    input_columns=input_columns,
                )
                local = replace(task, files=paths)
                sink = io.BytesIO()  # sent to the server, which writes the part
                result = local_worker.run_task(self._scorer, local, job, self._worker, sink)
                if result.ok and append_rows:
                    rows = sink.getvalue()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        local_worker._flush_output()
        return ActorAnswer(result, rows, self._new_outputs(), self._new_log())

    def _fetch_inputs(self, task: MiniBatchTask, folder: Path) -> tuple[str, ...]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and (ahead[0].index, ahead[0].names) == (task.index, task.names):
            futures = ahead[1]
        else:
            if ahead is not None:  # fetched for a mini-batch another actor got
                self._drop(ahead)
            futures = self._start_fetch(task, folder)
        return tuple(str(future.result()) for future in futures)

    def _start_fetch(self, task: MiniBatchTask, folder: Path) -> list[Future[Path]]:
        source = self._data.input
        if self._data.single_file:
            target = folder / source.path.rsplit("/", 1)[-1]
            return [self._fetcher.submit(_fetch, source, target)]
        return [
            self._fetcher.submit(_fetch, source.child(name), folder / name) for name in task.names
        ]

    def _fetch_ahead(self, upcoming: MiniBatchTask | None) -> None:
        if upcoming is not None:
            folder = self._dir / "in" / f"{upcoming.index:06d}"
            self._ahead = (upcoming, self._start_fetch(upcoming, folder))

    def _drop(self, ahead: tuple[MiniBatchTask, list[Future[Path]]]) -> None:
        for future in ahead[1]:
            future.cancel()
        for future in ahead[1]:
            if not future.cancelled():
                future.exception()  # waits; a failed fetch ahead is of no interest
        shutil.rmtree(self._dir / "in" / f"{ahead[0].index:06d}", ignore_errors=True)

    def _new_outputs(self) -> dict[str, bytes]:
        """Files under the output folder that are new or changed since the last answer."""
        found: dict[str, bytes] = {}
        for path in sorted(self._outputs.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            stat = path.stat()
            relative = path.relative_to(self._outputs).as_posix()
            if self._sent_outputs.get(relative) == (stat.st_size, stat.st_mtime_ns):
                continue
            found[relative] = path.read_bytes()
            self._sent_outputs[relative] = (stat.st_size, stat.st_mtime_ns)
        return found

    def _new_log(self) -> bytes:
        try:
            size = self._log.stat().st_size
            with self._log.open("rb") as file:
                skipped = max(size - self._log_sent - LOG_CHUNK_BYTES, 0)
                file.seek(self._log_sent + skipped)
                data = file.read(size - self._log_sent - skipped)
        except OSError:
            return b""
        self._log_sent = size
        if skipped:
            data = f"[{skipped} bytes of output skipped]\n".encode() + data
        return data


__all__ = ["ActorAnswer", "ActorReady", "ActorSetup", "ScoringActor"]
