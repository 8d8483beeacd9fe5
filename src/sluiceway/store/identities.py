"""Identities and the roles granted to them.

The workspace always keeps one identity with the ``owner`` role on the workspace: removing that
role from, or deleting, the last such identity is refused inside the transaction that would do
it, with the owners' rows locked, so two concurrent removals cannot both pass.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sluiceway.clock import as_utc, utcnow
from sluiceway.errors import ConflictError
from sluiceway.store.db import Database
from sluiceway.store.tables import DatastoreRow, EndpointRow, IdentityRow, RoleAssignmentRow

WORKSPACE_SCOPE = "workspace"
OWNER_ROLE = "owner"


@dataclass(frozen=True)
class Identity:
    id: str
    name: str
    kind: str
    roles: tuple[tuple[str, str], ...]  # (scope, role)
    description: str | None = None
    client_id: str | None = None
    external_id: str | None = None
    created_at: datetime | None = None
    token_generation: int = 0


@dataclass(frozen=True)
class RoleAssignment:
    identity: str  # the identity's name
    identity_id: str
    scope: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class ClientCredentials:
    """A service principal found by its client id, with its stored secret hash."""

    identity: Identity
    secret_hash: str | None


def _identity(row: IdentityRow | Row[Any], roles: list[RoleAssignmentRow]) -> Identity:
    return Identity(
        id=row.id,
        name=row.name,
        kind=row.kind,
        roles=tuple((r.scope, r.role) for r in sorted(roles, key=lambda r: (r.scope, r.role))),
        description=row.description,
        client_id=row.client_id,
        external_id=row.external_id,
        created_at=as_utc(row.created_at),
        token_generation=row.token_generation,
    )


def _live() -> ColumnElement[bool]:
    """Assignments whose endpoint or datastore still exists: one granted on a resource that
    was deleted (and maybe replaced by a new one of its name) holds for nothing."""
    resource = RoleAssignmentRow.resource_id
    return or_(
        resource.is_(None),
        resource.in_(select(EndpointRow.id)),
        resource.in_(select(DatastoreRow.id)),
    )


def _last_owner_check(s: Session, identity_id: str, what: str) -> None:
    """Refuse (409) when ``identity_id`` holds the only workspace owner role left."""
    owners = s.scalars(
        select(RoleAssignmentRow.identity_id)
        .where(RoleAssignmentRow.scope == WORKSPACE_SCOPE, RoleAssignmentRow.role == OWNER_ROLE)
        .with_for_update()
    ).all()
    if identity_id in owners and len(set(owners)) == 1:
        raise ConflictError(
            f"Cannot {what}: it is the last identity with the 'owner' role on the workspace, "
            "and a workspace needs one. Assign 'owner' on 'workspace' to another identity first.",
            target="role",
        )


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- identities -------------------------------------------------------------------------

    def _roles(self, s: Session, identity_id: str) -> list[RoleAssignmentRow]:
        return list(
            s.scalars(
                select(RoleAssignmentRow).where(
                    RoleAssignmentRow.identity_id == identity_id, _live()
                )
            )
        )

    def _one(self, s: Session, row: IdentityRow | None) -> Identity | None:
        return _identity(row, self._roles(s, row.id)) if row is not None else None

    def get(self, identity_id: str) -> Identity | None:
        """The identity and its roles, in one statement (every authenticated request asks)."""
        identities = IdentityRow.__table__
        roles = (
            select(RoleAssignmentRow.scope, RoleAssignmentRow.role)
            .where(RoleAssignmentRow.identity_id == identity_id, _live())
            .subquery()
        )
        query = (
            select(identities, roles.c.scope.label("role_scope"), roles.c.role.label("role_name"))
            .select_from(identities.outerjoin(roles, true()))
            .where(identities.c.id == identity_id)
        )
        with self._db.one_statement() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return None
        granted = [(r.role_scope, r.role_name) for r in rows if r.role_scope is not None]
        return replace(_identity(rows[0], []), roles=tuple(sorted(granted)))

    def get_by_name(self, name: str) -> Identity | None:
        with self._db.reading() as s:
            return self._one(
                s, s.scalars(select(IdentityRow).where(IdentityRow.name == name)).first()
            )

    def get_by_external_id(self, external_id: str) -> Identity | None:
        with self._db.reading() as s:
            row = s.scalars(select(IdentityRow).where(IdentityRow.external_id == external_id))
            return self._one(s, row.first())

    def get_client(self, client_id: str) -> ClientCredentials | None:
        """The service principal with this client id, and its secret hash."""
        with self._db.reading() as s:
            row = s.scalars(select(IdentityRow).where(IdentityRow.client_id == client_id)).first()
            if row is None:
                return None
            return ClientCredentials(_identity(row, self._roles(s, row.id)), row.secret_hash)

    def list_all(self) -> list[Identity]:
        with self._db.reading() as s:
            rows = s.scalars(select(IdentityRow).order_by(IdentityRow.name)).all()
            roles: dict[str, list[RoleAssignmentRow]] = {}
            for assignment in s.scalars(select(RoleAssignmentRow).where(_live())):
                roles.setdefault(assignment.identity_id, []).append(assignment)
            return [_identity(row, roles.get(row.id, [])) for row in rows]

    def create(
        self,
        name: str,
        kind: str,
        roles: list[tuple[str, str]],
        *,
        description: str | None = None,
        client_id: str | None = None,
        secret_hash: str | None = None,
        external_id: str | None = None,
    ) -> Identity:
        """Add an identity with its roles (``(scope, role)`` pairs).

        Raises:
            ConflictError: the name, client id or external id is taken.
        """
        now = utcnow()
        identity_id = uuid.uuid4().hex
        try:
            with self._db.session() as s:
                s.add(
                    IdentityRow(
                        id=identity_id,
                        name=name,
                        kind=kind,
                        created_at=now,
                        description=description,
                        client_id=client_id,
                        secret_hash=secret_hash,
                        external_id=external_id,
                        token_generation=0,
                    )
                )
                s.flush()
                for scope, role in roles:
                    s.add(
                        RoleAssignmentRow(
                            identity_id=identity_id, scope=scope, role=role, created_at=now
                        )
                    )
        except IntegrityError:
            raise ConflictError(
                f"An identity with the name {name!r}"
                + (f" or the external id {external_id!r}" if external_id else "")
                + " exists already.",
                target="name",
            ) from None
        return Identity(
            identity_id,
            name,
            kind,
            tuple(sorted(roles)),
            description,
            client_id,
            external_id,
            now,
        )

    def set_secret_hash(self, identity_id: str, secret_hash: str) -> bool:
        """Replace a service principal's secret and revoke its tokens, in one transaction;
        False when the identity is gone."""
        with self._db.session() as s:
            row = s.get(IdentityRow, identity_id)
            if row is None:
                return False
            row.secret_hash = secret_hash
            row.token_generation = IdentityRow.token_generation + 1
            return True

    def revoke_tokens(self, identity_id: str) -> bool:
        """Revoke every token issued for the identity so far; False when it is gone."""
        with self._db.session() as s:
            row = s.get(IdentityRow, identity_id)
            if row is None:
                return False
            row.token_generation = IdentityRow.token_generation + 1
            return True

    def delete(self, identity_id: str) -> bool:
        """Delete an identity and its role assignments; False when there was none.

        Raises:
            ConflictError: it is the last owner of the workspace.
        """
        with self._db.session() as s:
            row = s.get(IdentityRow, identity_id)
            if row is None:
                return False
            _last_owner_check(s, identity_id, f"delete identity {row.name!r}")
            s.execute(delete(RoleAssignmentRow).where(RoleAssignmentRow.identity_id == identity_id))
            s.delete(row)
            return True

    # -- role assignments -------------------------------------------------------------------

    def assignments(
        self, *, identity_id: str | None = None, scope: str | None = None
    ) -> list[RoleAssignment]:
        """Role assignments, by identity name then scope and role; filtered when asked."""
        query = (
            select(RoleAssignmentRow, IdentityRow.name)
            .join(IdentityRow, IdentityRow.id == RoleAssignmentRow.identity_id)
            .where(_live())
        )
        if identity_id is not None:
            query = query.where(RoleAssignmentRow.identity_id == identity_id)
        if scope is not None:
            query = query.where(RoleAssignmentRow.scope == scope)
        query = query.order_by(IdentityRow.name, RoleAssignmentRow.scope, RoleAssignmentRow.role)
        with self._db.reading() as s:
            return [
                RoleAssignment(name, row.identity_id, row.scope, row.role, as_utc(row.created_at))
                for row, name in s.execute(query).all()
            ]

    def assign(
        self, identity_id: str, scope: str, role: str, resource_id: str | None = None
    ) -> tuple[RoleAssignment, bool]:
        """Grant ``role`` on ``scope``; the assignment and whether it is new.

        Args:
            resource_id: The id of the endpoint or datastore ``scope`` names (None for the
                workspace): the grant holds for that resource only.

        Raises:
            ConflictError: the identity is gone.
        """
        key = {"identity_id": identity_id, "scope": scope, "role": role}
        try:
            with self._db.session() as s:
                identity = s.get(IdentityRow, identity_id)
                if identity is None:
                    raise ConflictError("The identity was deleted meanwhile.", target="identity")
                row = s.get(RoleAssignmentRow, key)
                created = row is None or row.resource_id != resource_id
                if row is None:
                    row = RoleAssignmentRow(**key, created_at=utcnow(), resource_id=resource_id)
                    s.add(row)
                    s.flush()
                elif created:
                    # Left from a deleted resource of the same name: granted anew on this one.
                    row.resource_id = resource_id
                    row.created_at = utcnow()
                    s.flush()
                found = RoleAssignment(
                    identity.name, identity_id, scope, role, as_utc(row.created_at)
                )
        except IntegrityError:
            # Another request granted the same role at the same moment.
            with self._db.session() as s:
                row = s.get(RoleAssignmentRow, key)
                identity = s.get(IdentityRow, identity_id)
                if row is None or identity is None:
                    raise
                found = RoleAssignment(
                    identity.name, identity_id, scope, role, as_utc(row.created_at)
                )
            created = False
        return found, created

    def unassign(self, identity_id: str, scope: str, role: str) -> bool:
        """Remove a role assignment; False when there was none.

        Raises:
            ConflictError: it is the last workspace owner role.
        """
        with self._db.session() as s:
            row = s.get(
                RoleAssignmentRow, {"identity_id": identity_id, "scope": scope, "role": role}
            )
            if row is None:
                return False
            if scope == WORKSPACE_SCOPE and role == OWNER_ROLE:
                identity = s.get(IdentityRow, identity_id)
                name = identity.name if identity else identity_id
                _last_owner_check(
                    s, identity_id, f"remove the 'owner' role on the workspace from {name!r}"
                )
            s.delete(row)
            return True
