"""Request dependencies: the workspace and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from sluiceway.auth.principals import Principal
from sluiceway.server.workspace import Workspace


def workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


WorkspaceDep = Annotated[Workspace, Depends(workspace)]


def principal(ws: WorkspaceDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller; every route but ``/healthz`` depends on this."""
    return ws.authenticate(authorization)


PrincipalDep = Annotated[Principal, Depends(principal)]
