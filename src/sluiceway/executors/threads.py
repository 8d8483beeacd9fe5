"""One thread budget per worker: the machine's cores shared out among a deployment's workers.

Native libraries start as many threads as the machine has cores, in every process: OpenMP
(scikit-learn's HistGradientBoosting, LightGBM, XGBoost, PyTorch) and the BLAS libraries
(NumPy's OpenBLAS, MKL). N workers of one machine, each with a pool of as many threads as there
are cores, run N x cores threads on the cores, and lose time switching between them and waiting
for each other at every parallel step. As Ray does for its workers, each local worker gets
``cores // workers`` threads (at least one) through the variables these libraries read
(:data:`THREAD_VARIABLES`). A deployment that sets one of them in its
``environment_variables`` keeps its own value.

The variables are read when a library is loaded; a worker that had imported its libraries
before it knew its deployment (a spare) applies the budget to them with ``threadpoolctl``
(see :func:`limit_loaded_libraries`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import replace

from sluiceway.executors.base import WorkerSpec

logger = logging.getLogger("sluiceway.executors")

OPENMP_VARIABLE = "OMP_NUM_THREADS"
THREAD_VARIABLES = (
    OPENMP_VARIABLE,
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""What the budget sets: OpenMP's, the BLAS libraries' and numexpr's thread counts."""
_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not on Linux
        return max(os.cpu_count() or 1, 1)


def threads_per_worker(workers: int, cores: int) -> int:
    """Each of ``workers`` workers' share of ``cores``: at least one thread."""
    return max(cores // max(workers, 1), 1)


def with_thread_budget(spec: WorkerSpec, workers: int, cores: int | None = None) -> WorkerSpec:
    """``spec`` whose environment gives each of ``workers`` workers its share of ``cores``
    (default: :func:`machine_cores`) in every variable of :data:`THREAD_VARIABLES` the
    deployment did not set itself."""
    threads = str(threads_per_worker(workers, machine_cores() if cores is None else cores))
    own = spec.environment_variables
    budget = {name: threads for name in THREAD_VARIABLES if name not in own}
    if not budget:
        return spec
    return replace(spec, environment_variables={**budget, **own})


def limit_loaded_libraries(variables: Mapping[str, str]) -> None:
    """Apply the thread counts in ``variables`` to the native libraries this process has
    loaded already (libraries loaded later read the variables themselves). Does nothing when
    NumPy is not loaded (then neither is any BLAS) or ``threadpoolctl`` is not installed."""
    if "numpy" not in sys.modules:
        return
    limits: dict[str, int] = {}
    openmp = _count(variables.get(OPENMP_VARIABLE))
    if openmp is not None:
        limits["openmp"] = openmp
    # threadpoolctl limits the BLAS libraries together: the smallest count asked for.
    blas = [c for c in (_count(variables.get(name)) for name in _BLAS_VARIABLES) if c is not None]
    if blas:
        limits["blas"] = min(blas)
    if not limits:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    try:
        threadpool_limits(limits=limits)
    except Exception as exc:  # a library threadpoolctl cannot handle: its own count stays
        logger.warning("the thread counts %s could not be applied: %s", limits, exc)


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        count = int(value.split(",")[0])  # OMP_NUM_THREADS may list counts per nesting level
    except ValueError:
        return None
    return count if count > 0 else None


__all__ = [
    "THREAD_VARIABLES",
    "limit_loaded_libraries",
    "machine_cores",
    "threads_per_worker",
    "with_thread_budget",
]
