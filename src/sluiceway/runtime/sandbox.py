"""Entering a worker's sandbox: run from the worker process itself, before any deployment code.

A worker starts as the server's user with the environment the server chose for it (already
scrubbed). :func:`enter` then, as the plan says:

1. gives the process a private mount namespace and puts an empty ``tmpfs`` over each hidden
   folder (the workspace home: ``secret.key``, ``token``, ``workspace.db``) and over every
   folder on the way to what the worker needs that the worker's user could not traverse (the
   server's ``/root``, a ``0700`` temporary folder); it then bind-mounts back only the folders
   the worker needs: the interpreter and its packages, the job's data and working folders;
2. drops to the worker's user and group (no supplementary groups, no new privileges).

The mounts are made with ``mount(2)`` through ctypes before the user changes, while the
process is still single-threaded, so nothing of the deployment runs before the sandbox is in
place. The module imports nothing but the standard library: it also runs as a script,
``python -I -S sandbox.py <plan> -- <program> <args>``, which enters the sandbox and then
``exec`` s the program (a pipeline's command step), which is killed when the scheduler that
started it dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass

NO_NAMESPACE_EXIT = 97
"""Exit status of the script when mount namespaces are not available (no CAP_SYS_ADMIN)."""

_CLONE_NEWNS = 0x00020000
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_PDEATHSIG = 1


class SandboxError(Exception):
    """The sandbox could not be entered; the message says which step failed."""


class NoNamespaceError(SandboxError):
    """Mount namespaces are not available to this process."""


@dataclass(frozen=True)
class Plan:
    """What :func:`enter` does; made by the server, sent as JSON.

    Attributes:
        uid: the user to become; None keeps the server's user.
        gid: the group to become (with ``uid``).
        namespace: whether to make a private mount namespace with ``hide`` and ``show``.
        hide: folders covered by an empty tmpfs.
        show: folders the worker needs; bound back where a covered folder hides them.
    """

    uid: int | None = None
    gid: int | None = None
    namespace: bool = False
    hide: tuple[str, ...] = ()
    show: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "uid": self.uid,
                "gid": self.gid,
                "namespace": self.namespace,
                "hide": list(self.hide),
                "show": list(self.show),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        return cls(
            uid=data.get("uid"),
            gid=data.get("gid"),
            namespace=bool(data.get("namespace")),
            hide=tuple(data.get("hide") or ()),
            show=tuple(data.get("show") or ()),
        )


def enter(plan: Plan) -> None:
    """Enter the sandbox ``plan`` describes; see the module's docstring.

    Raises:
        NoNamespaceError: a mount namespace was asked for and cannot be made.
        SandboxError: a mount or the change of user failed.
    """
    if plan.namespace:
        uid = plan.uid if plan.uid is not None else os.getuid()
        gid = plan.gid if plan.gid is not None else os.getgid()
        _isolate_mounts(plan.hide, plan.show, uid, gid)
    if plan.uid is not None:
        gid = plan.gid if plan.gid is not None else plan.uid
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(plan.uid, plan.uid, plan.uid)
        except OSError as exc:
            raise SandboxError(f"cannot become uid {plan.uid} gid {gid}: {exc}") from None
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {_errno_text()}")


def is_under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or inside it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _isolate_mounts(hide: Iterable[str], show: Iterable[str], uid: int, gid: int) -> None:
    hidden = sorted({os.path.realpath(h) for h in hide if os.path.isdir(h)})
    shown = sorted({os.path.realpath(s) for s in show if os.path.isdir(s)})
    for path in shown:
        if path in hidden:
            raise SandboxError(f"{path} is both hidden and needed by the worker")
    # A folder the user cannot enter is of no use bound back, and would block what is below.
    shown = [s for s in shown if traversable(s, uid, gid)]
    covers = set(hidden)
    for path in shown:
        covers.update(a for a in _ancestors(path) if not traversable(a, uid, gid))
    anchors = covers | set(shown)
    # A needed folder is bound back when a cover hides it, unless a needed folder between
    # them already brings it back.
    binds = [s for s in shown if _nearest_anchor(s, anchors) in covers]

    libc = _libc()
    if libc.unshare(_CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise NoNamespaceError(f"unshare(CLONE_NEWNS) failed: {os.strerror(err)}")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE, None)
    # Opened in the new namespace (a bind's source must be one of its mounts), before any
    # cover hides them.
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in binds}
    steps = sorted(
        [(_depth(c), 0, c) for c in covers] + [(_depth(b), 1, b) for b in binds],
    )
    for _, kind, path in steps:
        if kind == 0:
            if not os.path.isdir(path):
                continue  # already under an earlier cover
            _mount(libc, "tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=64k")
        else:
            _make_skeleton(path)
            _mount(libc, f"/proc/self/fd/{fds[path]}", path, None, _MS_BIND | _MS_REC, None)
    for fd in fds.values():
        os.close(fd)


def _nearest_anchor(path: str, anchors: set[str]) -> str | None:
    """The deepest anchor that is a proper ancestor of ``path``."""
    for ancestor in reversed(_ancestors(path)):
        if ancestor in anchors:
            return ancestor
    return None


def _ancestors(path: str) -> list[str]:
    """The folders above ``path``, outermost first, without ``/``."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _depth(path: str) -> int:
    return path.rstrip("/").count("/")


def traversable(folder: str, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` may enter ``folder`` by its own mode (not its ancestors')."""
    try:
        st = os.stat(folder)
    except OSError:
        return False
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _make_skeleton(path: str) -> None:
    """Make ``path`` exist as a mount point: folders made here are inside a tmpfs of ours."""
    missing = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    for folder in reversed(missing):
        os.mkdir(folder, 0o755)
        os.chmod(folder, 0o755)


def _mount(
    libc: ctypes.CDLL,
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None,
) -> None:
    result = libc.mount(
        None if source is None else source.encode(),
        target.encode(),
        None if fstype is None else fstype.encode(),
        ctypes.c_ulong(flags),
        None if data is None else data.encode(),
    )
    if result != 0:
        raise SandboxError(f"mounting {source or fstype} on {target} failed: {_errno_text()}")


_LIBC: list[ctypes.CDLL] = []


def _libc() -> ctypes.CDLL:
    if not _LIBC:
        # The interpreter's own symbols include the C library's; find_library would start
        # ldconfig, tens of milliseconds per worker.
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def die_with_parent(parent: int) -> None:
    """Be killed (SIGKILL) when the scheduler that started this step dies, even by SIGKILL:
    a step of a scheduler that is gone would run on unwatched, beside the step its job's next
    scheduler starts. Set after the change of user, which clears it; ``parent`` is who
    started the script, and if it is gone already the step does not start.

    Raises:
        SandboxError: the setting failed, or the parent is gone.
    """
    if _libc().prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0:  # 9: SIGKILL
        raise SandboxError(f"prctl(PR_SET_PDEATHSIG) failed: {_errno_text()}")
    if os.getppid() != parent:
        raise SandboxError("the scheduler that started the step is gone")


def main(argv: list[str]) -> int:
    """``sandbox.py <plan-json> -- <program> [args...]``: enter, then exec the program."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: sandbox.py <plan-json> -- <program> [args...]", file=sys.stderr)
        return 2
    parent = os.getppid()
    try:
        enter(Plan.from_json(argv[0]))
        die_with_parent(parent)
    except NoNamespaceError as exc:
        print(f"sluiceway sandbox: {exc}", file=sys.stderr)
        return NO_NAMESPACE_EXIT
    except SandboxError as exc:
        print(f"sluiceway sandbox: {exc}", file=sys.stderr)
        return 1
    program = argv[2:]
    try:
        os.execvp(program[0], program)
    except OSError as exc:
        print(f"sluiceway sandbox: cannot run {program[0]!r}: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
