"""The Sluiceway server: ``run()`` is what ``sluice server start`` calls."""

from __future__ import annotations

from sluiceway.server.run import run

__all__ = ["run"]
