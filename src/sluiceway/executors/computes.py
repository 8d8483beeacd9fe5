"""The executor of each job's compute: this server's own (``local``), or one
:class:`~sluiceway.executors.ray.RayExecutor` per Ray cluster, made when a job first needs it.

A job's spec records its compute when it is queued (``{"name", "type", "address"}``; none for
jobs queued before computes existed, which run locally).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from sluiceway.executors.base import Executor


class ComputeExecutors:
    """Args:
    local: the executor of the built-in ``local`` compute.
    ray: makes the executor of a Ray compute from its name and address.
    """

    def __init__(self, local: Executor, ray: Callable[[str, str], Executor]) -> None:
        self.local = local
        self._make_ray = ray
        self._ray: dict[tuple[str, str], Executor] = {}
        self._lock = threading.Lock()

    def for_job(self, compute: Mapping[str, Any] | None) -> Executor:
        if not compute or compute.get("type") != "ray":
            return self.local
        name, address = str(compute["name"]), str(compute["address"])
        with self._lock:
            executor = self._ray.get((name, address))
            if executor is None:
                executor = self._ray[name, address] = self._make_ray(name, address)
            return executor

    def close(self) -> None:
        """Stop every executor's warm workers."""
        with self._lock:
            executors = [self.local, *self._ray.values()]
        for executor in executors:
            executor.close()
