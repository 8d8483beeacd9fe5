"""Datastore credentials at rest: encrypted with a key derived from the workspace's secret.

The workspace's ``secret.key`` also signs tokens; the credential key is derived from it with
HKDF under its own label, so neither use can stand in for the other. Fernet (AES-128-CBC with
an HMAC-SHA256) authenticates what it decrypts: a tampered value fails to open rather than
yielding garbage.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sluiceway.errors import SluicewayError

_INFO = b"sluiceway datastore credentials v1"


class CredentialCipher:
    """Seals and opens a datastore's credentials (a small mapping of strings)."""

    def __init__(self, workspace_key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            workspace_key
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()

    def open(self, sealed: str) -> dict[str, Any]:
        try:
            value = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            raise SluicewayError(
                "A datastore's stored credentials cannot be decrypted with this workspace's "
                "secret.key (was the key replaced?); create the datastore again."
            ) from None
        if not isinstance(value, dict):
            raise SluicewayError("A datastore's stored credentials are malformed.")
        return value
