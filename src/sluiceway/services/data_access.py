"""Whether a caller may read or write the data at a location.

A location in a datastore is governed by the roles on that datastore (or on the workspace). A
storage URL that no registered datastore covers is read with the server's own ambient or
anonymous credentials, so reading it is governed by the workspace: only a role on the whole
workspace grants it. Outputs always go to a datastore.
"""

from __future__ import annotations

from sluiceway.auth.policy import WORKSPACE, Action, datastore_scope
from sluiceway.auth.principals import Principal
from sluiceway.storage.locations import Location


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
