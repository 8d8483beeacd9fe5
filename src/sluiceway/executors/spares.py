"""Spare workers: processes started before a job needs them, with their imports done.

A new worker costs a process start and its imports before ``init()`` can even begin: for the
built-in MLflow scorer, NumPy and pandas take most of a second. The local executor keeps a few
spare processes that have imported those modules and wait; a pool of an MLflow deployment takes
a spare instead of starting a process, and the spare becomes its worker (it runs ``init()``
then). Spares are only used for the built-in scorer: a scoring script's code folder must come
first on ``sys.path``, before any module is imported.

Spares are started again only while no job runs, so starting them never takes CPU from a job.
They are children of the server like any worker: they exit with it, and with :meth:`close`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sluiceway.executors.isolation import WorkerIsolation
from sluiceway.executors.processes import WorkerProcess, start_process, stop_all, wait_for_exit
from sluiceway.runtime.worker import Preload

logger = logging.getLogger("sluiceway.executors.local")

SPARE = "spare"
_CLOSE_GRACE = 2.0  # seconds spares get to exit on their own when closed


class SpareWorkers:
    """Up to ``count`` spare processes that have imported ``preload``.

    Thread-safe: job threads take spares, and any thread may fill or close.

    Args:
        count: how many spares to keep; 0 keeps none.
        preload: the modules each spare imports while it waits.
        isolation: how workers are started; a spare sees only what every worker does, so a
            pool whose job needs more starts its own workers.
        scratch_dir: where the spares' scratch folders are made.
    """

    def __init__(
        self,
        count: int,
        preload: tuple[str, ...],
        *,
        isolation: WorkerIsolation | None = None,
        scratch_dir: Path | None = None,
    ) -> None:
        self._count = count
        self._preload = preload
        self._isolation = isolation or WorkerIsolation()
        self._scratch_dir = scratch_dir
        self._spares: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._spares)

    def pids(self) -> list[int]:
        """The process ids of the spares waiting now."""
        with self._lock:
            return [s.process.pid for s in self._spares if s.process.pid is not None]

    def fill(self) -> None:
        """Start spares until there are ``count`` (those that died are replaced)."""
        with self._lock:
            if self._closed:
                return
            dead = [spare for spare in self._spares if spare.exited()]
            self._spares = [spare for spare in self._spares if spare not in dead]
            for spare in dead:
                spare.stop()
            while len(self._spares) < self._count:
                spare = start_process(
                    self._isolation, Preload(self._preload), SPARE, scratch_dir=self._scratch_dir
                )
                self._spares.append(spare)

    def take(self) -> WorkerProcess | None:
        """A spare that is still running, now no longer a spare; None if there is none."""
        with self._lock:
            while self._spares:
                spare = self._spares.pop(0)
                if not spare.exited():
                    return spare
                spare.stop()
        return None

    def close(self) -> None:
        """Stop every spare; none is started from now on."""
        with self._lock:
            self._closed = True
            spares, self._spares = self._spares, []
        for spare in spares:
            try:
                spare.conn.send(None)
            except OSError:
                pass
        wait_for_exit(spares, _CLOSE_GRACE)
        stop_all(spares)


__all__ = ["SPARE", "SpareWorkers"]
