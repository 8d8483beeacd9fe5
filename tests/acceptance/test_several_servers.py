"""Several server processes on one PostgreSQL database and one S3 default datastore: two API
servers and two schedulers, each a real process on an ephemeral port with a home of its own.

A job invoked through one API server is seen and canceled through the other, with a token of
either; schedulers wake on LISTEN/NOTIFY; a scheduler SIGKILLed mid-job is taken over and the
output holds every row once; ten processes started together on an empty database migrate it
once and make one owner. A summary_only job taken over by a scheduler with another staging folder
(another machine) commits every file its script wrote, before and after the takeover; a pipeline
job's logs of the killed scheduler are kept.
"""

from __future__ import annotations

import collections
import os
import random
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from sluiceway.scheduler.lease import LeaseOwner
from sluiceway.store.db import Database
from sluiceway.store.jobs import JobStore, lease_scheduler
from sluiceway.store.startup import head_revision
from tests.acceptance.test_fault_injection import deploy, invoke, ledger_counts, write_rows
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.databases import postgres_database
from tests.integration.helpers import (
    create_script_deployment,
    read_output,
    unique,
    upload_folder,
    wait_for_job,
)
from tests.integration.servers_workspace import SharedWorkspace, shared_workspace
from tests.integration.test_job_reliability import SUMMARY_SCRIPT
from tests.integration.test_pipelines import STEPS_SCRIPT, command, literal
from tests.integration.test_pipelines import deploy as deploy_pipeline
from tests.integration.test_pipelines import invoke as invoke_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Schedulers poll only every 5 s: a job that starts sooner was woken by a notification. A lease
# lasts 3 s, so a scheduler on another machine would take over 3 s after a kill.
PROCESS_ENV = {
    "SLUICEWAY_SCHEDULER_POLL_SECONDS": "5",
    "SLUICEWAY_LEASE_SECONDS": "3",
    "SLUICEWAY_WORKER_IDLE_SECONDS": "0",
}


@dataclass
class Cluster:
    workspace: SharedWorkspace
    root: Path
    # Flag and ledger files the workers of every scheduler can see: a scheduler running as root
    # runs its workers as another user, in a view that holds only its local datastore roots of
    # the test's folders.
    shared: Path = field(init=False)
    apis: list[RunningServer] = field(default_factory=list)
    schedulers: list[RunningServer] = field(default_factory=list)
    started: int = 0

    def __post_init__(self) -> None:
        self.shared = self.root / "shared"
        self.shared.mkdir(exist_ok=True)
        self.shared.chmod(0o777)

    def start(self, role: str) -> RunningServer:
        self.started += 1
        home = self.root / f"{role}-{self.started}"
        env = self.workspace.env(**PROCESS_ENV, SLUICEWAY_LOCAL_DATASTORE_ROOTS=str(self.shared))
        return start_server(home, role=role, extra_env=env)

    def shared_folder(self) -> Path:
        folder = self.shared / uuid.uuid4().hex
        folder.mkdir()
        folder.chmod(0o777)
        return folder

    def store(self) -> tuple[Database, JobStore]:
        db = Database(self.workspace.database_url)
        return db, JobStore(db)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("several-servers")
    with shared_workspace(root) as workspace:
        running = Cluster(workspace, root)
        # The first process creates the workspace; the others join it together.
        running.apis.append(running.start("api"))
        with ThreadPoolExecutor(3) as pool:
            api, *schedulers = pool.map(running.start, ["api", "scheduler", "scheduler"])
        running.apis.append(api)
        running.schedulers.extend(schedulers)
        try:
            yield running
        finally:
            for server in running.apis + running.schedulers:
                stop_server(server)


def test_jobs_and_tokens_of_one_api_server_work_on_the_other(
    cluster: Cluster, tmp_path: Path
) -> None:
    one, other = cluster.apis
    for process in cluster.apis + cluster.schedulers:
        ready = httpx.get(f"{process.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text  # PostgreSQL and S3 answer every process
    # Each home got the owner's token of the one workspace: each works on both servers.
    for server in (one, other):
        for token in (one.token, other.token):
            who = httpx.get(
                f"{server.url}/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            assert who.status_code == 200 and who.json()["name"] == "owner", who.text
    ledger = cluster.shared_folder() / "ledger.txt"
    with one.client() as first, other.client() as second:
        endpoint = deploy(first, tmp_path, environment={"LEDGER": str(ledger), "DELAY": "2"})
        write_rows(tmp_path / "data", 4)
        data = upload_folder(second, tmp_path / "data", unique("several"))
        name = invoke(first, endpoint, data)
        queued = time.monotonic()
        # An idle scheduler hears of the job at once, not at its next poll (5 s).
        # (Notified, a scheduler starts it in milliseconds; 3 s leaves room for a loaded machine
        # and is still well before the next poll.)
        while second.get(f"/jobs/{name}").json()["status"] in ("Queued", "NotStarted"):
            assert time.monotonic() - queued < 3, "no scheduler woke for the job"
            time.sleep(0.02)
        while not ledger.exists():  # a worker scores the first file
            time.sleep(0.05)
        canceled = second.post(f"/jobs/{name}/cancel")
        assert canceled.status_code in (200, 202), canceled.text
        asked = time.monotonic()
        done = wait_for_job(first, name, timeout=30)
        assert done["status"] == "Canceled", done
        assert time.monotonic() - asked < 5
        listed = [j["name"] for j in second.get("/jobs").json()]
        assert name in listed


def holder_pid(store: JobStore, job: str) -> int | None:
    record = store.get(job)
    if record is None or record.lease_owner is None:
        return None
    owner = LeaseOwner.parse(lease_scheduler(record.lease_owner))
    return owner.pid if owner is not None else None


def test_a_scheduler_killed_mid_job_is_taken_over_and_each_row_is_written_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    seed = int(os.environ.get("SLUICEWAY_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    ledger = cluster.shared_folder() / "ledger.txt"
    count, kills = 200, 5
    one, other = cluster.apis
    with one.client() as client:
        endpoint = deploy(client, tmp_path, environment={"LEDGER": str(ledger)}, workers=2)
        expected = write_rows(tmp_path / "data", count)
        name = invoke(client, endpoint, upload_folder(client, tmp_path / "data", unique("kill")))
    db, store = cluster.store()
    done_before_kills: set[int] = set()
    try:
        points = sorted(rng.sample(range(5, count - 10), kills))
        for point in points:
            while True:
                counts = store.counts(name)
                if counts.succeeded >= point:
                    break
                assert store.get(name).status.value not in ("Completed", "Failed"), seed  # type: ignore[union-attr]
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.2))
            done_before_kills |= {
                m.index for m in store.mini_batches(name) if m.status.value == "Succeeded"
            }
            pid = holder_pid(store, name)
            victims = [s for s in cluster.schedulers if s.process.pid == pid]
            assert victims, (seed, pid, [s.process.pid for s in cluster.schedulers])
            (victim,) = victims
            victim.process.kill()
            victim.process.wait()
            cluster.schedulers.remove(victim)
            # The other scheduler takes the job over; a new one joins for the next kill.
            cluster.schedulers.append(cluster.start("scheduler"))
        with other.client() as client:
            done = wait_for_job(client, name, timeout=120)
            assert done["status"] == "Completed", (seed, done)
            assert done["progress"]["mini_batches_failed"] == 0
            rows = read_output(client, name)["predictions.csv"].splitlines()
        assert rows == expected, seed  # every row once, in input order
    finally:
        db.dispose()
    runs = ledger_counts(ledger)
    assert set(runs) == {str(p) for p in runs}  # paths, as the script wrote them
    by_file = collections.Counter(os.path.basename(p) for p in runs.elements())
    assert len(by_file) == count, seed
    # A mini-batch recorded as done before a kill never ran again.
    again = [i for i in done_before_kills if by_file[f"f-{i:04d}.txt"] != 1]
    assert not again, (seed, again)


def test_a_summary_only_job_taken_over_on_another_machine_commits_every_file(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Each scheduler's staging folder is in its own home, as on machines of their own: the
    files the script wrote for the mini-batches done before the kill reach the output from the
    job's folder in S3, the others from the scheduler that took the job over."""
    count = 30
    one, other = cluster.apis
    with one.client() as client:
        endpoint = unique("summary")
        create_script_deployment(
            client,
            tmp_path,
            endpoint,
            "summary",
            script=SUMMARY_SCRIPT,
            settings={
                "output_action": "summary_only",
                "mini_batch_size": 1,
                "max_concurrency_per_instance": 2,
                "environment_variables": {"DELAY": "0.2"},  # slow enough to be killed midway
            },
        )
        write_rows(tmp_path / "data", count)
        name = invoke(client, endpoint, upload_folder(client, tmp_path / "data", unique("sum")))
    db, store = cluster.store()
    try:
        while store.counts(name).succeeded < 8:
            assert store.get(name).status.value not in ("Completed", "Failed")  # type: ignore[union-attr]
            time.sleep(0.02)
        kill_the_holder(cluster, store, name)
        done_before = store.counts(name).succeeded
    finally:
        db.dispose()
    assert done_before < count  # the kill came mid-job
    with other.client() as client:
        done = wait_for_job(client, name, timeout=120)
        assert done["status"] == "Completed", done
        assert done["progress"]["mini_batches_failed"] == 0, done
        files = read_output(client, name)
    assert files == {f"f-{i:04d}.txt.summary": f"f-{i:04d}.txt" for i in range(count)}


def kill_the_holder(cluster: Cluster, store: JobStore, job: str) -> None:
    """SIGKILL the scheduler that holds the job's lease, and start another in its place."""
    pid = holder_pid(store, job)
    (victim,) = [s for s in cluster.schedulers if s.process.pid == pid]
    victim.process.kill()
    victim.process.wait()
    cluster.schedulers.remove(victim)
    cluster.schedulers.append(cluster.start("scheduler"))


def test_a_pipeline_job_is_taken_over_mid_step(cluster: Cluster, tmp_path: Path) -> None:
    flags = cluster.shared_folder()
    runs, go = flags / "runs.txt", flags / "go"
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "steps.py").write_text(STEPS_SCRIPT)
    one, other = cluster.apis
    with one.client() as client:
        code = upload_folder(client, tmp_path / "code", unique("code/steps"))
        pipeline = {
            "name": unique("taken-over"),
            "type": "pipeline",
            "inputs": {"runs": {"type": "string"}, "go": {"type": "string"}},
            "outputs": {"seen": {"type": "uri_folder"}},
            "jobs": {
                "first": {
                    "component": command(
                        code,
                        "count ${{inputs.runs}} ${{outputs.out}}",
                        {"runs": {"type": "string"}},
                        ("out",),
                    ),
                    "inputs": {"runs": "${{parent.inputs.runs}}"},
                },
                "second": {
                    "component": command(
                        code,
                        "waitfor ${{inputs.go}} ${{inputs.source}} ${{outputs.out}}",
                        {"go": {"type": "string"}, "source": {"type": "uri_folder"}},
                        ("out",),
                    ),
                    "inputs": {
                        "go": "${{parent.inputs.go}}",
                        "source": "${{parent.jobs.first.outputs.out}}",
                    },
                    "outputs": {"out": "${{parent.outputs.seen}}"},
                },
            },
        }
        endpoint = deploy_pipeline(client, pipeline)
        r = invoke_pipeline(client, endpoint, {"runs": literal(str(runs)), "go": literal(str(go))})
        assert r.status_code == 201, r.text  # the default datastore is S3
        name = r.json()["name"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            steps = {s["name"]: s["status"] for s in client.get(f"/jobs/{name}").json()["steps"]}
            if steps == {"first": "Completed", "second": "Running"}:
                break
            time.sleep(0.05)
        assert steps == {"first": "Completed", "second": "Running"}
        # The scheduler's log lines reach the job's folder while the job runs (every 10 s).
        overview = ""
        while "Step second started" not in overview and time.monotonic() < deadline:
            time.sleep(0.2)
            overview = client.get(f"/jobs/{name}/logs/job_progress_overview.txt").text
        assert "Step second started" in overview, overview
    db, store = cluster.store()
    try:
        kill_the_holder(cluster, store, name)
    finally:
        db.dispose()
    go.touch()
    with other.client() as client:
        job = wait_for_job(client, name, timeout=60)
        assert job["status"] == "Completed", job["error"]
        assert [s["status"] for s in job["steps"]] == ["Completed", "Completed"]
        assert runs.read_text() == "ran\n"  # the completed step did not run again
        seen = client.get(f"/jobs/{name}/outputs/seen/files/seen.txt")
        assert seen.status_code == 200 and seen.text == "done", seen.text
        overview = client.get(f"/jobs/{name}/logs/job_progress_overview.txt").text
        assert "Job completed" in overview, overview
        # The killed scheduler's lines are kept; the next one's follow them.
        assert "Step first completed" in overview, overview
        assert overview.count("Step second started") == 2, overview


def test_ten_processes_started_at_once_migrate_once_and_make_one_owner(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(os.urandom(32).hex())
    with postgres_database() as url:
        env = {
            "SLUICEWAY_DATABASE_URL": url,
            "SLUICEWAY_SECRET_KEY_FILE": str(key),
            "SLUICEWAY_SPARE_WORKERS": "0",
        }
        roles = ["api", "scheduler"] * 5
        with ThreadPoolExecutor(len(roles)) as pool:
            servers = list(
                pool.map(
                    lambda i: start_server(tmp_path / f"p{i}", role=roles[i], extra_env=env),
                    range(len(roles)),
                )
            )
        try:
            tokens = {s.token for s in servers}
            api = next(s for i, s in enumerate(servers) if roles[i] == "api")
            for token in tokens:
                response = httpx.get(
                    f"{api.url}/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10
                )
                assert response.json()["name"] == "owner"
            db = Database(url)
            try:
                with db.engine.connect() as conn:
                    identities = conn.execute(text("SELECT name FROM identities")).all()
                    versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
                    datastores = conn.execute(text("SELECT name FROM datastores")).all()
            finally:
                db.dispose()  # also when an assertion fails: no connection is left to the GC
            assert identities == [("owner",)]
            assert versions == [(head_revision(),)]
            assert datastores == [("workspaceblobstore",)]
        finally:
            for server in servers:
                stop_server(server)
