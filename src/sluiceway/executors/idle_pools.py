"""Worker pools kept warm after their job, for the next job of an equal worker spec.

Starting workers costs a process start, the imports of the scorer and its ``init()`` (loading
the model): seconds for an MLflow model, which a later job of the same deployment would pay
again. A pool that a job releases with nothing in flight is parked here under its key; the next
job with that key takes it. A parked pool is closed once it has been idle for ``idle_seconds``,
and the oldest ones are closed when more than ``max_pools`` are parked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sluiceway.executors.base import WorkerSpec

logger = logging.getLogger("sluiceway.executors")

FINGERPRINT_MAX_FILES = 10_000
"""A model or code folder with more files than this is not fingerprinted: its pools are never
reused."""


def spec_key(spec: WorkerSpec) -> Hashable:
    """What makes two worker specs interchangeable: equal fields, and model and code folders
    whose files have not changed (names, sizes and modification times), so a deployment whose
    code was rewritten in place never runs on workers that imported the old code."""
    return (
        spec.scorer,
        spec.model_dir,
        spec.code_dir,
        spec.scoring_script,
        spec.logging_level,
        tuple(sorted(spec.environment_variables.items())),
        spec.interpreter,
        folder_fingerprint(spec.model_dir),
        folder_fingerprint(spec.code_dir),
    )


def folder_fingerprint(folder: str | None) -> str | None:
    """A digest of the files under ``folder`` (relative path, size, modification time); a
    random value for a folder too large to fingerprint, so it never matches another."""
    if folder is None:
        return None
    digest = hashlib.sha256()
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            count += 1
            if count > FINGERPRINT_MAX_FILES:
                return uuid.uuid4().hex
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            relative = os.path.relpath(path, folder)
            digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class ClosablePool(Protocol):
    def close(self, *, kill: bool = False) -> None:
        """Stop the pool's workers."""


PoolT = TypeVar("PoolT", bound=ClosablePool)


@dataclass
class _Parked(Generic[PoolT]):
    key: Hashable
    pool: PoolT
    expires: float


class IdlePools(Generic[PoolT]):
    """Parked pools by key, closed when idle too long or when there are too many.

    Thread-safe: job threads park and take pools; a thread of its own closes expired ones.

    Args:
        idle_seconds: how long a parked pool is kept; 0 keeps none.
        max_pools: the most pools parked at once; 0 keeps none.
        clock: the monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        *,
        idle_seconds: float,
        max_pools: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_seconds = idle_seconds
        self._max_pools = max_pools
        self._clock = clock
        self._parked: list[_Parked[PoolT]] = []  # oldest first
        self._changed = threading.Condition()
        self._closed = False
        self._reaper: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether released pools are kept at all."""
        return self._idle_seconds > 0 and self._max_pools > 0 and not self._closed

    def __len__(self) -> int:
        with self._changed:
            return len(self._parked)

    def take(self, key: Hashable) -> PoolT | None:
        """The most recently parked pool with ``key``, now no longer parked; None if none."""
        with self._changed:
            for at in range(len(self._parked) - 1, -1, -1):
                if self._parked[at].key == key:
                    return self._parked.pop(at).pool
        return None

    def park(self, key: Hashable, pool: PoolT) -> bool:
        """Keep ``pool`` for a later :meth:`take`; False (the caller stops it) when pools are
        not kept or this cache is closed. Pools parked longest are closed beyond the cap."""
        with self._changed:
            if not self.enabled:
                return False
            self._parked.append(_Parked(key, pool, self._clock() + self._idle_seconds))
            evicted = self._parked[: max(len(self._parked) - self._max_pools, 0)]
            del self._parked[: len(evicted)]
            self._start_reaper()
            self._changed.notify_all()
        for parked in evicted:
            logger.info("closing a warm worker pool: more than %d are kept", self._max_pools)
            _close(parked.pool)
        return True

    def close(self) -> None:
        """Close every parked pool; pools parked from now on are refused."""
        with self._changed:
            self._closed = True
            parked, self._parked = self._parked, []
            self._changed.notify_all()
            reaper = self._reaper
        for entry in parked:
            _close(entry.pool)
        if reaper is not None and reaper is not threading.current_thread():
            reaper.join(5.0)

    def close_expired(self) -> int:
        """Close the pools idle longer than ``idle_seconds``; how many were closed."""
        with self._changed:
            now = self._clock()
            expired = [p for p in self._parked if p.expires <= now]
            self._parked = [p for p in self._parked if p.expires > now]
        for entry in expired:
            logger.info("closing a warm worker pool idle for %g s", self._idle_seconds)
            _close(entry.pool)
        return len(expired)

    def _start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = threading.Thread(
                target=self._reap, name="sluiceway-idle-pools", daemon=True
            )
            self._reaper.start()

    def _reap(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                if self._parked:
                    wait = min(p.expires for p in self._parked) - self._clock()
                else:
                    wait = None
                if wait is None or wait > 0:
                    self._changed.wait(wait)
                    continue
            self.close_expired()


def _close(pool: ClosablePool) -> None:
    try:
        pool.close()
    except Exception:
        logger.exception("closing a warm worker pool failed")


__all__ = ["ClosablePool", "IdlePools", "folder_fingerprint", "spec_key"]
