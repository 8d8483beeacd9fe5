"""What a scheduler reports as it works, for metrics: claims and mini-batch results.

The scheduler calls an observer; the default one does nothing. The server's Prometheus metrics
(``server/metrics.py``) are one implementation.
"""

from __future__ import annotations

from enum import StrEnum


class MiniBatchOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRIED = "retried"  # failed, and will be tried again
    FAILED = "failed"  # failed for good


class SchedulerObserver:
    """Hooks of a scheduler; each does nothing unless overridden."""

    def claimed(self, seconds: float, *, found: bool) -> None:
        """A claim took ``seconds``; ``found`` whether it took a job."""

    def mini_batch(self, outcome: MiniBatchOutcome, seconds: float) -> None:
        """A worker's attempt at a mini-batch ended after ``seconds``."""
