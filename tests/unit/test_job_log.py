"""A job's log lines held in a block are written when it ends, one write per file, in order and
redacted as lines written one by one are."""

from __future__ import annotations

from pathlib import Path

from sluiceway.scheduler.joblog import SCHEDULER_RECORD, JobLog

SAS = "sig=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG%3D"


def test_held_lines_are_written_when_the_block_ends(tmp_path: Path) -> None:
    log = JobLog("job-1", tmp_path)
    record = tmp_path / SCHEDULER_RECORD
    log.scheduler("before")
    with log.held():
        log.scheduler("one")
        with log.held():  # an inner block leaves the writing to the outer one
            log.scheduler(f"two https://acct.blob.core.windows.net/c/f?{SAS}")
        log.overview("three")
        assert record.read_text().count("\n") == 1  # only "before" so far
    lines = record.read_text().splitlines()

    assert [line.split(" ", 2)[2].split(" https")[0] for line in lines] == [
        "before",
        "one",
        "two",
        "three",
    ]
    assert SAS not in record.read_text()
    assert (tmp_path / "job_progress_overview.txt").read_text().endswith(" three\n")


def test_lines_held_when_the_block_raises_are_written(tmp_path: Path) -> None:
    log = JobLog("job-1", tmp_path)
    try:
        with log.held():
            log.scheduler("kept")
            raise RuntimeError("the loop stopped")
    except RuntimeError:
        pass
    assert (tmp_path / SCHEDULER_RECORD).read_text().endswith(" kept\n")
