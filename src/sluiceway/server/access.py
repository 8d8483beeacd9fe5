"""What a route needs of its caller, declared on the route.

A route whose scope is fixed by its URL declares the action it needs, on the workspace or on
the endpoint or datastore its path names::

    @router.get("/datastores/{name}", dependencies=[allowed(Action.READ, datastore="name")])

Checks that depend on stored state (creating a resource or replacing an existing one, a job's
invoker and endpoint, the data an invocation reads and writes) are made by the services, which
get the caller as an argument.
"""

# No ``from __future__ import annotations``: FastAPI reads the annotations of
# ``Allowed.__call__`` at run time, and an instance has no ``__globals__`` to resolve strings in.
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from sluiceway.auth.policy import WORKSPACE, Action, datastore_scope, endpoint_scope
from sluiceway.server.deps import PrincipalDep


@dataclass(frozen=True)
class Allowed:
    """A route dependency: the caller may do ``action`` on the workspace, or on the endpoint
    or datastore named by the path parameter ``endpoint`` or ``datastore``."""

    action: Action
    endpoint: str | None = None
    datastore: str | None = None

    def scope(self, path_params: dict[str, Any]) -> str:
        if self.endpoint is not None:
            return endpoint_scope(str(path_params[self.endpoint]))
        if self.datastore is not None:
            return datastore_scope(str(path_params[self.datastore]))
        return WORKSPACE

    async def __call__(self, request: Request, caller: PrincipalDep) -> None:
        # async: a check of the caller's roles, in memory, needs no thread of its own
        caller.require(self.action, self.scope(request.path_params))


# A route whose answer holds only what the caller may read (its own identity, filtered lists)
# declares so with ``openapi_extra=ANY_IDENTITY``; its OpenAPI operation then lists no 403.
ANY_IDENTITY_KEY = "x-any-identity"
ANY_IDENTITY: dict[str, Any] = {ANY_IDENTITY_KEY: True}


def allowed(action: Action, *, endpoint: str | None = None, datastore: str | None = None) -> Any:
    """``Depends`` on :class:`Allowed`, for a route's ``dependencies``.

    Args:
        action: What the route does.
        endpoint: The path parameter naming the endpoint the action is on.
        datastore: The path parameter naming the datastore the action is on.
    """
    return Depends(Allowed(action, endpoint, datastore))
