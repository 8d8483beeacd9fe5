"""Role assignments: ``GET``, ``POST`` and ``DELETE /roles``; all need the owner role."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from sluiceway.auth.policy import Action
from sluiceway.schemas.identities import RoleAssignmentCreate, RoleAssignmentOut
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.openapi import also_200

router = APIRouter(tags=["roles"])


@router.get("/roles")
def list_roles(
    ws: WorkspaceDep, caller: PrincipalDep, identity: str | None = None, scope: str | None = None
) -> list[RoleAssignmentOut]:
    """The role assignments, of one identity and/or on one scope when given."""
    caller.require(Action.ADMINISTER)
    return ws.role_assignments.list_all(identity, scope)


@router.post("/roles", status_code=201, responses=also_200(RoleAssignmentOut))
def assign_role(
    body: RoleAssignmentCreate, response: Response, ws: WorkspaceDep, caller: PrincipalDep
) -> RoleAssignmentOut:
    """Grant a role on a scope: 201, or 200 when the identity holds it already."""
    caller.require(Action.ADMINISTER)
    assignment, created = ws.role_assignments.assign(body)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return assignment


@router.delete("/roles", status_code=204)
def remove_role(
    identity: str, role: str, scope: str, ws: WorkspaceDep, caller: PrincipalDep
) -> Response:
    """Take a role back: 404 when it is not held, 409 for the workspace's last owner."""
    caller.require(Action.ADMINISTER)
    ws.role_assignments.remove(identity, role, scope)
    return Response(status_code=204)
