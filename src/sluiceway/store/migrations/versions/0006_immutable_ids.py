"""immutable ids: endpoints and datastores get one, role assignments and jobs reference ids

A role assignment names the endpoint or datastore it was granted on by that resource's id, and
a job names its invoker by the identity's id, so a new resource or identity that takes a deleted
one's name starts with none of its roles or jobs. Existing rows get ids; assignments on a scope
whose resource no longer exists are removed; a job whose invoker no longer exists keeps no
invoker id (no identity owns it).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Tables whose rows get an id, and the scope kind of role assignments on them.
_RESOURCES = {"batch_endpoints": "endpoint", "datastores": "datastore"}


def upgrade() -> None:
    # Nullable columns, added in place: on SQLite, recreating batch_endpoints would delete its
    # deployments (they reference it with ON DELETE CASCADE).
    for table in _RESOURCES:
        op.add_column(table, sa.Column("id", sa.String(length=64), nullable=True))
    op.add_column("role_assignments", sa.Column("resource_id", sa.String(length=64), nullable=True))
    op.add_column("jobs", sa.Column("invoker_id", sa.String(length=64), nullable=True))

    conn = op.get_bind()
    for table, kind in _RESOURCES.items():
        for name in conn.execute(sa.text(f"SELECT name FROM {table}")).scalars().all():
            conn.execute(
                sa.text(f"UPDATE {table} SET id = :id WHERE name = :name"),
                {"id": uuid.uuid4().hex, "name": name},
            )
        op.create_index(f"ix_{table}_id", table, ["id"], unique=True)
        conn.execute(
            sa.text(
                f"UPDATE role_assignments SET resource_id = (SELECT t.id FROM {table} t "
                f"WHERE '{kind}:' || t.name = role_assignments.scope) "
                f"WHERE scope LIKE '{kind}:%'"
            )
        )
    # Grants that outlived their endpoint or datastore would apply to a new one of its name.
    conn.execute(
        sa.text("DELETE FROM role_assignments WHERE scope <> 'workspace' AND resource_id IS NULL")
    )
    op.create_index("ix_role_assignments_resource_id", "role_assignments", ["resource_id"])
    conn.execute(
        sa.text(
            "UPDATE jobs SET invoker_id = "
            "(SELECT i.id FROM identities i WHERE i.name = jobs.invoker)"
        )
    )
    op.create_index("ix_jobs_invoker_id", "jobs", ["invoker_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_invoker_id", table_name="jobs")
    op.drop_index("ix_role_assignments_resource_id", table_name="role_assignments")
    for table in _RESOURCES:
        op.drop_index(f"ix_{table}_id", table_name=table)
    # Dropping a column on SQLite (3.35 and later) needs no copy of the table.
    op.drop_column("role_assignments", "resource_id")
    op.drop_column("jobs", "invoker_id")
    for table in _RESOURCES:
        op.drop_column(table, "id")
