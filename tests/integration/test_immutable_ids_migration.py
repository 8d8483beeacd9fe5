"""Migration 0006 binds roles and jobs to ids: an existing workspace upgrades in place.

Endpoints and datastores get ids; each role assignment on one references it; assignments left
from a deleted endpoint or datastore are removed; each job references its invoker's id, and a
job whose invoker no longer exists references none.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from sluiceway.store.db import Database
from sluiceway.store.identities import IdentityStore
from sluiceway.store.jobs import JobStore
from tests.integration.databases import DATABASES, empty_database
from tests.integration.test_job_invoker_migration import _migrate


@pytest.fixture(params=DATABASES)
def db_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with empty_database(request.param, tmp_path) as database:
        _migrate(database.engine, "0004")
        yield database


def _sql(db: Database, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_an_existing_workspace_gets_ids_and_loses_grants_on_deleted_resources(
    db_at_0004: Database,
) -> None:
    db = db_at_0004
    now = "2026-01-01 00:00:00"
    for identity_id, name in (("id-ana", "ana"), ("id-bob", "bob")):
        _sql(
            db,
            "INSERT INTO identities (id, name, kind, created_at) VALUES (:i, :n, 'user', :t)",
            i=identity_id,
            n=name,
            t=now,
        )
    _sql(
        db,
        "INSERT INTO batch_endpoints (name, tags, properties, auth_mode, created_at, created_by) "
        "VALUES ('ep', '{}', '{}', 'aad_token', :t, 'ana')",
        t=now,
    )
    _sql(
        db,
        "INSERT INTO datastores (name, type, tags, config, is_default, created_at, created_by) "
        "VALUES ('ds', 'local', '{}', '{}', false, :t, 'ana')",
        t=now,
    )
    for scope in ("workspace", "endpoint:ep", "endpoint:gone", "datastore:ds", "datastore:gone"):
        _sql(
            db,
            "INSERT INTO role_assignments (identity_id, scope, role, created_at) "
            "VALUES ('id-ana', :s, 'reader', :t)",
            s=scope,
            t=now,
        )
    for seq, (job, invoker) in enumerate((("job-a", "ana"), ("job-x", "xavier")), start=1):
        _sql(
            db,
            "INSERT INTO jobs (name, endpoint_name, deployment_name, status, spec, invoker, "
            "created_at, seq) VALUES (:j, 'ep', 'dep', 'Completed', '{}', :i, :t, :s)",
            j=job,
            i=invoker,
            t=now,
            s=seq,
        )

    _migrate(db.engine, "head")

    with db.engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT name, id FROM batch_endpoints")).all())
        ids |= dict(conn.execute(text("SELECT name, id FROM datastores")).all())
        grants = dict(conn.execute(text("SELECT scope, resource_id FROM role_assignments")).all())
    assert ids["ep"] and ids["ds"] and ids["ep"] != ids["ds"]
    assert grants == {"workspace": None, "endpoint:ep": ids["ep"], "datastore:ds": ids["ds"]}
    ana = IdentityStore(db).get("id-ana")
    assert ana is not None
    assert ana.roles == (
        ("datastore:ds", "reader"),
        ("endpoint:ep", "reader"),
        ("workspace", "reader"),
    )
    jobs = JobStore(db)
    job_a, job_x = jobs.get("job-a"), jobs.get("job-x")
    assert job_a is not None and job_a.invoker_id == "id-ana" and job_a.invoker == "ana"
    assert job_x is not None and job_x.invoker_id is None and job_x.invoker == "xavier"

    _migrate(db.engine, "0004", down=True)
    _migrate(db.engine, "head")
