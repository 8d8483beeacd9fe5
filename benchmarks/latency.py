"""The latency workloads, on one warm Sluiceway server (a job already ran on the deployment).

first result
    Invoke over a few small files with ``MiniBatchSize`` 1 (one file per mini-batch, as many
    files as workers) and poll ``GET /jobs/{name}`` every 20 ms. Two instants are taken from the
    job's progress: *dispatched*, when the first mini-batch is handed to a worker
    (``mini_batches_running`` > 0), and *first result*, when the first mini-batch has succeeded
    (``mini_batches_succeeded`` > 0, its rows are in a part file). Both are from just before the
    invoke ``POST``. A worker still in ``init()`` is sent its mini-batch before it can run it, so
    *dispatched* can be early; *first result* cannot, and is the figure held to the target. The
    first job of the deployment (the warm-up) is reported as the cold case.

submit
    First one client sends ``SINGLE_POSTS`` invoke ``POST`` s one after another: their latency is
    the server's time per ``POST`` with nothing queued (their jobs are canceled before the
    burst). Then ``--clients`` threads, each with its own connection, send ``--submit`` invoke
    ``POST`` s in all (as fast as they are answered) over a one-row input. Each ``POST`` is
    timed; the rate is the accepted jobs over the time from the first ``POST`` to the last
    answer. Then every
    accepted job name must be found on the server (``GET /jobs``), and the jobs still queued or
    running are canceled and waited for.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.sluiceway_server import ENDPOINT, TERMINAL, Bench, Server

FIRST_RESULT_POLL = 0.02
SINGLE_POSTS = 50


@dataclass(frozen=True)
class FirstResult:
    dispatched: float | None
    first_result: float | None
    completed: float
    status: str


@dataclass
class FirstResults:
    cold: FirstResult
    warm: list[FirstResult] = field(default_factory=list)

    def warm_first(self) -> list[float]:
        return [r.first_result for r in self.warm if r.first_result is not None]

    def warm_dispatched(self) -> list[float]:
        return [r.dispatched for r in self.warm if r.dispatched is not None]


def time_first_result(bench: Bench, input_dir: Path, timeout: float) -> FirstResult:
    """Invoke over ``input_dir`` (one file per mini-batch) and time its first mini-batch."""
    started = time.perf_counter()
    name = bench.invoke(input_dir, None, MiniBatchSize=1)
    dispatched: float | None = None
    first: float | None = None
    while True:
        job = bench.job(name)
        now = time.perf_counter() - started
        progress: dict[str, Any] = job.get("progress") or {}
        done = int(progress.get("mini_batches_succeeded") or 0)
        handed = int(progress.get("mini_batches_running") or 0) + done
        handed += int(progress.get("mini_batches_failed") or 0)
        if dispatched is None and handed > 0:
            dispatched = now
        if first is None and done > 0:
            first = now
        if job["status"] in TERMINAL:
            return FirstResult(dispatched, first, now, str(job["status"]))
        if now > timeout:
            raise TimeoutError(f"job {name} did not end in {timeout:.0f} s")
        time.sleep(FIRST_RESULT_POLL)


def first_results(bench: Bench, input_dir: Path, repeats: int, timeout: float) -> FirstResults:
    """The cold first job of the deployment, then ``repeats`` jobs on the warm server."""
    results = FirstResults(cold=time_first_result(bench, input_dir, timeout))
    for _ in range(repeats):
        results.warm.append(time_first_result(bench, input_dir, timeout))
    return results


@dataclass
class SubmitResult:
    clients: int
    latencies: list[float]  # seconds, one per accepted POST
    errors: list[str]  # one per POST that was not accepted
    seconds: float  # first POST to last answer
    names: list[str]
    missing: list[str] = field(default_factory=list)  # accepted, but not found afterwards
    statuses: dict[str, int] = field(default_factory=dict)  # after cleanup
    single: list[float] = field(default_factory=list)  # seconds: one client's POSTs in turn
    single_missing: list[str] = field(default_factory=list)  # of those, not found afterwards

    @property
    def accepted(self) -> int:
        return len(self.names)

    @property
    def lost(self) -> int:
        """Jobs not accepted, accepted twice under one name, or not found afterwards."""
        duplicates = len(self.names) - len(set(self.names))
        return len(self.errors) + duplicates + len(self.missing) + len(self.single_missing)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """Of the burst's latencies."""
        return percentile(self.latencies, q)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (1 to 100) of ``values``; None if there are none."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[int(q) - 1] if q < 100 else max(values)


def one_client(bench: Bench, body: dict[str, Any], count: int) -> tuple[list[float], list[str]]:
    """``count`` invoke POSTs sent one after another: their latencies and job names."""
    latencies: list[float] = []
    names: list[str] = []
    for _ in range(count):
        started = time.perf_counter()
        response = bench.client.post(f"/endpoints/{ENDPOINT}/jobs", json=body)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        names.append(str(response.json()["name"]))
    return latencies, names


def submit_burst(
    server: Server, bench: Bench, input_dir: Path, total: int, clients: int
) -> SubmitResult:
    """``total`` invoke POSTs from ``clients`` concurrent clients; see the module's docstring."""
    body = bench.invoke_body(input_dir, None)
    single, single_names = one_client(bench, body, min(SINGLE_POSTS, total))
    single_missing = _missing_jobs(bench, single_names)
    _cancel_and_wait(bench, single_names)
    clients = max(1, min(clients, total))
    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    gate = threading.Barrier(clients + 1)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    names: list[str] = []
    ends: list[float] = []

    def client_thread(count: int) -> None:
        with server.client(timeout=120.0) as client:
            client.get("/healthz")  # opens the connection before the clock starts
            gate.wait()
            for _ in range(count):
                started = time.perf_counter()
                try:
                    response = client.post(f"/endpoints/{ENDPOINT}/jobs", json=body)
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                took = time.perf_counter() - started
                with lock:
                    if response.status_code == 201:
                        latencies.append(took)
                        names.append(str(response.json()["name"]))
                    else:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
            with lock:
                ends.append(time.perf_counter())

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in shares]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result = SubmitResult(clients, latencies, errors, max(ends) - started, names)
    result.single, result.single_missing = single, single_missing
    result.missing = _missing_jobs(bench, names)
    result.statuses = _cancel_and_wait(bench, names)
    return result


def _missing_jobs(bench: Bench, names: list[str]) -> list[str]:
    """Accepted names the server does not know."""
    found: set[str] = set()
    if len(names) < 1000:
        listed = bench.client.get("/jobs", params={"endpoint_name": ENDPOINT, "limit": 1000})
        listed.raise_for_status()
        found = {str(job["name"]) for job in listed.json()}
    missing = []
    for name in names:
        if name in found:
            continue
        if bench.client.get(f"/jobs/{name}").status_code != 200:
            missing.append(name)
    return missing


def _cancel_and_wait(bench: Bench, names: list[str], timeout: float = 600.0) -> dict[str, int]:
    """Cancel every job of the burst that has not ended, wait for all to end; status counts."""
    for name in names:
        if bench.job(name)["status"] not in TERMINAL:
            bench.client.post(f"/jobs/{name}/cancel")
    deadline = time.monotonic() + timeout
    while True:
        statuses: dict[str, int] = {}
        for name in names:
            status = str(bench.job(name)["status"])
            statuses[status] = statuses.get(status, 0) + 1
        if set(statuses) <= TERMINAL or time.monotonic() > deadline:
            return statuses
        time.sleep(1.0)


__all__ = [
    "FirstResult",
    "FirstResults",
    "SubmitResult",
    "first_results",
    "one_client",
    "percentile",
    "submit_burst",
    "time_first_result",
]
