"""Tokens of an external OpenID Connect issuer (Entra ID, Keycloak, Dex, ...).

When ``SLUICEWAY_OIDC_ISSUER`` is set, a bearer token whose ``iss`` is that issuer is verified
with the issuer's published keys (RS256 or ES256, from ``SLUICEWAY_OIDC_JWKS_URL``, else from
the issuer's ``/.well-known/openid-configuration``), its audience must be
``SLUICEWAY_OIDC_AUDIENCE``, and its subject (the ``oid`` claim, else ``sub``) names the
identity whose ``external_id`` it is.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import jwt

from sluiceway.auth.tokens import refusal
from sluiceway.errors import AuthenticationError

logger = logging.getLogger("sluiceway.auth")

ALGORITHMS = ("RS256", "ES256")
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud")
#: Seconds the key set is cached; a token signed with a key not in it fetches it again.
JWKS_CACHE_SECONDS = 300
DISCOVERY_PATH = "/.well-known/openid-configuration"


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read without checking it; None for a malformed token."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


@dataclass
class ExternalIssuer:
    """An OpenID Connect issuer whose tokens this workspace accepts.

    Args:
        issuer: The ``iss`` its tokens carry, exactly.
        audience: The ``aud`` they must carry.
        jwks_url: Where its signing keys are; None to read ``jwks_uri`` from its discovery
            document on first use.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    timeout: float = 10.0
    _client: jwt.PyJWKClient | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _keys(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self.jwks_url or self._discover_jwks_url()
                self._client = jwt.PyJWKClient(
                    url, cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=self.timeout
                )
            return self._client

    def _discover_jwks_url(self) -> str:
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            response = httpx.get(url, timeout=self.timeout)
            response.raise_for_status()
            jwks_uri = response.json().get("jwks_uri")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            logger.warning("OpenID Connect discovery at %s failed: %s", url, exc)
            raise AuthenticationError(
                f"The signing keys of issuer {self.issuer!r} could not be found: its discovery "
                f"document {url} could not be read. Set SLUICEWAY_OIDC_JWKS_URL.",
                target="token",
            ) from None
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise AuthenticationError(
                f"The discovery document {url} names no jwks_uri; set SLUICEWAY_OIDC_JWKS_URL.",
                target="token",
            )
        return jwks_uri

    def subject(self, token: str) -> str:
        """The subject a token of this issuer names: its ``oid`` claim, else its ``sub``.

        Raises:
            AuthenticationError: as :meth:`verified`.
        """
        return self.verified(token)[0]

    def verified(self, token: str) -> tuple[str, datetime]:
        """The subject a token of this issuer names (as :meth:`subject`) and when it expires.

        Raises:
            AuthenticationError: the keys cannot be fetched, or the token is expired, for
                another audience, not signed by one of the issuer's keys, or names no subject.
        """
        try:
            key = self._keys().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("fetching the signing keys of %s failed: %s", self.issuer, exc)
            raise AuthenticationError(
                f"The signing keys of issuer {self.issuer!r} could not be fetched; try again "
                "later, or check SLUICEWAY_OIDC_JWKS_URL.",
                target="token",
            ) from None
        except jwt.PyJWKClientError:
            raise AuthenticationError(
                f"The token's signing key ('kid') is not among the keys of issuer {self.issuer!r}.",
                target="token",
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(self._refusal(exc), target="token") from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(self._refusal(exc), target="token") from None
        for claim in ("oid", "sub"):
            value = claims.get(claim)
            if isinstance(value, str) and value:
                return value, datetime.fromtimestamp(int(claims["exp"]), UTC)
        raise AuthenticationError(
            f"The token of issuer {self.issuer!r} has neither an 'oid' nor a 'sub' claim.",
            target="token",
        )

    def _refusal(self, exc: jwt.PyJWTError) -> str:
        return refusal(
            exc,
            issuer=self.issuer,
            audience=self.audience,
            algorithms=" or ".join(ALGORITHMS),
            required=REQUIRED_CLAIMS,
        )
