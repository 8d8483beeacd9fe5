"""The build cache: each environment's virtual environment, built once with uv, by content hash.

``<root>/<hash>/`` holds ``venv/`` (the virtual environment), ``build.log`` and, once the
build ended, ``state.json`` (``ready`` or ``failed``). A build holds an exclusive ``flock`` on
``<root>/locks/<hash>.lock``, so two jobs (threads or server processes) that need the same
environment at once build it once: the second waits for the lock and finds it ready. A job
that runs in an environment holds a shared lock on it while it runs, so eviction (which takes
the exclusive lock without waiting) never removes an environment in use.

**Runtime code.** Workers run ``python -m sluiceway.runtime.launch`` with the environment's
interpreter. The runtime imports only the standard library, so the environment does not get
the ``sluiceway`` package and its dependencies (pydantic, httpx, ...: they could clash with
the environment's own pins). A ``.pth`` file in its ``site-packages`` puts ``<root>/runtime``
on ``sys.path``, a folder holding only a link to the server's ``sluiceway`` package.

**Files.** uv installs with ``--link-mode copy``: files hard-linked from uv's cache would share
their inode, so making them readable by the worker user would change the cache's files too.
The venv is then made readable by every user (workers run as another user).

The cache is bounded (``max_bytes``): after a build, environments that no deployment uses
(:meth:`EnvironmentCache.evict`'s ``in_use``) are removed, least recently used first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO

import sluiceway
from sluiceway.environments.spec import EnvironmentContent, TranslationError, translate
from sluiceway.environments.uv import Python, find_uv, installed_pythons
from sluiceway.executors.base import Interpreter

logger = logging.getLogger("sluiceway.environments")

DEFAULT_MAX_BYTES = 20 << 30
BUILD_TIMEOUT = 1800.0
LOG_TAIL_LINES = 25
MIN_PYTHON = (3, 11)  # what the runtime code needs
_PTH = "_sluiceway_runtime.pth"


class BuildStatus(StrEnum):
    ABSENT = "NotStarted"  # never built (or evicted)
    BUILDING = "Building"
    READY = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class BuildState:
    """An environment's build as the cache knows it."""

    content_hash: str
    status: BuildStatus
    log_tail: str = ""
    python: str | None = None  # the interpreter's path once ready


class BuildFailed(Exception):
    """The build of an environment failed; the message is the cause and the log's tail."""

    def __init__(self, content_hash: str, tail: str) -> None:
        super().__init__(f"the build of environment {content_hash} failed:\n{tail}")
        self.content_hash = content_hash
        self.tail = tail


FileResolver = Callable[[str, Path], Path]
"""Gives the local file of an uploaded wheel's URI (the second argument: a folder to put it in)."""


class EnvironmentCache:
    """Builds environments into ``root`` and finds them there; see the module's docstring.

    Args:
        root: the cache folder (in the workspace home; workers get only their environment).
        uv: the command that runs uv; default: :func:`find_uv`.
        max_bytes: the size above which unused environments are evicted.
        offline: build with ``--offline`` (no package index; local wheels and uv's cache).
        server_python: the interpreter used when an environment does not say which, or asks
            for the server's version.
        in_use: the content hashes deployments use now, never evicted.
        behind: for a build on a Ray node (see :mod:`~sluiceway.executors.ray_environments`):
            the site-packages folders of the Python Ray runs in there, put behind the
            environment's own packages (an actor process needs Ray). The interpreter is then
            that Python and no other (a Ray cluster runs one Python version), and the runtime
            code comes from the actors' ``PYTHONPATH`` (Ray's ``py_modules``), not a link.
    """

    def __init__(
        self,
        root: Path,
        *,
        uv: list[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        offline: bool = False,
        server_python: str | None = None,
        in_use: Callable[[], Collection[str]] | None = None,
        behind: tuple[str, ...] | None = None,
    ) -> None:
        self.in_use: Callable[[], Collection[str]] = in_use or (lambda: ())
        self.root = root
        self._uv = uv
        self.max_bytes = max_bytes
        self.offline = offline
        self._server_python = server_python or _base_executable()
        self._behind = behind
        self._threads = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        root.mkdir(parents=True, exist_ok=True)
        (root / "locks").mkdir(exist_ok=True)
        os.chmod(root, 0o755)
        self._runtime = self._link_runtime() if behind is None else None

    # -- what is there ----------------------------------------------------------------------

    def folder(self, content_hash: str) -> Path:
        return self.root / content_hash

    def state(self, content_hash: str) -> BuildState:
        """Where the build of ``content_hash`` is, without waiting."""
        recorded = self._recorded(content_hash)
        if recorded is not None:
            return recorded
        with self._lock_file(content_hash) as file:
            try:
                fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return BuildState(content_hash, BuildStatus.BUILDING, self._tail(content_hash))
        recorded = self._recorded(content_hash)  # it may have ended meanwhile
        return recorded or BuildState(content_hash, BuildStatus.ABSENT)

    def log(self, content_hash: str) -> str:
        """The whole build log; empty if there is none."""
        try:
            return (self.folder(content_hash) / "build.log").read_text(errors="replace")
        except OSError:
            return ""

    # -- building ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def use(self, content: EnvironmentContent, files: FileResolver) -> Iterator[Interpreter]:
        """The environment's interpreter, built first if it is not (waiting for a build of the
        same content under way), held so that it is not evicted while the block runs.

        Raises:
            BuildFailed: the build failed, now or before (:meth:`forget_failure` to retry).
        """
        content_hash = content.content_hash()
        with self._lock_file(content_hash) as file:
            while True:
                fcntl.flock(file, fcntl.LOCK_SH)
                state = self._recorded(content_hash)
                if state is not None:
                    break
                fcntl.flock(file, fcntl.LOCK_UN)
                self.build(content, files)
            if state.status is BuildStatus.FAILED:
                raise BuildFailed(content_hash, state.log_tail)
            (self.folder(content_hash) / "state.json").touch()  # when it was last used
            yield self._interpreter(content_hash)

    def build(self, content: EnvironmentContent, files: FileResolver) -> BuildState:
        """Build the environment unless it is built (or failed) already; its state."""
        content_hash = content.content_hash()
        # Without the lock first: jobs hold it shared while they run in the environment.
        done = self._recorded(content_hash)
        if done is not None:
            return done
        with self._thread_lock(content_hash), self._lock_file(content_hash) as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            recorded = self._recorded(content_hash)
            if recorded is not None:
                return recorded
            started = time.monotonic()
            folder = self.folder(content_hash)
            shutil.rmtree(folder / "venv", ignore_errors=True)  # a build that was cut short
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "build.log", "w", encoding="utf-8") as log:
                ok = self._build(content, files, folder, log)
                took = time.monotonic() - started
                log.write(f"\nBuild {'succeeded' if ok else 'failed'} in {took:.1f} s.\n")
            state = {"status": (BuildStatus.READY if ok else BuildStatus.FAILED).value}
            _write_json(folder / "state.json", state)
            _open_to_all(folder)
            logger.info(
                "environment %s: build %s in %.1f s",
                content_hash,
                "succeeded" if ok else "failed",
                took,
            )
        if ok:
            self.evict_over_limit()
        return self.state(content_hash)

    def forget_failure(self, content_hash: str) -> None:
        """Let a failed build run again (a deployment created again with the same content).
        Never waits for a build under way (the API calls it)."""
        recorded = self._recorded(content_hash)
        if recorded is None or recorded.status is not BuildStatus.FAILED:
            return  # nothing failed: building, built, or not started
        with self._lock_file(content_hash) as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            recorded = self._recorded(content_hash)
            if recorded is not None and recorded.status is BuildStatus.FAILED:
                (self.folder(content_hash) / "state.json").unlink(missing_ok=True)

    # -- eviction ---------------------------------------------------------------------------

    def evict_over_limit(self) -> list[str]:
        """Remove environments no deployment uses, least recently used first, until the cache
        is within ``max_bytes``; the hashes removed."""
        sizes = {f.name: _tree_size(f) for f in self.root.iterdir() if _is_hash_folder(f)}
        total = sum(sizes.values())
        if total <= self.max_bytes:
            return []
        keep = set(self.in_use())
        removed = []
        for name in sorted(sizes, key=self._last_used):
            if total <= self.max_bytes:
                break
            if name in keep or not self._remove(name):
                continue
            total -= sizes[name]
            removed.append(name)
        if removed:
            logger.info("environment cache: evicted %s", ", ".join(removed))
        return removed

    def _remove(self, content_hash: str) -> bool:
        with self._lock_file(content_hash) as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # being built or used
            shutil.rmtree(self.folder(content_hash), ignore_errors=True)
            return True

    def _last_used(self, content_hash: str) -> float:
        try:
            return (self.folder(content_hash) / "state.json").stat().st_mtime
        except OSError:
            return 0.0

    # -- inside -----------------------------------------------------------------------------

    def _build(
        self, content: EnvironmentContent, files: FileResolver, folder: Path, log: IO[str]
    ) -> bool:
        def say(text: str) -> None:
            log.write(text.rstrip("\n") + "\n")
            log.flush()

        say(f"Environment {content.content_hash()}")
        where = "the server's machine" if self._behind is None else "this Ray node"
        if content.image:
            say(
                f"image {content.image!r} is recorded and not run: Sluiceway runs no "
                f"containers, so the environment is a virtual environment on {where}."
            )
        try:
            conda_lines, notes = translate(content.conda)
        except TranslationError as exc:
            say(f"ERROR: {exc}")
            return False
        for note in notes:
            say(f"note: {note}")
        try:
            uv = self._uv or find_uv()
        except Exception as exc:
            say(f"ERROR: {exc}")
            return False
        python = self._choose_python(content.python, uv, say)
        if python is None:
            return False
        venv = folder / "venv"
        if not self._run(
            [*uv, "venv", "--python", python, "--no-python-downloads", str(venv)], say
        ):
            return False
        requirements = list(conda_lines)
        wheels = folder / "wheels"
        for line in content.pip:
            if line in content.uploaded_files():
                try:
                    requirements.append(str(files(line, wheels)))
                except Exception as exc:
                    say(f"ERROR: the uploaded wheel {line} cannot be read: {exc}")
                    return False
            else:
                requirements.append(line)
        if requirements:
            say("Installing: " + " ".join(requirements))
            install = [*uv, "pip", "install", "--python", str(venv / "bin" / "python")]
            install += ["--link-mode", "copy", "--no-python-downloads"]
            if self.offline:
                install.append("--offline")
            if not self._run([*install, *requirements], say):
                return False
        shutil.rmtree(wheels, ignore_errors=True)
        if self._behind is None:
            lines, modules = [str(self._runtime)], "sluiceway.runtime.worker"
        else:  # after the environment's own site-packages: its packages come first
            lines = [f"import site; site.addsitedir({folder!r})" for folder in self._behind]
            modules = "ray, sluiceway.runtime.ray_actor"
        for site in (venv / "lib").glob("python3*/site-packages"):
            (site / _PTH).write_text("\n".join(lines) + "\n")
        check = [str(venv / "bin" / "python"), "-c", f"import {modules}"]
        if self._run(check, say, show=False):
            return True
        return _said(say, f"ERROR: {modules} did not import with the environment's packages")

    def _choose_python(
        self, wanted: str | None, uv: list[str], say: Callable[[str], None]
    ) -> str | None:
        server_version = ".".join(str(v) for v in sys.version_info[:3])
        if wanted is None or python_matches(server_version, wanted):
            whose = "the server's" if self._behind is None else "this Ray node's"
            say(f"Python {server_version}: {whose} interpreter, {self._server_python}")
            return self._server_python
        if self._behind is not None:
            say(
                f"ERROR: python={wanted} is asked for, and the actors of a Ray cluster run the "
                f"cluster's Python, {server_version} on this node, and no other (Ray runs a "
                f"cluster's workers on one Python version). Ask for python="
                f"{'.'.join(server_version.split('.')[:2])}, or leave python out."
            )
            return None
        found: list[Python] = installed_pythons(uv)
        usable = [p for p in found if python_matches(p.version, wanted)]
        have = ", ".join(sorted({p.version for p in found})) or "none found"
        if not usable:
            say(
                f"ERROR: python={wanted} is asked for, and this machine has no such "
                f"interpreter. It has: {have}. Ask for one of those."
            )
            return None
        chosen = usable[-1]
        if tuple(int(v) for v in chosen.version.split(".")[:2]) < MIN_PYTHON:
            say(
                f"ERROR: python={wanted}: Sluiceway's worker needs Python "
                f"{'.'.join(map(str, MIN_PYTHON))} or newer. This machine has: {have}."
            )
            return None
        say(f"Python {chosen.version}: {chosen.path}")
        return chosen.version

    def _run(self, argv: list[str], say: Callable[[str], None], *, show: bool = True) -> bool:
        if show:
            say("$ " + " ".join(argv))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEWAY_")}
        try:
            done = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"ERROR: {argv[0]} could not run: {exc}")
            return False
        output = done.stdout.decode(errors="replace")
        if output.strip():
            say(output)
        if done.returncode != 0:
            say(f"ERROR: exit status {done.returncode}")
        return done.returncode == 0

    def _interpreter(self, content_hash: str) -> Interpreter:
        venv = self.folder(content_hash) / "venv"
        paths = [str(venv), *([str(self._runtime)] if self._runtime is not None else [])]
        home = _pyvenv_home(venv)
        if home is not None:
            paths.append(str(Path(home).resolve().parent))  # the base interpreter's prefix
        return Interpreter(str(venv / "bin" / "python"), tuple(paths), content_hash)

    def _recorded(self, content_hash: str) -> BuildState | None:
        try:
            data = json.loads((self.folder(content_hash) / "state.json").read_text())
            status = BuildStatus(data["status"])
        except (OSError, ValueError, KeyError):
            return None
        python = None
        if status is BuildStatus.READY:
            python = str(self.folder(content_hash) / "venv" / "bin" / "python")
        tail = "" if status is BuildStatus.READY else self._tail(content_hash)
        return BuildState(content_hash, status, tail, python)

    def _tail(self, content_hash: str) -> str:
        return "\n".join(self.log(content_hash).splitlines()[-LOG_TAIL_LINES:])

    @contextlib.contextmanager
    def _lock_file(self, content_hash: str) -> Iterator[IO[bytes]]:
        with open(self.root / "locks" / f"{content_hash}.lock", "ab") as file:
            yield file

    @contextlib.contextmanager
    def _thread_lock(self, content_hash: str) -> Iterator[None]:
        # flock is per open file: threads of one process are kept apart by a lock of their own.
        with self._threads:
            lock = self._locks.setdefault(content_hash, threading.Lock())
        with lock:
            yield

    def _link_runtime(self) -> Path:
        """``<root>/runtime/sluiceway``: a link to this server's package, and nothing else."""
        runtime = self.root / "runtime"
        runtime.mkdir(exist_ok=True)
        os.chmod(runtime, 0o755)
        package = os.path.dirname(os.path.abspath(sluiceway.__file__))
        link = runtime / "sluiceway"
        if not link.is_symlink() or os.readlink(link) != package:
            temporary = runtime / f".sluiceway-{os.getpid()}"
            temporary.unlink(missing_ok=True)
            os.symlink(package, temporary, target_is_directory=True)
            os.replace(temporary, link)
        return runtime


@dataclass(frozen=True)
class JobEnvironments:
    """What the scheduler needs to run a job in the environment its spec pinned."""

    cache: EnvironmentCache
    files: FileResolver
    builds: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="job-environment")
    )

    def start(self, content: Mapping[str, object]) -> Future[BuildState]:
        """Build the environment with ``content`` on a thread of its own, unless it is built:
        the caller waits for it without being held (a job keeps its lease, a pipeline runs its
        other steps). Jobs that need it at once build it once (the cache's locks)."""
        return self.builds.submit(
            self.cache.build, EnvironmentContent.from_json(content), self.files
        )

    def use(self, content: Mapping[str, object]) -> contextlib.AbstractContextManager[Interpreter]:
        """The interpreter of the environment with ``content`` (a job spec's ``environment``),
        built first if it is not, held while the block runs.

        Raises:
            BuildFailed: its build failed.
        """
        return self.cache.use(EnvironmentContent.from_json(content), self.files)


def _said(say: Callable[[str], None], text: str) -> bool:
    say(text)
    return False


def python_matches(version: str, wanted: str) -> bool:
    """Whether Python ``version`` (3.11.7) is what ``python=wanted`` (3.11, 3.11.7) asks for."""
    have, want = version.split("."), wanted.split(".")
    return have[: len(want)] == want


def _base_executable() -> str:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


def _pyvenv_home(venv: Path) -> str | None:
    try:
        for line in (venv / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return value.strip()
    except OSError:
        pass
    return None


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def _open_to_all(folder: Path) -> None:
    """Folders traversable and files readable by every user (workers run as another one)."""
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                extra = stat.S_IROTH | stat.S_IRGRP
                if st.st_mode & stat.S_IXUSR:
                    extra |= stat.S_IXOTH | stat.S_IXGRP
                os.chmod(path, stat.S_IMODE(st.st_mode) | extra)
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)


def _is_hash_folder(path: Path) -> bool:
    return (
        path.is_dir() and len(path.name) == 32 and all(c in "0123456789abcdef" for c in path.name)
    )


def _tree_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


__all__ = [
    "DEFAULT_MAX_BYTES",
    "BuildFailed",
    "BuildState",
    "BuildStatus",
    "EnvironmentCache",
    "FileResolver",
    "JobEnvironments",
    "installed_pythons",
    "python_matches",
]
