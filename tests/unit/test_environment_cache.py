"""The environment cache: real uv builds from a local wheel, offline."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from sluiceway.environments.cache import (
    BuildFailed,
    BuildStatus,
    EnvironmentCache,
    JobEnvironments,
)
from sluiceway.environments.spec import EnvironmentContent


def make_wheel(folder: Path, name: str, version: str = "0.1", body: str = "") -> Path:
    """A pure-Python wheel of one module ``name`` (no build backend or network needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": body or f"VALUE = {name!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def _local(uri: str, _folder: Path) -> Path:
    return Path(uri.removeprefix("azureml://local"))


def _content(wheel: Path, **changes: object) -> EnvironmentContent:
    fields: dict[str, object] = {"pip": (f"azureml://local{wheel}",), **changes}
    return EnvironmentContent(**fields)  # type: ignore[arg-type]


def test_a_wheel_is_built_into_an_environment_with_the_runtime(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "tokenizer_for_test")
    cache = EnvironmentCache(tmp_path / "cache", offline=True)
    content = _content(wheel, image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest")
    with cache.use(content, _local) as interpreter:
        done = subprocess.run(
            [
                interpreter.executable,
                "-P",
                "-c",
                "import tokenizer_for_test, sluiceway.runtime."
                "worker, sys; print(tokenizer_for_test.VALUE); import pydantic",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.stdout.strip() == "tokenizer_for_test"
    # The runtime is there, the server's dependencies are not.
    assert "No module named 'pydantic'" in done.stderr
    assert cache.state(content.content_hash()).status is BuildStatus.READY
    log = cache.log(content.content_hash())
    assert "is recorded and not run" in log and "Build succeeded" in log


def test_concurrent_users_build_once(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "shared_pkg")
    cache = EnvironmentCache(tmp_path / "cache", offline=True)
    content = _content(wheel)
    seen: list[str] = []

    def use() -> None:
        with cache.use(content, _local) as interpreter:
            seen.append(interpreter.executable)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and len(seen) == 3
    assert cache.log(content.content_hash()).count("Build succeeded") == 1
    # Another cache object (another server process) finds it built.
    other = EnvironmentCache(tmp_path / "cache", offline=True)
    assert other.build(content, _local).status is BuildStatus.READY
    assert other.log(content.content_hash()).count("Build succeeded") == 1


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (EnvironmentContent(conda=("numpy=1.26", "not-a-conda-pkg")), "'not-a-conda-pkg'"),
        (EnvironmentContent(python="3.7"), "python=3.7 is asked for"),
        (EnvironmentContent(pip=("no-such-package-for-sluiceway==1.0",)), "no-such-package"),
    ],
)
def test_a_failed_build_says_why(tmp_path: Path, content: EnvironmentContent, cause: str) -> None:
    cache = EnvironmentCache(tmp_path / "cache", offline=True)
    with pytest.raises(BuildFailed) as caught, cache.use(content, _local):
        pass
    assert cause in caught.value.tail
    assert cache.state(content.content_hash()).status is BuildStatus.FAILED


def test_unused_environments_are_evicted_beyond_the_limit(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache", offline=True, max_bytes=10**12)
    first = _content(make_wheel(tmp_path / "w", "first_pkg"))
    second = _content(make_wheel(tmp_path / "w", "second_pkg"))
    kept = _content(make_wheel(tmp_path / "w", "kept_pkg"))
    for content in (kept, first, second):
        cache.build(content, _local)
    cache.in_use = lambda: {kept.content_hash()}
    cache.max_bytes = 1
    with cache.use(second, _local):  # in use by a job: not evicted either
        removed = cache.evict_over_limit()
    assert removed == [first.content_hash()]
    assert cache.state(kept.content_hash()).status is BuildStatus.READY
    assert cache.state(first.content_hash()).status is BuildStatus.ABSENT


def test_a_failed_build_runs_again_once_forgotten(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "flaky_pkg")
    cache = EnvironmentCache(tmp_path / "cache", offline=True)
    content = _content(wheel)
    calls: list[str] = []

    def flaky(uri: str, folder: Path) -> Path:
        calls.append(uri)
        if len(calls) == 1:
            raise OSError("the datastore did not answer")
        return _local(uri, folder)

    assert cache.build(content, flaky).status is BuildStatus.FAILED
    assert "the datastore did not answer" in cache.state(content.content_hash()).log_tail
    assert cache.build(content, flaky).status is BuildStatus.FAILED  # kept, not retried
    cache.forget_failure(content.content_hash())
    assert cache.build(content, flaky).status is BuildStatus.READY
    assert len(calls) == 2


def test_a_ray_node_build_puts_the_nodes_packages_behind_its_own(tmp_path: Path) -> None:
    """The build a Ray node makes (``behind``): the environment's packages first, the packages
    of the Python Ray runs in behind them (an actor needs Ray), and no other interpreter."""
    import site

    shadowed = make_wheel(tmp_path / "wheels", "pytest", body="VALUE = 'the environment'\n")
    cache = EnvironmentCache(tmp_path / "node", offline=True, behind=tuple(site.getsitepackages()))
    content = _content(shadowed)
    state = cache.build(content, _local)
    assert state.status is BuildStatus.READY, cache.log(content.content_hash())
    assert state.python is not None
    done = subprocess.run(
        [state.python, "-c", "import pytest, ray; print(pytest.VALUE, ray.__name__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.split() == ["the", "environment", "ray"], done.stderr
    assert "this Ray node's interpreter" in cache.log(content.content_hash())
    assert not (tmp_path / "node" / "runtime").exists()  # the actors' PYTHONPATH has it

    other = EnvironmentContent(python="3.9")
    assert cache.build(other, _local).status is BuildStatus.FAILED
    assert "the actors of a Ray cluster run the cluster's Python" in cache.log(other.content_hash())


def test_what_a_ray_node_imports_needs_none_of_the_servers_dependencies() -> None:
    """The actors' and node builds' modules, shipped to the nodes as py_modules: standard
    library and fsspec only."""
    code = (
        "import sys; import sluiceway.runtime.ray_actor, sluiceway.executors.ray_environments, "
        "sluiceway.storage.datastores.s3, sluiceway.storage.datastores.azure_blob; "
        "print(sorted({m.split('.')[0] for m in sys.modules if not m.startswith('__')}"
        " - set(sys.stdlib_module_names)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['fsspec', 'sluiceway']", done.stdout


def test_jobs_start_builds_off_their_thread_and_share_one(tmp_path: Path) -> None:
    """What a job or pipeline step waits on while it keeps its lease: a future; two jobs that
    need the same environment at once get one build."""
    wheel = make_wheel(tmp_path / "wheels", "job_pkg")
    jobs = JobEnvironments(EnvironmentCache(tmp_path / "cache", offline=True), _local)
    content = _content(wheel).to_json()
    first, second = jobs.start(content), jobs.start(content)
    assert first.result(timeout=120).status is second.result(timeout=120).status
    assert first.result().status is BuildStatus.READY
    built = EnvironmentContent.from_json(content).content_hash()
    assert jobs.cache.log(built).count("Build succeeded") == 1
    with jobs.use(content) as interpreter:
        assert interpreter.environment == built
