"""Bearer tokens: JWTs signed with the workspace's ``secret.key``, naming an identity.

Every token carries ``sub`` (the identity's id), ``iss`` (this workspace), ``aud``
(``sluiceway``), ``iat`` and ``exp``; only HS256 with this workspace's key is accepted. A
refusal says why (expired, another audience, another issuer, a bad signature, a missing claim)
without repeating the token.

A token also carries ``gen``, its identity's token generation when it was issued: raising the
generation (rotating a secret, revoking tokens) revokes every token issued before. A token
without ``gen`` (issued before generations existed) is of generation 0.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from sluiceway.clock import utcnow
from sluiceway.errors import AuthenticationError, ValidationError

AUDIENCE = "sluiceway"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "iss", "aud")

#: ``sluice token create`` and ``POST /identities/{name}/tokens`` without ``expires_in``.
DEFAULT_LIFETIME = timedelta(hours=1)
#: The longest a token may live; the owner's home token lives this long.
MAX_LIFETIME = timedelta(days=365)
#: The shortest lifetime one may ask for.
MIN_LIFETIME = timedelta(minutes=1)
#: Tokens from the client-credentials grant, as Azure's (``expires_in`` 3599).
CLIENT_CREDENTIALS_LIFETIME = timedelta(seconds=3599)
#: The owner's home token is issued anew when it has less than this left.
OWNER_RENEW_BEFORE = timedelta(days=30)


def check_lifetime(seconds: int, *, field: str = "expires_in") -> timedelta:
    """A requested token lifetime, checked against the accepted range.

    Raises:
        ValidationError: shorter than a minute or longer than 365 days.
    """
    low, high = int(MIN_LIFETIME.total_seconds()), int(MAX_LIFETIME.total_seconds())
    if not low <= seconds <= high:
        raise ValidationError(
            f"{field} {seconds!r} is not accepted: give seconds from {low} (1 minute) to "
            f"{high} (365 days).",
            target=field,
        )
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class IssuedToken:
    """A token, when it expires, and the lifetime it was issued with (OAuth2's ``expires_in``)."""

    access_token: str
    expires_on: datetime
    expires_in: int


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    subject: str
    issued_at: datetime
    expires_on: datetime
    generation: int = 0


@dataclass(frozen=True)
class TokenIssuer:
    key: bytes
    issuer: str

    def issue(
        self, identity_id: str, *, expires_in: timedelta = DEFAULT_LIFETIME, generation: int = 0
    ) -> str:
        return self.issue_token(
            identity_id, expires_in=expires_in, generation=generation
        ).access_token

    def issue_token(
        self,
        identity_id: str,
        *,
        expires_in: timedelta = DEFAULT_LIFETIME,
        generation: int = 0,
        not_after: datetime | None = None,
    ) -> IssuedToken:
        """A signed token for ``identity_id`` of token generation ``generation``.

        It expires ``expires_in`` from now, or at ``not_after`` when that is sooner: a token
        minted with another token never outlives it.
        """
        now = utcnow().replace(microsecond=0)
        expires_on = now + expires_in
        if not_after is not None and not_after < expires_on:
            expires_on = max(not_after.replace(microsecond=0), now)
        claims: dict[str, object] = {
            "sub": identity_id,
            "iss": self.issuer,
            "aud": AUDIENCE,
            "iat": now,
            "exp": expires_on,
            "gen": generation,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM)
        return IssuedToken(token, expires_on, int((expires_on - now).total_seconds()))

    def claims(self, token: str) -> TokenClaims:
        """The claims of a token this workspace signed.

        Raises:
            AuthenticationError: the token is malformed, expired, for another audience, from
                another issuer, not signed with HS256 and this workspace's key, or misses one
                of exp, iat, sub, iss and aud.
        """
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(
                refusal(exc, issuer=self.issuer, audience=AUDIENCE), target="token"
            ) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("The token's 'sub' claim names no identity.", target="token")
        generation = claims.get("gen", 0)
        if isinstance(generation, bool) or not isinstance(generation, int):
            raise AuthenticationError("The token's 'gen' claim is not a number.", target="token")
        return TokenClaims(
            subject=subject,
            issued_at=datetime.fromtimestamp(int(claims["iat"]), UTC),
            expires_on=datetime.fromtimestamp(int(claims["exp"]), UTC),
            generation=generation,
        )

    def verify(self, token: str) -> str:
        """The identity id a token names.

        Raises:
            AuthenticationError: as :meth:`claims`.
        """
        return self.claims(token).subject


def refusal(
    exc: jwt.PyJWTError,
    *,
    issuer: str,
    audience: str,
    algorithms: str = ALGORITHM,
    required: tuple[str, ...] = REQUIRED_CLAIMS,
) -> str:
    """Why a token was refused, in words, without the token itself."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "The token has expired; get a new one."
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "The token is not valid yet (its 'iat' or 'nbf' is in the future)."
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"The token has no {exc.claim!r} claim; accepted tokens carry {', '.join(required)}."
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"The token is for another audience; accepted audience: {audience!r}."
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"The token's issuer is not accepted; accepted issuer: {issuer!r}."
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"The token's signing algorithm is not accepted; accepted: {algorithms}."
    if isinstance(exc, jwt.InvalidSignatureError):
        return "The token's signature does not match the key of its issuer."
    if isinstance(exc, jwt.DecodeError):
        return "The bearer token is not a well-formed JWT."
    return "The token is not valid here."
