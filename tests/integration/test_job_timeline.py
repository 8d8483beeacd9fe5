"""Each mini-batch records the worker that ran it, for the job's timeline, against a real
server and its worker processes."""

from __future__ import annotations

from pathlib import Path

from sluiceway.store.db import Database
from sluiceway.store.jobs import JobStore
from tests.integration.conftest import RunningServer
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    unique,
    upload_folder,
    wait_for_job,
    write_numbered_files,
)


def test_each_mini_batch_records_the_worker_that_ran_it(
    server: RunningServer, tmp_path: Path
) -> None:
    with server.client() as client:
        endpoint = unique("timeline")
        create_script_deployment(client, tmp_path, endpoint, "blue", instance_count=2)
        write_numbered_files(tmp_path / "in", 6)
        uri = upload_folder(client, tmp_path / "in", unique("timeline-in"))
        body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}}, MiniBatchSize=1)
        r = client.post(f"/endpoints/{endpoint}/jobs", json=body)
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["name"])
        assert job["status"] == "Completed", job.get("error")
    db = Database(f"sqlite:///{server.home / 'workspace.db'}")
    try:
        spans = JobStore(db).spans(job["name"])
    finally:
        db.dispose()
    assert len(spans) == 6
    workers = {span.worker for span in spans}
    # The processes that ran them, not where the scheduler sent them.
    assert workers and None not in workers and "pool" not in workers, workers
