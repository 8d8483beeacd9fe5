"""Identities (users and service principals), their secrets and tokens.

Every route needs the ``owner`` role on the workspace (the ``administer`` action), except that
an identity may mint tokens for itself. A token minted with a token never outlives it.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from sluiceway.auth.policy import Action
from sluiceway.schemas.identities import (
    IdentityCreate,
    IdentityOut,
    IdentityWithSecret,
    TokenCreate,
    TokenOut,
)
from sluiceway.server.deps import PrincipalDep, WorkspaceDep

router = APIRouter(tags=["identities"])


@router.post("/identities", status_code=201)
def create_identity(
    body: IdentityCreate, ws: WorkspaceDep, caller: PrincipalDep
) -> IdentityWithSecret:
    """Add a user or a service principal; a service principal's secret is in this answer only."""
    caller.require(Action.ADMINISTER)
    return ws.identity_service.create(body)


@router.get("/identities")
def list_identities(ws: WorkspaceDep, caller: PrincipalDep) -> list[IdentityOut]:
    caller.require(Action.ADMINISTER)
    return ws.identity_service.list_all()


@router.get("/identities/{name}")
def get_identity(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> IdentityOut:
    caller.require(Action.ADMINISTER)
    return ws.identity_service.get(name)


@router.delete("/identities/{name}", status_code=204)
def delete_identity(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> Response:
    """Delete an identity and its roles; 409 for the workspace's last owner."""
    caller.require(Action.ADMINISTER)
    ws.identity_service.delete(name)
    return Response(status_code=204)


@router.post("/identities/{name}/secret")
def rotate_secret(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> IdentityWithSecret:
    """Give a service principal a new secret, shown in this answer only."""
    caller.require(Action.ADMINISTER)
    return ws.identity_service.rotate_secret(name)


@router.post("/identities/{name}/tokens")
def create_token(
    name: str, ws: WorkspaceDep, caller: PrincipalDep, body: TokenCreate | None = None
) -> TokenOut:
    """A token for the identity (default lifetime an hour, at most 365 days, and never past the
    caller's own token). Owners mint for anyone; any identity for itself."""
    if caller.name != name:
        caller.require(Action.ADMINISTER, what=f"tokens of identity {name!r}")
    return ws.identity_service.create_token(
        name, body.expires_in if body else None, not_after=caller.token_expires_on
    )


@router.delete("/identities/{name}/tokens", status_code=204)
def revoke_tokens(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> Response:
    """Revoke every token issued for the identity so far (tokens of an external OpenID Connect
    issuer excepted: delete the identity, or its mapping, to refuse those)."""
    caller.require(Action.ADMINISTER)
    ws.identity_service.revoke_tokens(name)
    if name == ws.owner.name:
        ws.renew_home_token()
    return Response(status_code=204)
