"""Local uploads: what is hashed and sent, and that the same content is sent once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sluiceway.errors import ValidationError
from sluiceway.sdk.uploads import HASH_SEED, collect_files, scan

PREFIX = "azureml://datastores/workspaceblobstore/paths/LocalUpload"


def make_folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# -- hashing -----------------------------------------------------------------------------


def test_a_file_hashes_its_bytes_after_azures_seed(tmp_path: Path) -> None:
    path = tmp_path / "heart.csv"
    path.write_bytes(b"age,sex\n63,1\n")
    artifact = scan(path)
    assert artifact.digest == hashlib.md5(HASH_SEED + b"age,sex\n63,1\n").hexdigest()
    assert not artifact.is_folder
    assert artifact.uri == f"{PREFIX}/{artifact.digest}/heart.csv"


def test_a_folder_hashes_relative_paths_and_bytes_in_sorted_order(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", {"b.csv": "2", "a.csv": "1", "sub/c.csv": "3"})
    artifact = scan(folder)
    expected = hashlib.md5(HASH_SEED)
    for relative, text in (("a.csv", "1"), ("b.csv", "2"), ("sub/c.csv", "3")):
        expected.update(relative.encode())
        expected.update(text.encode())
    assert artifact.digest == expected.hexdigest()
    assert [f.relative for f in artifact.files] == ["a.csv", "b.csv", "sub/c.csv"]
    assert artifact.uri == f"{PREFIX}/{artifact.digest}/data/"


def test_same_content_in_another_place_has_the_same_hash(tmp_path: Path) -> None:
    one = make_folder(tmp_path / "one" / "data", {"x.csv": "1", "y/z.csv": "2"})
    # created in another order, elsewhere
    two = make_folder(tmp_path / "two" / "data", {"y/z.csv": "2", "x.csv": "1"})
    assert scan(one).digest == scan(two).digest


def test_renaming_or_changing_a_file_changes_the_hash(tmp_path: Path) -> None:
    base = scan(make_folder(tmp_path / "a", {"x.csv": "1"})).digest
    assert scan(make_folder(tmp_path / "b", {"y.csv": "1"})).digest != base
    assert scan(make_folder(tmp_path / "c", {"x.csv": "2"})).digest != base


def test_hidden_files_pycache_and_ignore_files_are_left_out(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "code",
        {
            "score.py": "def run(b): return b",
            ".env": "SECRET=1",
            ".git/config": "x",
            "__pycache__/score.cpython-311.pyc": "x",
            "sub/__pycache__/a.pyc": "x",
            "notes.tmp": "x",
            "build/out.bin": "x",
            "sub/keep.py": "x",
            ".amlignore": "*.tmp\nbuild/\n# comment\n",
        },
    )
    assert [f.relative for f in collect_files(folder)] == ["score.py", "sub/keep.py"]


def test_gitignore_is_used_when_there_is_no_amlignore(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "code", {"a.py": "", "b.log": "", ".gitignore": "*.log\n"})
    assert [f.relative for f in collect_files(folder)] == ["a.py"]


def test_a_relative_path_is_relative_to_the_base(tmp_path: Path) -> None:
    make_folder(tmp_path / "data", {"a.csv": "1"})
    assert scan("data", base=tmp_path).source == tmp_path / "data"


def test_missing_paths_and_empty_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        scan(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x")
    with pytest.raises(ValidationError, match="no files to upload"):
        scan(tmp_path / "empty")


# -- uploading ---------------------------------------------------------------------------
