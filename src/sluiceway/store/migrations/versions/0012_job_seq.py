"""job_seq: a job's place in the queue is unique, also when several API servers invoke at once

Numbers already tied (two API servers on PostgreSQL taking max + 1 at once) are renumbered in
their order (number, creation time, name). On PostgreSQL the numbers then come from the
sequence ``job_seq``; on SQLite from max + 1 under the database's one writer lock. A unique
index keeps both honest.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("name", sa.String),
        sa.column("seq", sa.Integer),
        sa.column("created_at", sa.DateTime),
    )
    tied = conn.execute(
        sa.select(jobs.c.seq).group_by(jobs.c.seq).having(sa.func.count() > 1).limit(1)
    ).first()
    if tied is not None:
        names = conn.execute(
            sa.select(jobs.c.name).order_by(jobs.c.seq, jobs.c.created_at, jobs.c.name)
        ).scalars()
        conn.execute(
            jobs.update().where(jobs.c.name == sa.bindparam("n")).values(seq=sa.bindparam("s")),
            [{"n": name, "s": i} for i, name in enumerate(list(names), start=1)],
        )
    op.create_index("ux_jobs_seq", "jobs", ["seq"], unique=True)
    if conn.dialect.name == "postgresql":
        top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(jobs.c.seq), 0))).scalar_one()
        op.execute("CREATE SEQUENCE job_seq OWNED BY jobs.seq")
        if top:
            conn.execute(sa.text("SELECT setval('job_seq', :top)"), {"top": top})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE job_seq")
    op.drop_index("ux_jobs_seq", table_name="jobs")
