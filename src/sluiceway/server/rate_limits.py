"""Token buckets, in this process, for routes that must not be called as fast as one likes.

``POST /oauth2/token`` checks a secret with scrypt, which is slow on purpose; without a limit a
caller could spend the server's CPU on it, or try secrets as fast as it answers. Each client id
and each client address gets a bucket of ``per_minute`` requests that refills continuously; an
empty bucket answers 429 with ``Retry-After``, as Azure AD does.

The buckets live in one server process: with several servers behind a balancer, each allows
``per_minute`` on its own (put a shared limit in the balancer for an exact one). At most
``max_keys`` keys are remembered; past that, the least recently used are forgotten.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """One bucket of ``per_minute`` requests per key, refilled at ``per_minute`` a minute."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0 when allowed, else the seconds to wait.

        A limit of 0 or less allows everything.
        """
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                self._forget()
                return 0.0
            self._buckets[key] = (tokens, now)
            self._forget()
            return (1.0 - tokens) / self._rate

    def _forget(self) -> None:
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


def retry_after(seconds: float) -> str:
    """``Retry-After`` for a wait of ``seconds``: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
