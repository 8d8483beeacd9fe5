"""identities: description, service principal credentials and external subjects

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("secret_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_identities_client_id", ["client_id"], unique=True)
        batch_op.create_index("ix_identities_external_id", ["external_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_external_id")
        batch_op.drop_index("ix_identities_client_id")
        batch_op.drop_column("external_id")
        batch_op.drop_column("secret_hash")
        batch_op.drop_column("client_id")
        batch_op.drop_column("description")
