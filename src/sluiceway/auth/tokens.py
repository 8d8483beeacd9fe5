"""Bearer tokens: JWTs signed with the workspace's ``secret.key``, naming an identity."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt

from sluiceway.clock import utcnow
from sluiceway.errors import AuthenticationError
from sluiceway.home import WorkspaceHome

AUDIENCE = "sluiceway"
ALGORITHM = "HS256"


def load_or_create_key(home: WorkspaceHome) -> bytes:
    """The workspace's signing key, created (mode 0600) on first use."""
    path: Path = home.secret_key
    if not path.exists():
        home.write_private(path, secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


@dataclass(frozen=True)
class TokenIssuer:
    key: bytes
    issuer: str

    def issue(self, identity_id: str, *, expires_in: timedelta | None = None) -> str:
        now = utcnow()
        claims: dict[str, object] = {
            "sub": identity_id,
            "iss": self.issuer,
            "aud": AUDIENCE,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        if expires_in is not None:
            claims["exp"] = now + expires_in
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def verify(self, token: str) -> str:
        """The identity id a token names.

        Raises:
            AuthenticationError: the token is malformed, expired or not signed by this workspace.
        """
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["sub", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired.") from None
        except jwt.PyJWTError:
            raise AuthenticationError("The token is not valid for this workspace.") from None
        return str(claims["sub"])
