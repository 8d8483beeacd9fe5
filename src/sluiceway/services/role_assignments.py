"""Role assignments: which identity holds which role on which scope.

Roles and scopes are checked by :mod:`sluiceway.auth.policy`; a scope must name an endpoint or
datastore that exists when a role is granted on it (a grant outlives its resource: deleting an
endpoint leaves the assignments on it, which ``GET /roles`` still lists and removes).
"""

from __future__ import annotations

from collections.abc import Callable

from sluiceway.auth.policy import WORKSPACE, parse_role, parse_scope
from sluiceway.errors import ResourceNotFoundError
from sluiceway.schemas.identities import RoleAssignmentCreate, RoleAssignmentOut
from sluiceway.services.identities import IdentityService
from sluiceway.store.identities import IdentityStore, RoleAssignment

#: Whether a resource of a scope kind (``endpoint``, ``datastore``) with a name exists.
ResourceExists = Callable[[str], bool]

_KIND_WORDS = {"endpoint": "batch endpoint", "datastore": "datastore"}


def assignment_out(assignment: RoleAssignment) -> RoleAssignmentOut:
    return RoleAssignmentOut(
        identity=assignment.identity,
        role=assignment.role,
        scope=assignment.scope,
        created_at=assignment.created_at,
    )


class RoleAssignmentService:
    """Args:
    store: The identities and their roles.
    identities: Finds identities by name (404 naming one that does not exist).
    exists: For ``endpoint`` and ``datastore``, whether one of that name exists.
    """

    def __init__(
        self,
        store: IdentityStore,
        identities: IdentityService,
        exists: dict[str, ResourceExists],
    ) -> None:
        self._store = store
        self._identities = identities
        self._exists = exists

    def _existing_scope(self, raw: str) -> str:
        scope = parse_scope(raw)
        if scope == WORKSPACE:
            return scope
        kind, _, name = scope.partition(":")
        if not self._exists[kind](name):
            raise ResourceNotFoundError(
                f"Scope {scope!r}: {_KIND_WORDS[kind]} {name!r} does not exist.",
                target="scope",
            )
        return scope

    def list_all(
        self, identity: str | None = None, scope: str | None = None
    ) -> list[RoleAssignmentOut]:
        """The assignments, of one identity and/or on one scope when given.

        Raises:
            ResourceNotFoundError: ``identity`` does not exist.
            ValidationError: ``scope`` is not a scope.
        """
        identity_id = self._identities.identity(identity).id if identity is not None else None
        wanted = parse_scope(scope) if scope is not None else None
        found = self._store.assignments(identity_id=identity_id, scope=wanted)
        return [assignment_out(a) for a in found]

    def assign(self, body: RoleAssignmentCreate) -> tuple[RoleAssignmentOut, bool]:
        """Grant a role; the assignment and whether it is new (granting it again changes
        nothing).

        Raises:
            ValidationError: the role or the scope is not accepted (naming the accepted ones).
            ResourceNotFoundError: the identity, or the endpoint or datastore of the scope,
                does not exist.
        """
        role = parse_role(body.role)
        identity = self._identities.identity(body.identity)
        scope = self._existing_scope(body.scope)
        assignment, created = self._store.assign(identity.id, scope, role.value)
        return assignment_out(assignment), created

    def remove(self, identity: str, role: str, scope: str) -> None:
        """Take a role back.

        Raises:
            ValidationError: the role or the scope is not accepted.
            ResourceNotFoundError: the identity does not exist or does not hold the role there.
            ConflictError: it is the last owner role on the workspace.
        """
        parsed_role = parse_role(role)
        parsed_scope = parse_scope(scope)
        found = self._identities.identity(identity)
        if not self._store.unassign(found.id, parsed_scope, parsed_role.value):
            raise ResourceNotFoundError(
                f"Identity {identity!r} does not hold the role {parsed_role.value!r} on "
                f"{parsed_scope!r}.",
                target="role",
            )
