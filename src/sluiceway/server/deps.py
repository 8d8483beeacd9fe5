"""Request dependencies: the workspace and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sluiceway.auth.principals import Principal
from sluiceway.server.workspace import Workspace


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


WorkspaceDep = Annotated[Workspace, Depends(workspace)]


# Declares the bearer token in the OpenAPI document (its ``security``); the header itself is
# read as sent, so that a wrong scheme gets the server's own message.
_BEARER = HTTPBearer(
    auto_error=False,
    description="A token from `POST /identities/{name}/tokens`, `/oauth2/token` or the "
    "workspace's OIDC issuer.",
)


def principal(
    ws: WorkspaceDep,
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> Principal:
    """The caller; every route but ``/healthz`` and ``/oauth2/token`` depends on this."""
    return ws.authenticate(request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(principal)]
