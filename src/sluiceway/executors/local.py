"""The ``local`` executor: long-lived worker processes on this machine.

It opens a :class:`~sluiceway.executors.worker_pool.LocalWorkerPool` per job. Made with
``idle_seconds``, it keeps the pool a job releases (see :mod:`~sluiceway.executors.idle_pools`)
for the next job of an equal worker spec, which attaches to it instead of starting workers. Made
with ``spare_workers``, it keeps that many processes started ahead, with the MLflow scorer's
modules imported (see :mod:`~sluiceway.executors.spares`); a pool of the built-in MLflow scorer
takes them before it starts processes of its own. Spares taken are started again only once no
job has run for ``spare_refill_seconds``: their imports take seconds of CPU, which would
otherwise go from the next job when jobs follow one another.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import threading
from pathlib import Path

from sluiceway.executors.base import (
    JobContext,
    JobData,
    ScorerKind,
    StepFiles,
    StepLaunch,
    WorkerSpec,
)
from sluiceway.executors.idle_pools import IdlePools, spec_key
from sluiceway.executors.isolation import WorkerIsolation
from sluiceway.executors.local_steps import LocalStepRun, start_local_step
from sluiceway.executors.spares import SpareWorkers
from sluiceway.executors.threads import with_thread_budget
from sluiceway.executors.worker_pool import DEFAULT_GRACE_PERIOD, LocalWorkerPool
from sluiceway.runtime.scoring import MLFLOW_SCORER_MODULE

logger = logging.getLogger("sluiceway.executors.local")

SPARE_REFILL_SECONDS = 5.0
"""How long no job must have run before the spares jobs took are started again."""


class LocalExecutor:
    """Runs a job's mini-batches on worker processes of this machine.

    Args:
        grace_period: seconds a graceful :meth:`LocalWorkerPool.close` waits for workers to
            finish their mini-batch and exit before they are terminated.
        init_timeout: seconds a worker may spend starting and in ``init()``; ``None`` waits
            for ever. A worker past it is killed and replaced, and the mini-batch it holds
            fails with ``init_error``.
        idle_seconds: how long a pool a job released is kept warm for the next job of an
            equal worker spec; 0 (the default) stops the workers when their job is done.
        max_idle_pools: the most pools kept warm at once; the oldest are stopped beyond it.
        run_dir: where pools keep their working files (the link to the output folder);
            default: the system's temporary folder.
        spare_workers: how many processes to keep started ahead for MLflow pools; 0 (the
            default) starts each worker when a pool needs it.
        preload: the modules spare workers import while they wait.
        spare_refill_seconds: how long no job must have run before spares are started again.
        isolation: the user, environment and view workers get; default: the server's user,
            with a scrubbed environment.
    """

    name: str = "local"
    reads_datastores: bool = False

    def __init__(
        self,
        *,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        init_timeout: float | None = None,
        idle_seconds: float = 0.0,
        max_idle_pools: int = 0,
        run_dir: Path | None = None,
        spare_workers: int = 0,
        preload: tuple[str, ...] = (MLFLOW_SCORER_MODULE,),
        isolation: WorkerIsolation | None = None,
        spare_refill_seconds: float = SPARE_REFILL_SECONDS,
    ) -> None:
        self.isolation = isolation or WorkerIsolation()
        self.grace_period = grace_period
        self.init_timeout = init_timeout
        self.run_dir = run_dir
        if run_dir is not None:
            _remove_stale_pool_folders(run_dir)
        self._idle: IdlePools[LocalWorkerPool] = IdlePools(
            idle_seconds=idle_seconds, max_pools=max_idle_pools
        )
        self._spares = SpareWorkers(
            spare_workers, preload, isolation=self.isolation, scratch_dir=run_dir
        )
        self._serving = 0  # pools serving a job now; spares are started only when none does
        self._opened = 0  # pools opened so far: a refill is for the quiet after the last one
        self._serving_lock = threading.Lock()
        self._refill_seconds = spare_refill_seconds
        self._refill: threading.Timer | None = None
        self._spares.fill()

    @property
    def spares(self) -> SpareWorkers:
        """The processes started ahead for MLflow pools."""
        return self._spares

    @property
    def idle_pools(self) -> int:
        """How many pools are kept warm now."""
        return len(self._idle)

    def describe(self, workers: int) -> str:
        return f"{workers} workers on this server's machine"

    def open_pool(
        self, spec: WorkerSpec, job: JobContext, workers: int, data: JobData | None = None
    ) -> LocalWorkerPool:
        """``workers`` workers for one job: a warm pool an earlier job of an equal spec released
        (its workers attach to ``job``), or new worker processes. Local workers read files
        where the server staged them: ``data`` is not used. When ``spec`` gives the
        deployment's concurrency, each worker's native libraries get its share of the
        machine's cores (:func:`~sluiceway.executors.threads.with_thread_budget`), unless the
        deployment's variables choose.

        Raises:
            ValueError: ``workers`` is less than 1.
        """
        if workers < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, got {workers}")
        # Each worker gets its share of the machine's cores, for the deployment's whole
        # concurrency (so its pools stay interchangeable whatever one job's size).
        if spec.concurrency is not None:
            spec = with_thread_budget(spec, spec.concurrency)
        with self._serving_lock:
            self._serving += 1
            self._opened += 1
        try:
            return self._open(spec, job, workers)
        except BaseException:
            self._pool_ended()
            raise

    def start_step(self, launch: StepLaunch, files: StepFiles) -> LocalStepRun:
        """A pipeline step as a process group of this machine, its data made local by the
        server (see :mod:`~sluiceway.executors.local_steps`)."""
        return start_local_step(self.isolation, launch, files)

    def close(self) -> None:
        """Stop the pools kept warm and the spare workers; pools released from now on are
        stopped, not kept."""
        with self._serving_lock:
            refill, self._refill = self._refill, None
        if refill is not None:
            refill.cancel()
        self._spares.close()
        self._idle.close()

    def _open(self, spec: WorkerSpec, job: JobContext, workers: int) -> LocalWorkerPool:
        key = spec_key(spec) if self._idle.enabled else None
        if key is not None:
            warm = self._idle.take(key)
            if warm is not None:
                try:
                    warm.attach(job, workers, on_end=self._pool_ended)
                except Exception:
                    logger.exception("job %s: a warm worker pool could not attach", job.job_name)
                    warm.close(kill=True)
                else:
                    logger.info("job %s: %d warm workers attached", job.job_name, warm.size)
                    return warm
        keep = None if key is None else functools.partial(self._idle.park, key)
        return LocalWorkerPool(
            spec,
            job,
            workers,
            grace_period=self.grace_period,
            init_timeout=self.init_timeout,
            keep=keep,
            run_dir=self.run_dir,
            take_spare=self._spares.take if _spares_fit(spec) else None,
            on_end=self._pool_ended,
            isolation=self.isolation,
        )

    def _pool_ended(self) -> None:
        """A pool stopped serving its job: with none serving, spares start once no job has
        run for the refill delay."""
        with self._serving_lock:
            self._serving -= 1
            if self._serving:
                return
            if self._refill is not None:
                self._refill.cancel()
            self._refill = threading.Timer(
                self._refill_seconds, self._refill_if_quiet, args=(self._opened,)
            )
            self._refill.daemon = True
            self._refill.start()

    def _refill_if_quiet(self, opened: int) -> None:
        """Start spares unless a pool was opened since the timer was set."""
        with self._serving_lock:
            if self._serving or self._opened != opened:
                return
        self._spares.fill()

    def close_expired(self) -> int:
        """Stop the pools kept warm for longer than ``idle_seconds``; how many there were."""
        return self._idle.close_expired()


def _spares_fit(spec: WorkerSpec) -> bool:
    """Whether spares (the server's interpreter, the MLflow scorer imported) can serve it."""
    return spec.scorer is ScorerKind.MLFLOW and spec.interpreter is None


def _remove_stale_pool_folders(run_dir: Path) -> None:
    """Folders of pools whose server process is gone (killed before it could remove them)."""
    for folder in [*run_dir.glob("pool-*-*"), *run_dir.glob("worker-*-*")]:
        try:
            os.kill(int(folder.name.split("-")[1]), 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue  # another user's process has that pid now


__all__ = ["DEFAULT_GRACE_PERIOD", "LocalExecutor", "LocalWorkerPool"]
