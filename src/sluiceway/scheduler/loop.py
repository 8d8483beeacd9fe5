"""The scheduler: claims queued jobs from the database and runs each on its own thread.

A job whose lease names a process of this machine that no longer runs (a server killed with
SIGKILL, or one that crashed; see ``lease.py``) is taken over at once, without waiting for the
lease to expire; a lease of another machine's scheduler is only taken over once it expires.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sluiceway.environments.cache import JobEnvironments
from sluiceway.executors.base import Executor
from sluiceway.executors.computes import ComputeExecutors
from sluiceway.scheduler.access import JobAccess
from sluiceway.scheduler.lease import LeaseOwner
from sluiceway.scheduler.observer import SchedulerObserver
from sluiceway.scheduler.pipeline import PipelineRunner
from sluiceway.scheduler.runner import JobRunner
from sluiceway.storage.locations import Locations
from sluiceway.store.jobs import JobStore, lease_scheduler
from sluiceway.store.steps import StepStore

logger = logging.getLogger("sluiceway.scheduler")

DEFAULT_DRAIN_SECONDS = 10.0
"""How long a graceful stop lets running mini-batches finish before handing them back."""


class Scheduler:
    """Polls the jobs table; at most ``max_jobs`` jobs run at once in this process.

    A model deployment's job runs on a :class:`~sluiceway.scheduler.runner.JobRunner`, a
    pipeline deployment's on a :class:`~sluiceway.scheduler.pipeline.PipelineRunner`.
    """

    def __init__(
        self,
        *,
        store: JobStore,
        datastores: Locations,
        executor: Executor,
        lease_seconds: float,
        poll_seconds: float,
        max_jobs: int,
        max_job_workers: int | None = None,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        steps: StepStore | None = None,
        access: JobAccess | None = None,
        observer: SchedulerObserver | None = None,
        environments: JobEnvironments | None = None,
        computes: ComputeExecutors | None = None,
    ) -> None:
        """Args:
        executor: Runs the jobs whose compute is local (all of them without ``computes``).
        computes: Picks the executor of each job's compute (a Ray cluster's, say), for model
            and pipeline jobs alike.
        access: Checks that a job's invoker may still read its inputs and write its outputs,
            when the job starts and before it commits (None: not checked).
        observer: Told of claims and mini-batch results (metrics).
        environments: where jobs whose deployment or steps name an environment get its
            interpreter (None: such jobs fail, saying so).
        """
        self.identity = LeaseOwner.new()
        self.owner = str(self.identity)
        self._store = store
        self._datastores = datastores
        # The computes' local executor, when there are computes: it is the one given.
        self._executor = computes.local if computes is not None else executor
        self._computes = computes
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._max_jobs = max_jobs
        self._max_job_workers = max_job_workers  # None: as many as the job asks for
        self._drain = drain_seconds
        self._steps = steps  # pipeline jobs' steps; pipeline jobs run only with it
        self._access = access
        self._observer = observer or SchedulerObserver()
        self._environments = environments
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: dict[str, threading.Thread] = {}
        self._runners: dict[str, JobRunner | PipelineRunner] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        logger.info("scheduler %s starting", self.owner)
        self._thread = threading.Thread(target=self._loop, name="sluiceway-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def cancel_requested(self, job: str) -> None:
        """A job's cancel was requested: its runner, if it runs here, stops it now."""
        with self._lock:
            runner = self._runners.get(job)
        if runner is not None:
            runner.nudge()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; running jobs let their mini-batches finish for the drain period,
        hand the rest back and release their lease, to resume on the next start. Then the
        executor's warm workers are stopped.

        Args:
            timeout: how long to wait for the jobs' threads in all (default: the drain
                period and 5 seconds more, so a server stops well within 30 seconds).
        """
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + (self._drain + 5.0 if timeout is None else timeout)
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            threads = list(self._running.items())
        for name, thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                logger.warning("job %s did not stop in time; its lease will expire", name)
        # Workers kept warm for later jobs; a job still running stops its own when it ends.
        (self._computes or self._executor).close()  # the computes close their local one

    def _dead_owners(self) -> list[str]:
        dead = []
        for text in self._store.lease_owners():
            owner = LeaseOwner.parse(lease_scheduler(text))
            if owner is not None and owner.is_gone(self.identity):
                dead.append(text)
        return dead

    def _claim(self) -> JobRunner | PipelineRunner | None:
        started = time.monotonic()
        job = self._store.claim(self.owner, self._lease, dead_owners=self._dead_owners())
        self._observer.claimed(time.monotonic() - started, found=job is not None)
        if job is None:
            return None
        holder = job.lease_owner or self.owner
        logger.info("job %s claimed as %s (status %s)", job.name, holder, job.status.value)
        executor = self._executor
        if self._computes is not None:
            executor = self._computes.for_job(job.spec.get("compute"))
        if job.spec.get("kind") == "pipeline" and self._steps is not None:
            return PipelineRunner(
                job,
                store=self._store,
                steps=self._steps,
                datastores=self._datastores,
                owner=holder,
                lease=self._lease,
                stop=self._stop,
                executor=executor,
                access=self._access,
                environments=self._environments,
            )
        return JobRunner(
            job,
            store=self._store,
            datastores=self._datastores,
            executor=executor,
            owner=holder,
            lease=self._lease,
            stop=self._stop,
            drain_seconds=self._drain,
            access=self._access,
            # This machine's share of workers; a cluster's actors do not run here.
            max_workers=self._max_job_workers if executor is self._executor else None,
            observer=self._observer,
            environments=self._environments,
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._running = {n: t for n, t in self._running.items() if t.is_alive()}
                self._runners = {n: r for n, r in self._runners.items() if n in self._running}
                busy = len(self._running)
            claimed = False
            if busy < self._max_jobs:
                try:
                    runner = self._claim()
                except Exception:
                    logger.exception("claiming a job failed")
                    runner = None
                if runner is not None:
                    claimed = True
                    thread = threading.Thread(
                        target=runner.run, name=f"job-{runner.job.name}", daemon=True
                    )
                    with self._lock:
                        self._running[runner.job.name] = thread
                        self._runners[runner.job.name] = runner
                    thread.start()
            if not claimed:
                self._wake.wait(self._poll)
                self._wake.clear()
