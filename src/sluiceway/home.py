"""The workspace home folder and the files in it.

``$SLUICEWAY_HOME`` (default ``~/.sluiceway``) holds ``workspace.db``, ``blobstore/`` (root of
the default datastore), ``secret.key``, ``token`` (the local owner's token, mode 0600) and
``server.json`` (where a running server listens). Both the server and the clients read it, so
this module has no dependency beyond the standard library.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "SLUICEWAY_HOME"


def default_home() -> Path:
    """The workspace home named by ``$SLUICEWAY_HOME``, else ``~/.sluiceway``."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".sluiceway"


@dataclass(frozen=True)
class WorkspaceHome:
    """Paths inside one workspace home."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "workspace.db"

    @property
    def blobstore(self) -> Path:
        return self.root / "blobstore"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret.key"

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"

    @property
    def tls_dir(self) -> Path:
        """The self-signed certificate of a server started with ``--tls``, and its bundle."""
        return self.root / "tls"

    @property
    def ca_bundle(self) -> Path:
        """What clients trust to reach the home's server over TLS (``REQUESTS_CA_BUNDLE``)."""
        return self.tls_dir / "ca-bundle.pem"

    def trust(self) -> ssl.SSLContext | bool:
        """What verifies the home's own server: its self-signed bundle when there is one."""
        bundle = self.ca_bundle
        return ssl.create_default_context(cafile=str(bundle)) if bundle.exists() else True

    def read_token(self) -> str | None:
        try:
            return self.token.read_text().strip() or None
        except FileNotFoundError:
            return None

    def read_server_address(self) -> str | None:
        """The URL a running server recorded, or None when none did."""
        try:
            data = json.loads(self.server_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        url = data.get("url")
        return url if isinstance(url, str) else None

    def write_private(self, path: Path, content: str) -> None:
        """Write a file only its owner can read (tokens, keys)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
