"""Where ``sluice login`` keeps its credentials: one file per user, keyed by server URL.

The file is ``$SLUICEWAY_CONFIG_DIR/credentials.json``, else
``$XDG_CONFIG_HOME/sluiceway/credentials.json``, else ``~/.config/sluiceway/credentials.json``,
written with mode 0600 (its folder 0700). It holds, per server, either a token (and when it
expires) or a service principal's client id and secret with the last token they got, so that
the token can be renewed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sluiceway.errors import ValidationError

CONFIG_DIR_ENV = "SLUICEWAY_CONFIG_DIR"
FILE_NAME = "credentials.json"
TOKEN = "token"
CLIENT_SECRET = "client_secret"
_VERSION = 1


def default_config_dir() -> Path:
    """``$SLUICEWAY_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/sluiceway``, else
    ``~/.config/sluiceway``."""
    explicit = os.environ.get(CONFIG_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "sluiceway"


def server_key(url: str) -> str:
    """A server URL as the file keys it: scheme and host lower-case, no trailing ``/``."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class StoredLogin:
    """One server's credential.

    ``kind`` is ``token`` (``access_token`` is all there is) or ``client_secret`` (a service
    principal's ``client_id`` and ``client_secret``, and the last ``access_token`` they got).
    ``expires_on`` is the access token's expiry in seconds since the epoch, when known.
    """

    server: str
    kind: str
    access_token: str | None = None
    expires_on: int | None = None
    identity: str | None = None
    client_id: str | None = None
    client_secret: str | None = None

    def with_token(self, access_token: str, expires_on: int | None) -> StoredLogin:
        return replace(self, access_token=access_token, expires_on=expires_on)


class LoginStore:
    """The credentials file of one user.

    Args:
        folder: The folder of ``credentials.json``; default :func:`default_config_dir`.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or default_config_dir()) / FILE_NAME

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValidationError(
                f"The credentials file {self.path} cannot be read ({exc}); fix or delete it "
                "and run `sluice login` again.",
                target="credentials",
            ) from None
        logins = data.get("logins") if isinstance(data, dict) else None
        if not isinstance(logins, dict):
            return {}
        return {k: v for k, v in logins.items() if isinstance(v, dict)}

    def _write(self, logins: dict[str, dict[str, object]]) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": _VERSION, "logins": logins}, fh, indent=2)
                fh.write("\n")
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get(self, server: str) -> StoredLogin | None:
        """The login stored for ``server``, or None."""
        key = server_key(server)
        entry = self._read().get(key)
        if entry is None:
            return None
        fields = {name: entry.get(name) for name in StoredLogin.__dataclass_fields__}
        kind = fields.get("kind")
        if kind not in (TOKEN, CLIENT_SECRET):
            return None
        expires = fields.get("expires_on")
        return StoredLogin(
            server=key,
            kind=str(kind),
            access_token=_text(fields.get("access_token")),
            expires_on=int(expires) if isinstance(expires, int | float) else None,
            identity=_text(fields.get("identity")),
            client_id=_text(fields.get("client_id")),
            client_secret=_text(fields.get("client_secret")),
        )

    def save(self, login: StoredLogin) -> StoredLogin:
        """Store ``login`` for its server, replacing what was there."""
        stored = replace(login, server=server_key(login.server))
        logins = self._read()
        logins[stored.server] = {k: v for k, v in asdict(stored).items() if v is not None}
        self._write(logins)
        return stored

    def remove(self, server: str) -> bool:
        """Forget the login for ``server``; False when there was none."""
        logins = self._read()
        if logins.pop(server_key(server), None) is None:
            return False
        self._write(logins)
        return True

    def servers(self) -> list[str]:
        return sorted(self._read())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
