"""``LROPoller``: what Azure's ``begin_*`` calls return.

Sluiceway's server finishes most creates and deletes within the request, so the poller is done
when it is handed out; it exists so that ``begin_create_or_update(...).result()`` and ``.wait()``
work as they do against Azure. A deployment whose environment is still being built is the
exception: its poller asks again (``refresh``) until it is no longer ``Creating``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LROPoller(Generic[T]):
    """A finished long-running operation and its result."""

    def __init__(
        self,
        result: T,
        *,
        status: str = "Succeeded",
        refresh: Callable[[], T] | None = None,
        finished: Callable[[T], bool] | None = None,
        interval: float = 1.0,
    ) -> None:
        self._result = result
        self._status = status
        self._refresh = refresh
        self._finished = finished
        self._interval = interval

    def result(self, timeout: float | None = None) -> T:
        """The operation's result (the created entity, or None for a delete), once done.

        Raises:
            TimeoutError: it is not done after ``timeout`` seconds.
        """
        self.wait(timeout)
        return self._result

    def wait(self, timeout: float | None = None) -> None:
        """Return once the operation is done."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.done():
            if end is not None and time.monotonic() >= end:
                raise TimeoutError(f"the operation is not done after {timeout} s")
            time.sleep(self._interval)
            assert self._refresh is not None
            self._result = self._refresh()

    def done(self) -> bool:
        return self._finished is None or self._finished(self._result)

    def status(self) -> str:
        return self._status

    def add_done_callback(self, func: Callable[[LROPoller[T]], object]) -> None:
        """Call ``func`` with this poller; the operation is done, so it is called now."""
        func(self)

    def __repr__(self) -> str:
        return f"LROPoller(status={self._status!r}, result={self._result!r})"
