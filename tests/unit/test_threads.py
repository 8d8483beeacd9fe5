"""The thread budget of local workers: each worker's share of the cores, and applying it to
libraries a process loaded before it knew its budget."""

from __future__ import annotations

import pytest

from sluiceway.executors.base import ScorerKind, WorkerSpec
from sluiceway.executors.threads import (
    THREAD_VARIABLES,
    limit_loaded_libraries,
    threads_per_worker,
    with_thread_budget,
)


def test_cores_are_shared_out_with_at_least_one_thread_each() -> None:
    assert threads_per_worker(2, 8) == 4
    assert threads_per_worker(3, 8) == 2
    assert threads_per_worker(4, 2) == 1
    assert threads_per_worker(0, 2) == 2


def test_the_budget_fills_every_variable_the_deployment_left_unset() -> None:
    spec = WorkerSpec(
        ScorerKind.MLFLOW, None, environment_variables={"MKL_NUM_THREADS": "6", "OTHER": "x"}
    )

    budget = with_thread_budget(spec, workers=2, cores=8).environment_variables

    assert budget == {
        **{name: "4" for name in THREAD_VARIABLES if name != "MKL_NUM_THREADS"},
        "MKL_NUM_THREADS": "6",
        "OTHER": "x",
    }
    assert spec.environment_variables == {"MKL_NUM_THREADS": "6", "OTHER": "x"}  # not changed


def test_a_deployment_that_sets_every_variable_keeps_its_spec() -> None:
    spec = WorkerSpec(
        ScorerKind.MLFLOW, None, environment_variables=dict.fromkeys(THREAD_VARIABLES, "3")
    )
    assert with_thread_budget(spec, workers=2, cores=8) is spec


def test_loaded_blas_and_openmp_libraries_take_the_budget() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pytest.importorskip("sklearn.ensemble")  # loads scikit-learn's OpenMP runtime
    with threadpoolctl.threadpool_limits(limits=None):  # restores the counts afterwards
        limit_loaded_libraries({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        info = threadpoolctl.threadpool_info()
    limited = [lib for lib in info if lib["internal_api"] in ("openmp", "openblas")]
    assert limited, info
    assert all(lib["num_threads"] == 1 for lib in limited), limited
