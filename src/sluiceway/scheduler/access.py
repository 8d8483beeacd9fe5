"""What the scheduler asks before a job touches data: may its invoker still do it?

A job runs under its invoker's identity. Roles can be taken back, and identities deleted, while
a job waits in the queue or runs, so the invoker's rights are checked again at the time of use:
when a scheduler starts (or resumes) the job, and before it commits outputs. The scheduler only
knows this protocol; ``services.data_access.InvokerAccess`` is the implementation.
"""

from __future__ import annotations

from typing import Protocol

from sluiceway.store.jobs import JobRecord


class JobAccess(Protocol):
    def refusal(self, job: JobRecord) -> str | None:
        """Why ``job``'s invoker may no longer read its inputs or write its outputs (its
        identity is gone, or a role was taken back), or None when it still may."""
        ...


class JobAccessRefused(Exception):
    """The job's invoker may no longer do what the job does; the message says why."""


def check_access(access: JobAccess | None, job: JobRecord, when: str) -> None:
    """Raises: JobAccessRefused naming ``when`` (``start``, ``commit its outputs``)."""
    if access is None:
        return
    refusal = access.refusal(job)
    if refusal is not None:
        raise JobAccessRefused(f"The job cannot {when}: {refusal}")
