"""Where the server's address came from, and which credentials may be sent to it.

A credential is sent only to the server it belongs to:

- the workspace home's owner token, only to the address the home's running server recorded
  in ``server.json`` (same scheme, host and port);
- a ``sluice login`` credential, only to the server it was stored for;
- a ``config.json``'s own token, only to that file's endpoint (or, when the file names no
  endpoint, to the server found otherwise);
- a token or credential the caller gives (``token=``, ``--token``, ``credential=``,
  ``$SLUICEWAY_TOKEN``), to the address the caller gave too (``endpoint=``, ``--endpoint``,
  ``$SLUICEWAY_ENDPOINT``, a config file passed to ``MLClient.from_config``) or to the home's
  server, and never to one a ``config.json`` that merely lies in the current folder names.

A ``config.json`` in the current folder may come from anyone (a cloned repository, a shared
folder), so the address it names gets none of the caller's credentials unless one of them
belongs to it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sluiceway.errors import AuthenticationError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int] | None:
    """A URL's scheme, host and port, normalised; None when it is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def same_origin(url: str, other: str | None) -> bool:
    """Whether two URLs name the same scheme, host and port."""
    if other is None:
        return False
    mine = origin(url)
    return mine is not None and mine == origin(other)


class AddressSource(enum.Enum):
    """Where the server's address was found, in the order they are looked at."""

    ARGUMENT = "the endpoint argument (--endpoint, endpoint=)"
    ENVIRONMENT = "$SLUICEWAY_ENDPOINT"
    CONFIG_FILE = "config.json"
    HOME = "the workspace home"


@dataclass(frozen=True)
class ServerAddress:
    """A server's URL and where it was found.

    ``named`` says whether the caller named the config file (``MLClient.from_config``,
    ``config_path=``) rather than it being found in the current folder; ``file`` is the
    config file or the home's ``server.json``.
    """

    url: str
    source: AddressSource
    file: Path | None = None
    named: bool = False
    home_server: str | None = None

    @property
    def chosen(self) -> bool:
        """Whether the caller chose this address (so a token they give may go to it)."""
        if self.source is AddressSource.CONFIG_FILE:
            return self.named or self.is_home_server
        return True

    @property
    def is_home_server(self) -> bool:
        """Whether this is the address the workspace home's running server recorded."""
        return same_origin(self.url, self.home_server)

    def describe(self) -> str:
        """Where the address came from, for an error message."""
        if self.source is AddressSource.CONFIG_FILE and self.file is not None:
            return f"config file {self.file}"
        if self.source is AddressSource.HOME and self.file is not None:
            return str(self.file)
        return self.source.value

    def refuse(self, credential: str) -> AuthenticationError:
        """The error for a ``credential`` that is not sent to this address."""
        return AuthenticationError(
            f"Not sending {credential} to {self.url}, the endpoint named by {self.describe()}: "
            f"a token goes only to the server it belongs to. Run `sluice login --endpoint "
            f"{self.url} ...` to keep a credential for that server, or pass --endpoint "
            f"{self.url} with the token to send it there.",
            target="endpoint",
        )

    def no_credential(self, withheld: Sequence[str] = ()) -> AuthenticationError:
        """The error for an address that no credential belongs to; ``withheld`` says which
        credentials were held back and why."""
        because = f" ({'; '.join(withheld)})" if withheld else ""
        return AuthenticationError(
            f"No credential for {self.url}, the endpoint named by {self.describe()}{because}: "
            f"run `sluice login --endpoint {self.url} ...`, or pass --endpoint and --token "
            "(token= in the SDK).",
            target="endpoint",
        )
