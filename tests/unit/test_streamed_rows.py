"""Joining a job's parts into its rows file while the job runs: in input order, once every
mini-batch before a part has ended for good, and never over an existing file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.runtime.parts import write_part
from sluiceway.scheduler.commit import StreamedRows


def streamed(tmp_path: Path, order: list[int]) -> StreamedRows:
    (tmp_path / "out").mkdir(exist_ok=True)
    return StreamedRows(tmp_path / "out", "rows.txt", "job-1", tmp_path / "parts", order)


def test_parts_are_joined_in_input_order_whatever_order_they_end_in(tmp_path: Path) -> None:
    for index in range(4):
        write_part(str(tmp_path / "parts"), index, f"rows of {index}\n".encode())
    rows = streamed(tmp_path, [0, 1, 2, 3])

    rows.ended(2, True)
    rows.ended(1, False)  # failed for good: nothing of it
    rows.ended(0, True)
    size = rows.publish([0, 2, 3])  # 3 had not been reported: the commit's list counts

    assert (tmp_path / "out" / "rows.txt").read_text() == "rows of 0\nrows of 2\nrows of 3\n"
    assert size == len("rows of 0\nrows of 2\nrows of 3\n")
    assert not rows.temporary.exists()


def test_an_existing_rows_file_is_never_overwritten(tmp_path: Path) -> None:
    write_part(str(tmp_path / "parts"), 0, b"new\n")
    rows = streamed(tmp_path, [0])
    (tmp_path / "out" / "rows.txt").write_text("old\n")

    rows.ended(0, True)
    with pytest.raises(FileExistsError):
        rows.publish([0])

    assert (tmp_path / "out" / "rows.txt").read_text() == "old\n"
    assert not rows.temporary.exists()


def test_a_part_that_cannot_be_read_leaves_the_join_to_the_commit(tmp_path: Path) -> None:
    write_part(str(tmp_path / "parts"), 0, b"zero\n")
    rows = streamed(tmp_path, [0, 1])
    rows.ended(0, True)
    rows.ended(1, True)  # no part 1 on disk

    assert rows.publish([0, 1]) is None
    assert not (tmp_path / "out" / "rows.txt").exists()
    assert not rows.temporary.exists()


def test_a_link_left_as_a_part_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("server secret\n")
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "000000.part").symlink_to(secret)
    rows = streamed(tmp_path, [0])
    rows.ended(0, True)

    assert rows.publish([0]) is None


def test_discard_removes_the_hidden_file(tmp_path: Path) -> None:
    write_part(str(tmp_path / "parts"), 0, b"zero\n")
    rows = streamed(tmp_path, [0, 1])
    rows.ended(0, True)
    rows.discard()

    assert list((tmp_path / "out").iterdir()) == []
