"""Component versions and pipeline steps in the store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from sluiceway.schemas.jobs import StepStatus
from sluiceway.store.components import ComponentStore
from sluiceway.store.db import Database
from sluiceway.store.jobs import JobStore
from sluiceway.store.steps import StepStore


def test_the_migration_adds_components_and_steps(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"component_versions", "job_steps"} <= tables


def test_versions_are_numbered_and_the_same_spec_is_not_stored_twice(db: Database) -> None:
    store = ComponentStore(db)
    spec = {"type": "command", "command": "python a.py", "name": "c"}
    first, created = store.create("c", None, "command", spec, "me")
    assert (first.version, created, first.spec["version"]) == ("1", True, "1")
    again, created = store.create("c", None, "command", spec, "me")
    assert (again.version, created) == ("1", False)
    second, created = store.create("c", None, "command", {**spec, "command": "b"}, "me")
    assert (second.version, created) == ("2", True)
    named, created = store.create("c", "v9", "command", {**spec, "command": "c"}, "me")
    assert (named.version, created) == ("v9", True)
    latest = store.latest("c")
    assert latest is not None and latest.version == "v9"
    assert [r.version for r in store.versions("c")] == ["v9", "2", "1"]
    assert store.create("c", None, "command", {**spec, "command": "d"}, "me")[0].version == "3"
    assert [r.name for r in store.list_latest()] == ["c"]
    assert store.get("c", "2") is not None and store.get("c", "7") is None


def test_steps_are_planned_once_and_reset_when_resumed(db: Database) -> None:
    jobs, steps = JobStore(db), StepStore(db)
    jobs.create(
        "job-1",
        endpoint_name="ep",
        deployment_name="d",
        spec={"kind": "pipeline"},
        invoker="me",
        experiment_name=None,
    )
    steps.plan("job-1", ["prepare", "score"])
    steps.plan("job-1", ["other"])  # an earlier scheduler's plan stays
    assert [(s.name, s.index, s.status) for s in steps.steps("job-1")] == [
        ("prepare", 0, StepStatus.NOT_STARTED),
        ("score", 1, StepStatus.NOT_STARTED),
    ]
    steps.start("job-1", "prepare")
    steps.finish("job-1", "prepare", StepStatus.COMPLETED, exit_code=0)
    steps.start("job-1", "score")
    assert steps.reset_unfinished("job-1") == 1
    prepare, score = steps.steps("job-1")
    assert (prepare.status, prepare.exit_code, prepare.attempts) == (StepStatus.COMPLETED, 0, 1)
    assert prepare.started_at is not None and prepare.ended_at is not None
    assert (score.status, score.started_at, score.attempts) == (StepStatus.NOT_STARTED, None, 1)
    steps.finish("job-1", "score", StepStatus.SKIPPED, error={"message": "Not run"})
    assert steps.steps("job-1")[1].ended_at is None  # never started, so never ended
