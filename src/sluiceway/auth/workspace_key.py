"""The workspace's key: it signs tokens and encrypts stored credentials.

Every process of a workspace must read the same key, so a token one API server mints works on
every other and a credential stored through one is readable by every scheduler. It is given as

1. ``SLUICEWAY_SECRET_KEY_FILE``: a file holding the key (a mounted secret, say);
2. ``SLUICEWAY_SECRET_KEY``: the key itself; or
3. ``<home>/secret.key``, which a process creates on first start only for a workspace whose
   database is its own (SQLite in its home). A workspace on PostgreSQL is shared by several
   processes, so none of them makes up a key of its own: it must be given one.

A key is at least 32 bytes written as hex (``openssl rand -hex 32``). The database keeps the
key's fingerprint (an HMAC of a fixed text, which reveals nothing of the key), so a process
given another key than the one the workspace was created with refuses to start.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from sluiceway.errors import StartupRefused
from sluiceway.home import WorkspaceHome

MIN_KEY_BYTES = 32
_FINGERPRINT_TEXT = b"sluiceway workspace key fingerprint v1"
HOW_TO_GIVE = (
    "give every process of the workspace the same key: SLUICEWAY_SECRET_KEY_FILE=<a file "
    "holding it> or SLUICEWAY_SECRET_KEY=<the key> (make one with `openssl rand -hex 32`)"
)


@dataclass(frozen=True)
class WorkspaceKey:
    """The key's bytes, and where they came from (for messages; never the key itself)."""

    secret: bytes
    source: str

    @property
    def fingerprint(self) -> str:
        """What the database keeps to recognise the key."""
        return hmac.new(self.secret, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"WorkspaceKey(source={self.source!r})"


def parse_key(text: str, source: str) -> WorkspaceKey:
    """A key written as hex.

    Raises:
        StartupRefused: not hex, or shorter than 32 bytes.
    """
    value = text.strip()
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        raise StartupRefused(
            f"The workspace key from {source} is not hexadecimal; accepted: at least "
            f"{MIN_KEY_BYTES} bytes as hex, e.g. the output of `openssl rand -hex 32`."
        ) from None
    if len(secret) < MIN_KEY_BYTES:
        raise StartupRefused(
            f"The workspace key from {source} has {len(secret)} bytes; accepted: at least "
            f"{MIN_KEY_BYTES} bytes ({2 * MIN_KEY_BYTES} hex digits)."
        )
    return WorkspaceKey(secret, source)


def load_workspace_key(
    home: WorkspaceHome,
    *,
    key: str | None = None,
    key_file: Path | None = None,
    may_create: bool = True,
) -> WorkspaceKey:
    """The key a process was given, else the home's ``secret.key``.

    Args:
        home: the process's workspace home.
        key: the key itself (``SLUICEWAY_SECRET_KEY``).
        key_file: a file holding it (``SLUICEWAY_SECRET_KEY_FILE``); it wins over ``key``.
        may_create: whether ``<home>/secret.key`` may be created when missing (a workspace
            whose database only this home uses).

    Raises:
        StartupRefused: the file cannot be read, the key is malformed, or none was given
            where none may be created.
    """
    if key_file is not None:
        try:
            text = key_file.expanduser().read_text()
        except OSError as exc:
            raise StartupRefused(
                f"The workspace key file {key_file} (SLUICEWAY_SECRET_KEY_FILE) cannot be read: "
                f"{exc.strerror or exc}."
            ) from None
        return parse_key(text, f"SLUICEWAY_SECRET_KEY_FILE ({key_file})")
    if key:
        return parse_key(key, "SLUICEWAY_SECRET_KEY")
    path = home.secret_key
    if not path.exists():
        if not may_create:
            raise StartupRefused(
                "This workspace's database is shared (PostgreSQL), and no process makes up a "
                f"key of its own: {HOW_TO_GIVE}."
            )
        home.write_private(path, secrets.token_hex(32))
    return parse_key(path.read_text(), str(path))
