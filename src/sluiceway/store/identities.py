"""Identities and the roles granted to them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from sluiceway.clock import utcnow
from sluiceway.store.db import Database
from sluiceway.store.tables import IdentityRow, RoleAssignmentRow


@dataclass(frozen=True)
class Identity:
    id: str
    name: str
    kind: str
    roles: tuple[tuple[str, str], ...]  # (scope, role)


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, identity_id: str) -> Identity | None:
        with self._db.session() as s:
            row = s.get(IdentityRow, identity_id)
            if row is None:
                return None
            roles = s.scalars(
                select(RoleAssignmentRow).where(RoleAssignmentRow.identity_id == identity_id)
            ).all()
            return Identity(row.id, row.name, row.kind, tuple((r.scope, r.role) for r in roles))

    def get_by_name(self, name: str) -> Identity | None:
        with self._db.session() as s:
            row = s.scalars(select(IdentityRow).where(IdentityRow.name == name)).first()
            ident = row.id if row else None
        return self.get(ident) if ident else None

    def create(self, name: str, kind: str, roles: list[tuple[str, str]]) -> Identity:
        now = utcnow()
        identity_id = uuid.uuid4().hex
        with self._db.session() as s:
            s.add(IdentityRow(id=identity_id, name=name, kind=kind, created_at=now))
            s.flush()
            for scope, role in roles:
                s.add(
                    RoleAssignmentRow(
                        identity_id=identity_id, scope=scope, role=role, created_at=now
                    )
                )
        return Identity(identity_id, name, kind, tuple(roles))
