"""jobs: the invoker column holds any identity name (up to 255 characters, as identities')

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Rows that reference jobs with ON DELETE CASCADE.
_CHILDREN = ("mini_batches", "job_steps")


def _invoker_length(length: int, existing: int) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "jobs",
            "invoker",
            type_=sa.String(length=length),
            existing_type=sa.String(length=existing),
            existing_nullable=False,
        )
        return
    # SQLite cannot change a column's type in place: batch mode copies the jobs table and drops
    # the old one, and (foreign keys being on, and not to be turned off inside a transaction)
    # the drop would delete the rows that reference it. They are kept aside and put back.
    for table in _CHILDREN:
        op.execute(f"CREATE TEMP TABLE kept_{table} AS SELECT * FROM {table}")
        op.execute(f"DELETE FROM {table}")
    with op.batch_alter_table("jobs", schema=None, recreate="always") as batch_op:
        batch_op.alter_column(
            "invoker",
            type_=sa.String(length=length),
            existing_type=sa.String(length=existing),
            existing_nullable=False,
        )
    for table in _CHILDREN:
        op.execute(f"INSERT INTO {table} SELECT * FROM kept_{table}")
        op.execute(f"DROP TABLE kept_{table}")


def upgrade() -> None:
    _invoker_length(255, 64)


def downgrade() -> None:
    _invoker_length(64, 255)
