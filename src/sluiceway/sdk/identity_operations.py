"""``ml_client.identities`` and ``ml_client.role_assignments``: who may use the workspace.

Both need the ``owner`` role on the workspace, except that an identity may mint tokens for
itself (``create_token`` with its own name).
"""

from __future__ import annotations

from typing import Any

from sluiceway.schemas.identities import (
    IdentityCreate,
    IdentityKind,
    IdentityOut,
    IdentityWithSecret,
    RoleAssignmentCreate,
    RoleAssignmentOut,
    TokenCreate,
    TokenOut,
)
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.validate import validate_shape


class IdentityOperations:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(
        self,
        name: str,
        kind: IdentityKind | str = IdentityKind.USER,
        *,
        description: str | None = None,
        external_id: str | None = None,
    ) -> IdentityWithSecret:
        """Add a ``user`` or a ``service_principal``. A service principal's answer holds its
        ``client_id`` and ``client_secret``; the secret is never shown again.

        Raises:
            ValidationError: the name or kind is not valid.
            ConflictError: the name or the external id is taken.
        """
        raw = {"name": name, "kind": str(kind), "description": description}
        if external_id is not None:
            raw["external_id"] = external_id
        body = validate_shape(IdentityCreate, raw, source=f"identity {name!r}")
        answer = self._connection.request(
            "POST", "/identities", json=body.model_dump(mode="json"), expected=(201,)
        )
        return IdentityWithSecret.model_validate(answer)

    def get(self, name: str) -> IdentityOut:
        """Raises ``ResourceNotFoundError`` when there is no identity ``name``."""
        answer = self._connection.request("GET", f"/identities/{segment(name)}", expected=(200,))
        return IdentityOut.model_validate(answer)

    def delete(self, name: str) -> None:
        """Delete an identity and its roles; ``ConflictError`` for the last workspace owner."""
        self._connection.request("DELETE", f"/identities/{segment(name)}", expected=(204,))

    def rotate_secret(self, name: str) -> IdentityWithSecret:
        """A new secret for a service principal (the old one stops working at once)."""
        answer = self._connection.request(
            "POST", f"/identities/{segment(name)}/secret", expected=(200,)
        )
        return IdentityWithSecret.model_validate(answer)

    def create_token(self, name: str, expires_in: int | None = None) -> TokenOut:
        """A token for the identity, valid ``expires_in`` seconds (default an hour, at most
        365 days)."""
        body = TokenCreate(expires_in=expires_in)
        answer = self._connection.request(
            "POST",
            f"/identities/{segment(name)}/tokens",
            json=body.model_dump(exclude_none=True),
            expected=(200,),
        )
        return TokenOut.model_validate(answer)

    def whoami(self) -> dict[str, Any]:
        """The caller's identity and roles."""
        answer: dict[str, Any] = self._connection.request("GET", "/whoami", expected=(200,))
        return answer

    def list(self) -> list[IdentityOut]:
        answer = self._connection.request("GET", "/identities", expected=(200,))
        return [IdentityOut.model_validate(item) for item in answer or []]


class RoleAssignmentOperations:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create(self, identity: str, role: str, scope: str) -> RoleAssignmentOut:
        """Grant ``role`` (owner, contributor, invoker, reader) on ``scope`` (``workspace``,
        ``endpoint:<name>``, ``datastore:<name>``); granting it again changes nothing.

        Raises:
            ValidationError: the role or scope is not accepted.
            ResourceNotFoundError: the identity, or the scope's endpoint or datastore, does
                not exist.
        """
        body = RoleAssignmentCreate(identity=identity, role=role, scope=scope)
        answer = self._connection.request(
            "POST", "/roles", json=body.model_dump(), expected=(200, 201)
        )
        return RoleAssignmentOut.model_validate(answer)

    def delete(self, identity: str, role: str, scope: str) -> None:
        """Take a role back; ``ResourceNotFoundError`` when it is not held, ``ConflictError``
        for the last owner of the workspace."""
        self._connection.request(
            "DELETE",
            "/roles",
            params={"identity": identity, "role": role, "scope": scope},
            expected=(204,),
        )

    def list(
        self, identity: str | None = None, scope: str | None = None
    ) -> list[RoleAssignmentOut]:
        """The role assignments, of one identity and/or on one scope when given."""
        answer = self._connection.request(
            "GET", "/roles", params={"identity": identity, "scope": scope}, expected=(200,)
        )
        return [RoleAssignmentOut.model_validate(item) for item in answer or []]
