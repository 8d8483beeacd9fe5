"""The scheduler: claims queued jobs from the database and runs each on its own thread."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from sluiceway.executors.base import Executor
from sluiceway.scheduler.runner import JobRunner
from sluiceway.services.datastores import DatastoreService
from sluiceway.store.jobs import JobStore

logger = logging.getLogger("sluiceway.scheduler")


class Scheduler:
    """Polls the jobs table; at most ``max_jobs`` jobs run at once in this process."""

    def __init__(
        self,
        *,
        store: JobStore,
        datastores: DatastoreService,
        executor: Executor,
        lease_seconds: float,
        poll_seconds: float,
        max_jobs: int,
    ) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._store = store
        self._datastores = datastores
        self._executor = executor
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._max_jobs = max_jobs
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: dict[str, threading.Thread] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sluiceway-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; running jobs hand their lease back and resume on the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for thread in list(self._running.values()):
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._running = {n: t for n, t in self._running.items() if t.is_alive()}
            claimed = False
            if len(self._running) < self._max_jobs:
                try:
                    job = self._store.claim(self.owner, self._lease)
                except Exception:
                    logger.exception("claiming a job failed")
                    job = None
                if job is not None and job.name not in self._running:
                    claimed = True
                    runner = JobRunner(
                        job,
                        store=self._store,
                        datastores=self._datastores,
                        executor=self._executor,
                        owner=self.owner,
                        lease=self._lease,
                        stop=self._stop,
                    )
                    thread = threading.Thread(
                        target=runner.run, name=f"job-{job.name}", daemon=True
                    )
                    self._running[job.name] = thread
                    thread.start()
            if not claimed:
                self._wake.wait(self._poll)
                self._wake.clear()
