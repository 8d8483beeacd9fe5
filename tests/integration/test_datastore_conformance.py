"""The conformance suite every datastore type runs, against the real thing: a local folder,
Azurite for azure_blob and azure_data_lake_gen2, moto's S3 server for s3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluiceway.errors import ValidationError
from sluiceway.storage.datastores import DatastoreBackend, open_backend
from sluiceway.storage.locations import Location
from tests.integration import storage_services as svc

TYPES = ["local", "azure_blob", "azure_data_lake_gen2", "s3"]


@pytest.fixture(params=TYPES)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> DatastoreBackend:
    kind = request.param
    if kind == "local":
        return open_backend("local", {"root": str(tmp_path)})
    if kind == "s3":
        svc.s3_url()
        bucket = svc.make_bucket("conf")
        config = dict(svc.s3_datastore_yaml("x", bucket))
    else:
        svc.azurite_url()
        container = svc.make_container("conf")
        maker = svc.blob_datastore_yaml if kind == "azure_blob" else svc.adls_datastore_yaml
        config = dict(maker("x", container))
    credentials = config.pop("credentials")
    config.pop("type")
    config.pop("name")
    return open_backend(kind, config, credentials, svc.loopback_client())


def at(backend: DatastoreBackend, path: str) -> Location:
    return Location("conf", path, backend)


def write(location: Location, data: bytes, *, overwrite: bool = True) -> int:
    return location.write_stream(iter([data]), overwrite=overwrite)


def read(location: Location) -> bytes:
    return b"".join(location.iter_bytes())


def test_write_read_and_list_recursively(backend: DatastoreBackend) -> None:
    files = {"data/a.csv": b"a,b\n1,2\n", "data/sub/b.csv": b"x\n", "data/sub/deep/c.txt": b""}
    for path, data in files.items():
        assert write(at(backend, path), data) == len(data)
    write(at(backend, "other/z.txt"), b"z")

    listing = at(backend, "data").list_files()
    assert [(e.path, e.size) for e in listing] == [
        ("a.csv", 8),
        ("sub/b.csv", 2),
        ("sub/deep/c.txt", 0),
    ]
    assert read(at(backend, "data/sub/b.csv")) == b"x\n"
    assert [e.path for e in at(backend, "data/a.csv").list_files()] == ["a.csv"]
    assert at(backend, "missing").list_files() == []
    # The paths alone (a job's input), in the same order.
    assert at(backend, "data").list_paths() == [e.path for e in listing]
    assert at(backend, "data/a.csv").list_paths() == ["a.csv"]
    assert at(backend, "missing").list_paths() == []


def test_paths_alone_leave_out_links_out_of_a_local_datastore(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("a\n")
    (root / "data" / "sub" / "b.csv").write_text("b\n")
    (tmp_path / "secret.txt").write_text("s\n")
    (root / "data" / "out-link").symlink_to(tmp_path / "secret.txt")
    (root / "data" / "in-link").symlink_to(root / "data" / "a.csv")
    (root / "data" / "folder-link").symlink_to(root / "data" / "sub", target_is_directory=True)
    data = at(open_backend("local", {"root": str(root)}), "data")

    assert data.list_paths() == ["a.csv", "in-link", "sub/b.csv"]
    assert data.list_paths() == [e.path for e in data.list_files()]


def test_exists_is_dir_is_file(backend: DatastoreBackend) -> None:
    write(at(backend, "f/one.txt"), b"1")
    folder, file, missing = at(backend, "f"), at(backend, "f/one.txt"), at(backend, "f/none")
    assert folder.exists() and folder.is_dir() and not folder.is_file()
    assert file.exists() and file.is_file() and not file.is_dir()
    assert not missing.exists() and not missing.is_file() and not missing.is_dir()
    root = at(backend, "")
    assert root.exists() and root.is_dir()


def test_no_overwrite_keeps_the_first_file(backend: DatastoreBackend) -> None:
    target = at(backend, "out/predictions.csv")
    write(target, b"first\n", overwrite=False)
    with pytest.raises(FileExistsError):
        write(target, b"second\n", overwrite=False)
    assert read(target) == b"first\n"
    write(target, b"replaced\n", overwrite=True)
    assert read(target) == b"replaced\n"
    assert [e.path for e in at(backend, "out").list_files()] == ["predictions.csv"]


def test_racing_writers_never_overwrite(backend: DatastoreBackend) -> None:
    target = at(backend, "race/out.csv")
    outcomes: list[str] = []

    def writer(tag: bytes) -> None:
        try:
            write(target, tag * 1000, overwrite=False)
            outcomes.append("written")
        except FileExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(bytes([65 + i]),)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "written"]
    data = read(target)
    assert len(data) == 1000 and len(set(data)) == 1


def test_large_streamed_write(backend: DatastoreBackend) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB

    def chunks() -> Iterator[bytes]:
        for _ in range(9):  # past one S3 part, so the multipart path runs too
            yield chunk

    target = at(backend, "big/blob.bin")
    assert target.write_stream(chunks(), overwrite=False) == 9 * len(chunk)
    assert target.list_files()[0].size == 9 * len(chunk)
    with pytest.raises(FileExistsError):
        target.write_stream(chunks(), overwrite=False)
    with target.open_read() as fh:
        assert fh.read(len(chunk)) == chunk


def test_paths_cannot_leave_the_root(backend: DatastoreBackend) -> None:
    for path in ("../escape.txt", "a/../../escape.txt", "../../etc/passwd", "a/../c.txt"):
        with pytest.raises(ValidationError, match="leaves the datastore's root"):
            backend.full_path(path)
    for path in ("%2e%2e/escape.txt", "%252e%252e/x", "a\\..\\b", "a\x00b", "C:/x"):
        with pytest.raises(ValidationError, match="is not accepted"):
            backend.full_path(path)
        with pytest.raises(ValidationError, match="is not accepted"):
            backend.write_file(path, iter([b"x"]), overwrite=True)
    assert backend.full_path("/a/./b//c.txt") == backend.full_path("a/b/c.txt")
