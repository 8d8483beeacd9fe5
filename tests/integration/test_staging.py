"""Streaming a job's remote inputs: fetched per mini-batch, prefetched within the cache's bound,
deleted when done; local inputs read in place. Against moto's S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.scheduler.staging import InputFiles, StagingError
from sluiceway.storage.datastores import open_backend
from sluiceway.storage.locations import Location
from tests.integration import storage_services as svc

KB = 1024


@pytest.fixture
def remote() -> Location:
    svc.s3_url()
    bucket = svc.make_bucket("stage")
    fs = svc.s3_filesystem()
    for i in range(6):
        fs.pipe(f"{bucket}/in/sub/f{i}.csv", bytes([48 + i]) * (100 * KB))
    config = svc.s3_datastore_yaml("x", bucket)
    credentials = config.pop("credentials")
    settings = {k: config[k] for k in ("bucket", "endpoint_url")}
    backend = open_backend("s3", settings, credentials, svc.loopback_client())
    return Location("s3_ds", "in", backend)


def test_remote_files_stream_through_a_bounded_cache(remote: Location, tmp_path: Path) -> None:
    files = [e.path for e in remote.list_files()]
    batches = [files[0:2], files[2:4], files[4:6]]
    cache = tmp_path / "cache"
    inputs = InputFiles(remote, cache, capacity=400 * KB)
    assert inputs.streamed and inputs.root == cache

    first = inputs.paths(0, batches[0])
    assert [Path(p).read_bytes()[:1] for p in first] == [b"0", b"1"]
    assert all(Path(p).name == f"f{i}.csv" for i, p in enumerate(first))
    assert inputs.prefetch(1, batches[1])  # 200 KB held: room for one more of 200 KB
    inputs.paths(1, batches[1])
    assert inputs.cached_bytes() == 400 * KB
    assert not inputs.prefetch(2, batches[2])  # the cache is full
    inputs.release(0)
    assert not (cache / "000000").exists()
    assert inputs.prefetch(2, batches[2])
    third = inputs.paths(2, batches[2])
    assert Path(third[1]).read_bytes() == b"5" * (100 * KB)
    inputs.close()
    assert not any(cache.rglob("*.csv"))


def test_a_missing_remote_file_is_a_clear_error(remote: Location, tmp_path: Path) -> None:
    inputs = InputFiles(remote, tmp_path / "cache", capacity=1 << 20)
    with pytest.raises(StagingError, match=r"gone\.csv could not be fetched"):
        inputs.paths(0, ["sub/gone.csv"])
    inputs.close()


def test_local_inputs_are_read_in_place(tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "a.csv").write_text("1\n")
    backend = open_backend("local", {"root": str(tmp_path)})
    inputs = InputFiles(Location("ws", "data", backend), tmp_path / "cache", capacity=0)
    assert not inputs.streamed
    assert inputs.paths(0, ["sub/a.csv"]) == (str(tmp_path / "data" / "sub" / "a.csv"),)
    single = InputFiles(Location("ws", "data/sub/a.csv", backend), tmp_path / "c2", capacity=0)
    assert single.paths(0, ["a.csv"]) == (str(tmp_path / "data" / "sub" / "a.csv"),)
    assert not (tmp_path / "cache").exists()


def s3_folder(bucket: str, path: str) -> Location:
    """A folder in a new bucket of the S3 server."""
    svc.s3_url()
    config = svc.s3_datastore_yaml("x", svc.make_bucket(bucket))
    credentials = config.pop("credentials")
    settings = {k: config[k] for k in ("bucket", "endpoint_url")}
    backend = open_backend("s3", settings, credentials, svc.loopback_client())
    return Location("s3_ds", path, backend)


class Datastores:
    """What a job's staging needs of the workspace's datastores: a staging folder."""

    staging_cache_bytes = 1 << 20

    def __init__(self, staging_dir: Path) -> None:
        self.staging_dir = staging_dir


def test_a_remote_jobs_logs_are_uploaded_while_it_runs_and_kept_by_the_next_scheduler(
    tmp_path: Path,
) -> None:
    """Logs of a job whose folder is remote go up every ``LOG_UPLOAD_SECONDS``, not only at
    its end, so a killed scheduler loses only the last seconds; the scheduler that takes the
    job over appends to them (the workers' own files it leaves for its workers to write)."""
    from sluiceway.scheduler.staging import JobStaging

    logs = s3_folder("logs", "azureml/job-1/logs")

    first = JobStaging(Datastores(tmp_path / "machine-a"), "job-1")  # type: ignore[arg-type]
    mirror = first.work_dir(logs)
    (mirror / "sys").mkdir(parents=True)
    (mirror / "sys" / "master_role.txt").write_text("claimed by a\n")
    (mirror / "user" / "stdout").mkdir(parents=True)
    (mirror / "user" / "stdout" / "worker-0.txt").write_text("printed by a\n")
    first.upload_logs(every=3600)  # not due yet
    assert not logs.child("sys/master_role.txt").exists()
    first.upload_logs(every=0)
    assert logs.child("sys/master_role.txt").open_read().read() == b"claimed by a\n"
    # The scheduler is killed here: no close(). Another one, elsewhere, takes the job over.
    second = JobStaging(Datastores(tmp_path / "machine-b"), "job-1")  # type: ignore[arg-type]
    mirror = second.work_dir(logs)
    assert not (mirror / "user" / "stdout" / "worker-0.txt").exists()
    with open(mirror / "sys" / "master_role.txt", "a") as fh:
        fh.write("claimed by b\n")
    second.close()
    assert logs.child("sys/master_role.txt").open_read().read() == b"claimed by a\nclaimed by b\n"
    assert not (tmp_path / "machine-b" / "job-1").exists()


def test_the_scripts_files_are_kept_remotely_and_committed_by_the_scheduler_that_takes_over(
    tmp_path: Path,
) -> None:
    """A remote job folder's staged files (``AZUREML_BI_OUTPUT_PATH``) go up when asked, only
    those new or changed since; a file deleted here goes from there too. A scheduler on another
    machine that takes the job over commits them beside its own, its own winning."""
    from sluiceway.scheduler.commit import OutputCommit
    from sluiceway.scheduler.joblog import JobLog
    from sluiceway.scheduler.staging import JobStaging

    job_folder = s3_folder("kept", "azureml/job-2")
    kept = job_folder.child("staging/score")

    first = JobStaging(Datastores(tmp_path / "machine-a"), "job-2")  # type: ignore[arg-type]
    staged = first.work_dir(kept)
    (staged / "sub").mkdir(parents=True)
    (staged / "a.txt").write_text("a from the first")
    (staged / "sub" / "b.txt").write_text("b from the first")
    (staged / "gone.txt").write_text("deleted later")
    (staged / "link.txt").symlink_to(tmp_path / "secret")
    (tmp_path / "secret").write_text("a server's file")
    assert first.keep(kept) == 3
    assert first.keep(kept) == 0  # nothing changed: nothing uploaded again
    (staged / "gone.txt").unlink()
    (staged / "c.txt").write_text("c from the first")
    assert first.keep(kept) == 1
    assert sorted(e.path for e in kept.list_files()) == ["a.txt", "c.txt", "sub/b.txt"]
    # The scheduler dies here. Another, with a staging folder of its own, takes the job over:
    # its script writes a.txt anew and d.txt.
    second = JobStaging(Datastores(tmp_path / "machine-b"), "job-2")  # type: ignore[arg-type]
    staged = second.work_dir(kept)
    staged.mkdir(parents=True)
    (staged / "a.txt").write_text("a from the second")
    (staged / "d.txt").write_text("d from the second")
    output = Location("s3_ds", "out/score", job_folder.backend)
    commit = OutputCommit(
        job_folder=job_folder,
        output_folder=output,
        staging_dir=staged,
        parts_dir=tmp_path / "parts",
        rows_file=None,
        log=JobLog("job-2", None),
        keep_lease=lambda: None,
        owner="second",
        kept_staging=kept,
    )
    commit.commit([], [])
    committed = {e.path: output.child(e.path).open_read().read() for e in output.list_files()}
    assert committed == {
        "a.txt": b"a from the second",
        "c.txt": b"c from the first",
        "d.txt": b"d from the second",
        "sub/b.txt": b"b from the first",
    }
