"""Prometheus metrics of one server process, at ``/metrics``.

- ``sluiceway_jobs{status}`` and ``sluiceway_queue_depth``: read from the database when scraped,
  so every process of a workspace reports the same, workspace-wide figures;
- ``sluiceway_mini_batch_duration_seconds{outcome}``: the attempts this process's scheduler saw
  end (succeeded, retried, failed);
- ``sluiceway_claim_duration_seconds{found}``: how long this scheduler's claims took;
- ``sluiceway_http_request_duration_seconds{method,route,status}``: this API server's requests,
  by route template (``/jobs/{name}``), never by the path a caller sent.

Each app has a registry of its own (no process-wide state), read by the standard client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluiceway.scheduler.observer import MiniBatchOutcome, SchedulerObserver
from sluiceway.schemas.jobs import JobStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MINI_BATCH = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _JobCounts(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        counts = self._counts()
        jobs = GaugeMetricFamily(
            "sluiceway_jobs", "Jobs of the workspace by status.", None, ["status"]
        )
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
        yield jobs
        waiting = counts.get(JobStatus.QUEUED.value, 0) + counts.get(JobStatus.NOT_STARTED.value, 0)
        yield GaugeMetricFamily(
            "sluiceway_queue_depth", "Jobs waiting for a scheduler.", value=waiting
        )


class ServerMetrics(SchedulerObserver):
    """The metrics of one process; the scheduler's observer too."""

    def __init__(self, job_counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_JobCounts(job_counts))
        self._mini_batches = Histogram(
            "sluiceway_mini_batch_duration_seconds",
            "Attempts at mini-batches by how they ended.",
            ["outcome"],
            buckets=_MINI_BATCH,
            registry=self.registry,
        )
        self._claims = Histogram(
            "sluiceway_claim_duration_seconds",
            "How long a scheduler's claim of a job took; found: whether it took one.",
            ["found"],
            buckets=_FAST,
            registry=self.registry,
        )
        self.requests = Histogram(
            "sluiceway_http_request_duration_seconds",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            buckets=_FAST,
            registry=self.registry,
        )

    def claimed(self, seconds: float, *, found: bool) -> None:
        self._claims.labels("true" if found else "false").observe(seconds)

    def mini_batch(self, outcome: MiniBatchOutcome, seconds: float) -> None:
        self._mini_batches.labels(outcome.value).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route(app: Any, scope: Scope) -> str:
    """The template of the route that matches, or "unmatched" (never the raw path)."""
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


class RequestTimer:
    """ASGI middleware: observes each HTTP request's duration by route template."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics, router_app: Any) -> None:
        self._app = app
        self._metrics = metrics
        self._router_app = router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or _route(self._router_app, scope)
            self._metrics.requests.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
