"""What a deployment's code runs with: its own user, a scrubbed environment, a narrow view.

A deployment's scoring script, MLflow model or command step is code the server did not write.
Every worker process and command step is started through one :class:`WorkerIsolation`:

- **Environment.** An explicit allow-list (``PATH``, ``LANG``/``LC_*``, ``TZ``, what Python
  reads), ``HOME`` and ``TMPDIR`` in a scratch folder of the worker's own, then the
  deployment's ``environment_variables`` and the ``AZUREML_*`` variables of the contract. No
  ``SLUICEWAY_*`` setting, token or cloud credential of the server reaches it: workers read
  local files only (the scheduler stages remote data), so they need no credentials.
- **User.** When the server runs as root (or an operator names ``SLUICEWAY_WORKER_USER``),
  workers run as another user: ``nobody`` unless configured. The folders a worker writes (its
  scratch, the job's part files, output and stdout logs) are given to that user; the server,
  as root, still reads and commits them.
- **View.** With that user, each worker gets a private mount namespace in which the workspace
  home (``secret.key``, ``token``, ``workspace.db``) is an empty folder, and only the
  interpreter, the packages and the job's data and working folders are bound back (see
  :mod:`sluiceway.runtime.sandbox`). Where mount namespaces are not available, the home is
  made ``0711`` and its secrets ``0600``, so the other user cannot open them either.

The server checks all of this when it starts (:meth:`WorkerIsolation.for_server`): a worker of
the configured user is started, must import Sluiceway and must fail to open every secret.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import sluiceway
from sluiceway.errors import ValidationError
from sluiceway.runtime import sandbox
from sluiceway.runtime.sandbox import NO_NAMESPACE_EXIT, Plan, is_under, traversable

logger = logging.getLogger("sluiceway.executors")

DEFAULT_ROOT_WORKER_USER = "nobody"

ALLOWED_VARIABLES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONUTF8",
        "PYTHONIOENCODING",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
"""Variables of the server's environment a worker gets, besides ``LC_*``."""

_PROBE_TIMEOUT = 60.0
_PROBE = """\
import os, sys
import sluiceway.runtime.worker
readable = []
for path in sys.argv[1:]:
    try:
        with open(path, "rb"):
            readable.append(path)
    except OSError:
        pass
if readable:
    print("the worker could open " + ", ".join(readable), file=sys.stderr)
    sys.exit(3)
"""


@dataclass(frozen=True)
class WorkerUser:
    """The OS user workers run as."""

    name: str
    uid: int
    gid: int

    @classmethod
    def lookup(cls, value: str) -> WorkerUser:
        """A user by name or numeric uid.

        Raises:
            ValidationError: no such user.
        """
        try:
            entry = pwd.getpwuid(int(value)) if value.isdigit() else pwd.getpwnam(value)
        except (KeyError, OverflowError):
            if value.isdigit():
                return cls(value, int(value), int(value))  # a uid with no passwd entry
            raise ValidationError(
                f"SLUICEWAY_WORKER_USER {value!r} is not a user of this system; give a user "
                "name or a numeric uid.",
                target="worker_user",
            ) from None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class WorkerIsolation:
    """How workers are started; see the module's docstring.

    The default (no user, no namespace) scrubs the environment only: workers run as the
    server's user.

    Attributes:
        user: the user workers run as; None: the server's own.
        namespace: whether workers get a private mount namespace.
        hidden: folders workers must not see (the workspace home).
        shared: folders every worker sees besides the interpreter's: the data roots whose
            files jobs read in place and write (the default datastore, the staging folder).
        python: the interpreter workers run.
    """

    user: WorkerUser | None = None
    namespace: bool = False
    hidden: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    python: str = sys.executable

    @classmethod
    def for_server(
        cls,
        *,
        worker_user: str | None,
        home: Path,
        secrets: Sequence[Path],
        shared: Iterable[Path],
    ) -> WorkerIsolation:
        """The isolation a server's workers get, checked by starting one.

        Args:
            worker_user: the ``worker_user`` setting (name or uid), or None.
            home: the workspace home, hidden from workers.
            secrets: files no worker may open (checked at start).
            shared: data folders every worker sees.

        Raises:
            ValidationError: a worker user is configured but the server is not root, the user
                does not exist, or a worker could not start or could open a secret.
        """
        root = os.geteuid() == 0
        if worker_user and not root:
            raise ValidationError(
                f"SLUICEWAY_WORKER_USER is set to {worker_user!r}, but the server runs as uid "
                f"{os.geteuid()}, not root, so it cannot start workers as another user. Start "
                "the server as root, or unset SLUICEWAY_WORKER_USER (workers then run as the "
                "server's user, with a scrubbed environment only).",
                target="worker_user",
            )
        if not root:
            return cls()
        user = WorkerUser.lookup(worker_user or DEFAULT_ROOT_WORKER_USER)
        if user.uid == 0:
            raise ValidationError(
                f"SLUICEWAY_WORKER_USER {worker_user!r} is root; workers must run as another user.",
                target="worker_user",
            )
        hidden = [str(home.resolve())]
        for secret in secrets:
            folder = str(secret.resolve().parent)
            if not any(is_under(folder, h) for h in hidden):
                hidden.append(folder)
        isolation = cls(
            user=user,
            namespace=True,
            hidden=tuple(hidden),
            shared=tuple(str(p.resolve()) for p in shared),
        )
        for path in isolation.shared:
            if path in isolation.hidden:
                raise ValidationError(
                    f"the folder {path} holds the workspace's secrets and cannot be shared "
                    "with workers; choose another staging or datastore folder.",
                    target="staging_dir",
                )
        code, error = isolation._probe(secrets)
        if code == NO_NAMESPACE_EXIT:
            logger.warning(
                "mount namespaces are not available (no CAP_SYS_ADMIN): workers run as %s "
                "and the workspace home is protected by file modes only",
                user.name,
            )
            isolation = replace(isolation, namespace=False)
            _protect_by_modes(home, secrets)
            code, error = isolation._probe(secrets)
        if code != 0:
            raise ValidationError(
                f"workers cannot run as user {user.name} (uid {user.uid}): a test worker "
                f"{error}. The worker user must be able to reach the interpreter "
                f"{isolation.python} and Sluiceway's packages, and must not be able to open "
                "the workspace's secrets.",
                target="worker_user",
            )
        logger.info("workers run %s", isolation.describe())
        return isolation

    def describe(self) -> str:
        """How workers run, for the server's log."""
        if self.user is None:
            return "as the server's user, with a scrubbed environment"
        where = "a private mount namespace" if self.namespace else "file modes"
        return (
            f"as {self.user.name} (uid {self.user.uid}) with a scrubbed environment; the "
            f"workspace home is hidden by {where}"
        )

    @property
    def separate_user(self) -> bool:
        return self.user is not None

    def runtime_paths(self) -> list[str]:
        """The folders the interpreter and Sluiceway's packages live in."""
        paths = {
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            sys.base_exec_prefix,
            os.path.dirname(os.path.realpath(self.python)),
            os.path.dirname(os.path.dirname(os.path.abspath(sluiceway.__file__))),
        }
        # Not the folder the server was started in (``python -m`` puts it on sys.path): it
        # can be anything, and workers are started with -P, without it.
        cwd = os.path.realpath(os.getcwd())
        paths.update(p for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p))
        return sorted({os.path.realpath(p) for p in paths} - {cwd})

    def view(self, paths: Iterable[str | Path]) -> tuple[str, ...] | None:
        """The folders a worker needs ``paths`` and the shared ones (None: it sees all)."""
        if not self.namespace:
            return None
        wanted = set(self.shared)
        for path in paths:
            real = os.path.realpath(path)
            wanted.add(real if os.path.isdir(real) else os.path.dirname(real))
        # As the sandbox does: a folder the worker user cannot enter is not bound back, so it
        # must not count as seen (a spare started with it would not see a job's folder below).
        if self.user is not None:
            uid, gid = self.user.uid, self.user.gid
            wanted = {w for w in wanted if traversable(w, uid, gid)}
        return tuple(sorted(wanted))

    def sees(self, view: tuple[str, ...] | None, paths: Iterable[str | Path]) -> bool:
        """Whether a worker started with ``view`` can reach every one of ``paths``."""
        if view is None:
            return True
        anchors = {**{h: False for h in self.hidden}, **{v: True for v in view}}
        for path in paths:
            real = os.path.realpath(path)
            found = [a for a in anchors if is_under(real, a)]
            if not found or not anchors[max(found, key=len)]:
                return False
        return True

    def plan(self, view: tuple[str, ...] | None) -> Plan | None:
        """What a worker with ``view`` enters; None when it runs as it was started."""
        if self.user is None:
            return None
        return Plan(
            uid=self.user.uid,
            gid=self.user.gid,
            namespace=self.namespace,
            hide=self.hidden,
            show=tuple(sorted({*self.runtime_paths(), *(view or ())})),
        )

    def command(self, argv: Sequence[str], view: tuple[str, ...] | None) -> list[str]:
        """``argv`` started inside the sandbox (a pipeline's command step)."""
        plan = self.plan(view)
        if plan is None:
            return list(argv)
        script = os.path.abspath(sandbox.__file__)
        return [self.python, "-I", "-S", script, plan.to_json(), "--", *argv]

    def environment(
        self, home: str | Path, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """A worker's environment: the allowed variables of the server's, its own ``HOME``
        and ``TMPDIR``, then ``extra`` (the deployment's variables)."""
        env = {
            name: value
            for name, value in os.environ.items()
            if name in ALLOWED_VARIABLES or name.startswith("LC_")
        }
        env.setdefault("PATH", os.defpath)
        env["HOME"] = str(home)
        env["TMPDIR"] = str(home)
        env.update(extra or {})
        return env

    def scratch(self, parent: Path | None, prefix: str) -> Path:
        """A new folder only the worker's user can use (its ``HOME``)."""
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        self.give(folder)
        return folder

    def give(self, *folders: str | Path, recursive: bool = False) -> None:
        """Make ``folders`` (created if missing) the worker user's, to write into."""
        for folder in folders:
            path = Path(folder)
            path.mkdir(parents=True, exist_ok=True)
            if self.user is None:
                continue
            os.chown(path, self.user.uid, self.user.gid)
            if recursive:
                for root, dirs, files in os.walk(path):
                    for name in [*dirs, *files]:
                        os.chown(
                            os.path.join(root, name),
                            self.user.uid,
                            self.user.gid,
                            follow_symlinks=False,
                        )

    def open_to_workers(self, folder: Path) -> None:
        """Let the worker user traverse and read ``folder`` (made by the server)."""
        if self.user is not None:
            os.chmod(folder, 0o755)

    def _probe(self, secrets: Sequence[Path]) -> tuple[int, str]:
        """Start a worker that imports Sluiceway and tries to open ``secrets``; its exit
        status and what went wrong."""
        home = Path(tempfile.mkdtemp(prefix="sluiceway-probe-"))
        try:
            self.open_to_workers(home)
            self.give(home)
            argv = self.command(
                [self.python, "-c", _PROBE, *(str(s) for s in secrets)], self.view([home])
            )
            try:
                done = subprocess.run(
                    argv,
                    env=self.environment(home),
                    cwd=home,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=_PROBE_TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return 1, f"could not start: {exc}"
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            return done.returncode, (
                f"exited with status {done.returncode}: {lines[-1] if lines else 'no output'}"
            )
        finally:
            shutil.rmtree(home, ignore_errors=True)


def _protect_by_modes(home: Path, secrets: Sequence[Path]) -> None:
    """Without a mount namespace: the home can be traversed but not listed, secrets are the
    server's alone."""
    os.chmod(home, 0o711)
    for secret in secrets:
        if secret.exists():
            os.chmod(secret, 0o600)


__all__ = [
    "ALLOWED_VARIABLES",
    "DEFAULT_ROOT_WORKER_USER",
    "WorkerIsolation",
    "WorkerUser",
]
