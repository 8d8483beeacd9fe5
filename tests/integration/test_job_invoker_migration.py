"""Migration 0004 widens ``jobs.invoker`` to any identity name, keeping every job's rows.

On SQLite the jobs table is copied to change the column, which would delete the mini-batches
and steps that reference it; they must all be there afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from sluiceway.store.db import MIGRATIONS, Database
from sluiceway.store.jobs import JobStore
from sluiceway.store.steps import StepStore
from tests.integration.databases import DATABASES, empty_database


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


@pytest.fixture(params=DATABASES)
def db_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with empty_database(request.param, tmp_path) as database:
        _migrate(database.engine, "0003")
        yield database


# The columns of each table at revision 0003; later revisions add others.
_COLUMNS = {
    "jobs": "name, endpoint_name, deployment_name, status, spec, invoker, experiment_name, "
    "error, created_at, started_at, ended_at, lease_owner, lease_expires_at, seq",
    "mini_batches": "*",
    "job_steps": "*",
}


def _rows(db: Database, table: str) -> list[tuple[object, ...]]:
    query = f"SELECT {_COLUMNS[table]} FROM {table} ORDER BY 1, 2"
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query))]


def test_long_invoker_names_fit_and_no_job_loses_its_rows(db_at_0003: Database) -> None:
    db = db_at_0003
    jobs, steps = JobStore(db), StepStore(db)
    for seq, name in enumerate(("job-a", "job-b"), start=1):
        # The jobs table as revision 0003 has it (the store writes today's columns).
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO jobs (name, endpoint_name, deployment_name, status, spec, "
                    "invoker, created_at, seq) VALUES (:name, 'ep', 'dep', 'Queued', "
                    "'{\"kind\": \"model\"}', 'alice', CURRENT_TIMESTAMP, :seq)"
                ),
                {"name": name, "seq": seq},
            )
        jobs.plan(name, [["a.csv", "b.csv"], ["c.csv"]])
        steps.plan(name, ["prep", "score"])
    before = {t: _rows(db, t) for t in ("jobs", "mini_batches", "job_steps")}
    assert len(before["mini_batches"]) == 4 and len(before["job_steps"]) == 4

    _migrate(db.engine, "head")

    assert {t: _rows(db, t) for t in before} == before
    long_name = "service-principal-" + "x" * 200
    jobs.create(
        "job-c",
        endpoint_name="ep",
        deployment_name="dep",
        spec={"kind": "model"},
        invoker=long_name,
        experiment_name=None,
    )
    created = jobs.get("job-c")
    assert created is not None and created.invoker == long_name
    # The references still hold: deleting a job still removes its mini-batches and steps.
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM jobs WHERE name = 'job-a'"))
    assert {r[0] for r in _rows(db, "mini_batches")} == {"job-b"}
    assert {r[0] for r in _rows(db, "job_steps")} == {"job-b"}
