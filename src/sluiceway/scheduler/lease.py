"""Who holds a job's lease, and whether that holder is known to be gone.

A scheduler names itself ``<host>:<pid>:<started>-<random>`` in the leases it takes, where
``started`` is when its process started (in clock ticks since boot, from ``/proc``). A lease
whose holder is a process of this machine that no longer runs (a server killed with SIGKILL, or
one that crashed) can be taken over at once, without waiting for it to expire. A pid in use
again by a process that started at another time is a new process, so its old holder is gone
too; that is also how a server restarted in a container, with its predecessor's pid, knows its
predecessor's leases. Where the start time cannot be read, only a pid that no process uses
counts as gone.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sluiceway.schemas.jobs import JobStatus
from sluiceway.store.jobs import JobStore

CHECK_SECONDS = 0.5  # how often a runner reads its job's status (cancel, lost lease)


class LeaseLost(Exception):
    """Another scheduler took the job over, or it ended; stop without touching it."""


class JobCanceled(Exception):
    """A cancel was requested: stop the job's work and end it ``Canceled``."""


class JobLease:
    """The lease one runner holds on its job: renewed when due, checked for a cancel.

    Model and pipeline runners share it, so both renew at a third of the lease and notice a
    cancel request within :data:`CHECK_SECONDS`; ``checked``, when given, is called after each
    check that found the lease held (the runners upload a remote job folder's logs from it,
    every few seconds, whatever the job is waiting for).
    """

    def __init__(
        self,
        store: JobStore,
        job: str,
        owner: str,
        lease: timedelta,
        *,
        checked: Callable[[], None] | None = None,
    ) -> None:
        self._checked = checked
        self._store = store
        self._job = job
        self._owner = owner
        self._lease = lease
        self._last_renew = time.monotonic()
        self._last_check = 0.0

    def nudge(self) -> None:
        """Look at the job at the next :meth:`check_in`, not when the check is next due (a
        cancel was requested)."""
        self._last_check = 0.0

    def set_status(self, status: JobStatus) -> None:
        """Move the job to ``status`` while holding the lease.

        Raises:
            JobCanceled: a cancel was requested meanwhile.
            LeaseLost: the lease is lost.
        """
        if self._store.set_status(self._job, status, owner=self._owner):
            return
        if self._store.status(self._job, self._owner) is JobStatus.CANCEL_REQUESTED:
            raise JobCanceled
        raise LeaseLost

    def check_in(self, *, now: bool = False) -> None:
        """Renew the lease when it is due and look for a cancel request.

        Raises:
            JobCanceled: a cancel was requested.
            LeaseLost: the lease is lost, or the job ended meanwhile.
        """
        clock = time.monotonic()
        if not now and clock - self._last_check < CHECK_SECONDS:
            return
        self._last_check = clock
        if self._renewal_due(clock):
            status = self._store.renew(self._job, self._owner, self._lease)
            self._last_renew = clock
        else:
            status = self._store.status(self._job, self._owner)
        if status is JobStatus.CANCEL_REQUESTED:
            raise JobCanceled
        if status is None or status.is_terminal:
            raise LeaseLost
        if self._checked is not None:
            self._checked()

    def keep(self) -> None:
        """Renew the lease if due, during long work that must not be interrupted.

        Raises:
            LeaseLost: the lease is lost.
        """
        clock = time.monotonic()
        if not self._renewal_due(clock):
            return
        if self._store.renew(self._job, self._owner, self._lease) is None:
            raise LeaseLost
        self._last_renew = clock

    def _renewal_due(self, clock: float) -> bool:
        return clock - self._last_renew >= self._lease.total_seconds() / 3


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as ``/proc/<pid>/stat`` says; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count after it.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None  # field 22, starttime


@dataclass(frozen=True)
class LeaseOwner:
    """A scheduler of one process on one machine."""

    host: str
    pid: int
    token: str  # "<started>-<random>"; "<random>" alone where the start time is unknown

    @classmethod
    def new(cls) -> LeaseOwner:
        """The owner for a scheduler of this process."""
        pid = os.getpid()
        started = process_start(pid)
        random = uuid.uuid4().hex[:8]
        return cls(socket.gethostname(), pid, f"{started}-{random}" if started else random)

    @classmethod
    def parse(cls, text: str) -> LeaseOwner | None:
        """Read an owner back from a lease; None for text that is not one."""
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[2]:
            return None
        host, pid, token = parts
        try:
            return cls(host, int(pid), token)
        except ValueError:
            return None

    @property
    def started(self) -> str | None:
        started, dash, _ = self.token.partition("-")
        return started if dash and started else None

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    def is_gone(self, me: LeaseOwner) -> bool:
        """Whether this owner is a process of ``me``'s machine that no longer runs."""
        if self.host != me.host or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # a process of another user has the pid now
        if self.started is None:
            return False
        now = process_start(self.pid)
        return now is not None and now != self.started
