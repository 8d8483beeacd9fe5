"""Role assignments: which identity holds which role on which scope.

Roles and scopes are checked by :mod:`sluiceway.auth.policy`; a scope must name an endpoint or
datastore that exists when a role is granted on it. The grant is bound to that resource's
immutable id, not to its name: deleting the endpoint or datastore deletes the roles on it, and a
new one of the same name starts with none.
"""

from __future__ import annotations

from collections.abc import Callable

from sluiceway.auth.policy import WORKSPACE, parse_role, parse_scope
from sluiceway.errors import ResourceNotFoundError
from sluiceway.schemas.identities import RoleAssignmentCreate, RoleAssignmentOut
from sluiceway.services.identities import IdentityService
from sluiceway.store.identities import IdentityStore, RoleAssignment

#: The id of the resource of a scope kind (``endpoint``, ``datastore``) with a name, if any.
ResourceId = Callable[[str], str | None]

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
    resource_ids: For ``endpoint`` and ``datastore``, the id of the one of a name, if any.
    """

    def __init__(
        self,
        store: IdentityStore,
        identities: IdentityService,
        resource_ids: dict[str, ResourceId],
    ) -> None:
        self._store = store
        self._identities = identities
        self._resource_ids = resource_ids

    def _existing_scope(self, raw: str) -> tuple[str, str | None]:
        """The scope, and the id of the endpoint or datastore it names (None: the workspace)."""
        scope = parse_scope(raw)
        if scope == WORKSPACE:
            return scope, None
        kind, _, name = scope.partition(":")
        resource_id = self._resource_ids[kind](name)
        if resource_id is None:
            raise ResourceNotFoundError(
                f"Scope {scope!r}: {_KIND_WORDS[kind]} {name!r} does not exist.",
                target="scope",
            )
        return scope, resource_id

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
        scope, resource_id = self._existing_scope(body.scope)
        assignment, created = self._store.assign(identity.id, scope, role.value, resource_id)
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
