"""Wake-ups between processes: PostgreSQL ``LISTEN/NOTIFY`` on the jobs channel.

The transaction that queues a job, or asks for a job's cancel, also sends a notification
(``pg_notify``, delivered when it commits), so an idle scheduler in any process claims the job
in milliseconds, and the scheduler running a job hears of its cancel at once. Polling stays the
fallback: a listener that lost its connection reconnects, and meanwhile schedulers poll as
they always do. SQLite has one process, which wakes its scheduler directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

logger = logging.getLogger("sluiceway.scheduler")

CHANNEL = "sluiceway_jobs"
QUEUED = "queued"
CANCEL_PREFIX = "cancel:"
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)


def notify_queued(conn: Connection) -> None:
    """Tell the listening schedulers that a job was queued (on commit of ``conn``'s
    transaction)."""
    conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": QUEUED})


def notify_cancel(conn: Connection, job: str) -> None:
    """Tell the scheduler running ``job`` that its cancel was requested."""
    conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": CANCEL_PREFIX + job})


def libpq_url(sqlalchemy_url: str) -> str:
    """A ``postgresql+psycopg://`` URL as psycopg's own ``connect()`` takes it."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


class JobNotifications:
    """Listens on :data:`CHANNEL` on a connection of its own, on a thread of its own.

    Args:
        url: the database (SQLAlchemy URL of a PostgreSQL database).
        on_queued: called when a job was queued, and after every (re)connection, since
            notifications sent while it was not listening are lost.
        on_cancel: called with a job's name when its cancel was requested.
    """

    def __init__(
        self, url: str, *, on_queued: Callable[[], None], on_cancel: Callable[[str], None]
    ) -> None:
        self._url = libpq_url(url)
        self._on_queued = on_queued
        self._on_cancel = on_cancel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sluiceway-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as exc:
                self.connected.clear()
                wait = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                logger.warning(
                    "listening for job notifications failed (%s); polling meanwhile, "
                    "reconnecting in %g s",
                    type(exc).__name__,
                    wait,
                )
                self._stop.wait(wait)

    def _listen(self) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            self._on_queued()  # whatever was queued while no one listened
            while not self._stop.is_set():
                for note in conn.notifies(timeout=1.0):
                    self._deliver(note)
                    if self._stop.is_set():
                        break

    def _deliver(self, note: Any) -> None:
        payload = str(note.payload)
        try:
            if payload == QUEUED:
                self._on_queued()
            elif payload.startswith(CANCEL_PREFIX):
                self._on_cancel(payload[len(CANCEL_PREFIX) :])
        except Exception:
            logger.exception("handling the job notification %r failed", payload)
