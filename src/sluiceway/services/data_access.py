"""Whether a caller may read or write the data at a location.

A location in a datastore is governed by the roles on that datastore (or on the workspace). A
storage URL that no registered datastore covers is read with the server's own ambient or
anonymous credentials, so reading it is governed by the workspace: only a role on the whole
workspace grants it. Outputs always go to a datastore.
"""

from __future__ import annotations

from typing import Any

from sluiceway.auth.policy import WORKSPACE, Action, datastore_scope
from sluiceway.auth.principals import Principal
from sluiceway.errors import PermissionDeniedError
from sluiceway.storage.locations import Location
from sluiceway.store.identities import IdentityStore
from sluiceway.store.jobs import JobRecord


def location_scope(location: Location) -> str:
    """The scope whose roles decide who may read ``location``."""
    if location.url is not None or not location.datastore:
        return WORKSPACE
    return datastore_scope(location.datastore)


def require_read(principal: Principal, location: Location, what: str) -> None:
    """Raises: PermissionDeniedError naming ``what`` when the caller may not read there."""
    principal.require(Action.READ_DATA, location_scope(location), what=what)


def require_write(principal: Principal, datastore: str, what: str) -> None:
    """Raises: PermissionDeniedError naming ``what`` when the caller may not write into
    ``datastore``."""
    principal.require(Action.WRITE_DATA, datastore_scope(datastore), what=what)


def stored_scope(spec: dict[str, Any]) -> str:
    """The scope whose roles decide who may read a location a job's spec recorded (see
    :func:`location_scope`), without opening its datastore."""
    if spec.get("url") or spec.get("sealed_url") or not spec.get("datastore"):
        return WORKSPACE
    return datastore_scope(str(spec["datastore"]))


class InvokerAccess:
    """The scheduler's :class:`~sluiceway.scheduler.access.JobAccess`: whether a job's invoker
    still exists and may still read each input it gave and write each output."""

    def __init__(self, identities: IdentityStore) -> None:
        self._identities = identities

    def refusal(self, job: JobRecord) -> str | None:
        identity = self._identities.get(job.invoker_id) if job.invoker_id else None
        if identity is None:
            return (
                f"its invoker, identity {job.invoker!r}, no longer exists, and a job runs "
                "under its invoker's identity."
            )
        principal = Principal.of(identity)
        try:
            for name, spec in job.spec.get("inputs", {}).items():
                if spec.get("type") != "literal":
                    principal.require(Action.READ_DATA, stored_scope(spec), what=f"input {name!r}")
            for name, spec in job.spec.get("outputs", {}).items():
                require_write(principal, str(spec["datastore"]), f"output {name!r}")
        except PermissionDeniedError as exc:
            return exc.message
        return None
