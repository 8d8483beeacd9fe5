"""Paths inside a datastore: the one check every path a caller gives passes.

A datastore path is relative to the datastore's root and separated by ``/``. Whatever could
name a place outside the root, or be read differently by a store, an operating system or a
later decoding step, is refused rather than cleaned up: a ``..`` segment (also percent-encoded,
once or more: ``%2e%2e``, ``%252e%252e``), a backslash, a NUL byte, and an absolute path (a
leading ``/`` or a drive letter such as ``C:``). Empty and ``.`` segments are dropped.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from sluiceway.errors import ValidationError

__all__ = ["ACCEPTED_PATHS", "check_relative_path", "open_regular_file"]

ACCEPTED_PATHS = (
    "a path relative to the datastore's root such as 'folder/file.csv': names separated by "
    "'/', with no '..' segment (also not percent-encoded), no backslash, no NUL byte, and no "
    "leading '/' or drive letter"
)

_DRIVE_RE = re.compile(r"[A-Za-z]:(?:/|$)")


def check_relative_path(
    path: str, *, where: str = "", leading_slash: bool = False
) -> tuple[str, bool]:
    """Check a path relative to a datastore's root and normalise it.

    Args:
        path: The path as the caller wrote it.
        where: Words that place the path in its request (`` in 'azureml://...'``).
        leading_slash: Read a leading ``/`` as the root (for paths built by the server);
            callers' paths may not start with ``/``.

    Returns:
        The path without empty or ``.`` segments (``""`` for the root), and whether it names a
        folder: it ended in ``/`` or ``.``, or it is the root.

    Raises:
        ValidationError: naming the path, what is wrong with it and what is accepted.
    """
    reason = _refusal(path, leading_slash=leading_slash)
    if reason is not None:
        raise ValidationError(
            f"The path {path!r}{where} is not accepted: {reason}. Give {ACCEPTED_PATHS}.",
            target="path",
        )
    raw = path.split("/")
    segments = [s for s in raw if s not in ("", ".")]
    return "/".join(segments), not segments or raw[-1] in ("", ".")


def _refusal(path: str, *, leading_slash: bool) -> str | None:
    """Why ``path`` is refused, or None; every percent-decoding of it is checked too."""
    form = path
    decoded = False
    while True:
        how = "once percent-decoded, it " if decoded else "it "
        if "\x00" in form:
            return how + "holds a NUL byte"
        if "\\" in form:
            return how + "holds a backslash; separate folders with '/'"
        if ".." in form.split("/"):
            return how + "has a '..' segment, which leaves the datastore's root"
        if form.startswith("/") and (decoded or not leading_slash):
            return how + "is absolute (starts with '/')"
        if _DRIVE_RE.match(form):
            return how + "starts with a drive letter"
        # Each decoding that changes the text shortens it, so this ends.
        next_form = unquote(form)
        if next_form == form:
            return None
        form, decoded = next_form, True


def open_regular_file(path: Path, *, within: Path) -> BinaryIO:
    """Open for reading a file that a deployment's code wrote (a part, a staged output, a log).

    Such code runs as another user that cannot reach the server's secrets, but could leave a
    symbolic link to one where the server reads its results. The file is opened without
    following a final link, and refused unless it is a regular file whose real path, as
    opened, is inside ``within``; a FIFO never blocks the open.

    Raises:
        OSError: it cannot be opened, or is refused (``PermissionError``).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PermissionError(errno.EACCES, "not a regular file", str(path))
        opened = f"/proc/self/fd/{fd}"
        real = os.readlink(opened) if os.path.exists(opened) else os.path.realpath(path)
        root = os.path.realpath(within).rstrip("/") + "/"
        if not real.startswith(root):
            raise PermissionError(errno.EACCES, f"its real path is outside {within}", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
