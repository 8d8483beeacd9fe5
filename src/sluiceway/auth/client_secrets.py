"""Service principal secrets: made at random, stored only as a salted scrypt hash.

A stored hash reads ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash in base64), so the
cost can change later without invalidating the secrets already issued.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import uuid

SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_SECRET_BYTES = 32


def new_client_id() -> str:
    """A client id, a GUID as Azure's application ids are."""
    return str(uuid.uuid4())


def new_client_secret() -> str:
    """A secret of 256 random bits, URL-safe, shown to its owner once."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=64 << 20
    )


def hash_secret(secret: str) -> str:
    """The stored form of a secret: scrypt with a salt of its own."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, salt, _N, _R, _P, _HASH_BYTES)
    return f"{SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` is the one ``stored`` was made from; compared in constant time.

    A malformed ``stored`` value matches nothing.
    """
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(
            secret, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def decoy_hash() -> str:
    """A hash to check against when a client id is unknown, so that an unknown id takes as
    long to refuse as a wrong secret."""
    return hash_secret(new_client_secret())
