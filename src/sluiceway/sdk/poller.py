"""``LROPoller``: what Azure's ``begin_*`` calls return.

Sluiceway's server finishes creates and deletes within the request, so the poller is done when
it is handed out; it exists so that ``begin_create_or_update(...).result()`` and ``.wait()``
work as they do against Azure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LROPoller(Generic[T]):
    """A finished long-running operation and its result."""

    def __init__(self, result: T, *, status: str = "Succeeded") -> None:
        self._result = result
        self._status = status

    def result(self, timeout: float | None = None) -> T:
        """The operation's result (the created entity, or None for a delete)."""
        return self._result

    def wait(self, timeout: float | None = None) -> None:
        """Return once the operation is done (it already is)."""

    def done(self) -> bool:
        return True

    def status(self) -> str:
        return self._status

    def add_done_callback(self, func: Callable[[LROPoller[T]], object]) -> None:
        """Call ``func`` with this poller; the operation is done, so it is called now."""
        func(self)

    def __repr__(self) -> str:
        return f"LROPoller(status={self._status!r}, result={self._result!r})"
