"""Identities, role assignments and tokens: what the API takes and answers.

An identity is a ``user`` or a ``service_principal``. A service principal has a ``client_id``
and a secret, which is shown once, when it is created or rotated; it exchanges them for a token
at ``POST /oauth2/token``. A user (or a service principal) may carry the ``external_id`` of an
external OpenID Connect issuer's subject, whose tokens then act as that identity.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator

from sluiceway.schemas.common import ASSET_NAME_RE, Open, Strict

NAME_RULE = "1-255 letters, digits, '-', '_' or '.', starting with a letter or digit"


class IdentityKind(StrEnum):
    USER = "user"
    SERVICE_PRINCIPAL = "service_principal"


def check_identity_name(value: str) -> str:
    if not ASSET_NAME_RE.fullmatch(value):
        raise ValueError(f"name {value!r} is not valid: use {NAME_RULE}")
    return value


class IdentityCreate(Strict):
    """``POST /identities``."""

    name: str
    kind: IdentityKind
    description: str | None = Field(default=None, max_length=2000)
    external_id: str | None = Field(default=None, min_length=1, max_length=255)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_identity_name(value)


class RoleOut(Open):
    scope: str
    role: str


class IdentityOut(Open):
    id: str
    name: str
    kind: IdentityKind
    description: str | None = None
    external_id: str | None = None
    client_id: str | None = None  # service principals
    created_at: datetime | None = None
    roles: list[RoleOut] = Field(default_factory=list)


class IdentityWithSecret(IdentityOut):
    """The answer to creating an identity or rotating a service principal's secret: the only
    place the secret is ever shown (None for a user)."""

    client_secret: str | None = None


class TokenCreate(Strict):
    """``POST /identities/{name}/tokens``: a lifetime in seconds (default one hour)."""

    expires_in: int | None = None


class TokenOut(Open):
    """A token minted for an identity; ``expires_on`` is in seconds since the epoch."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    expires_on: int


class RoleAssignmentCreate(Strict):
    """``POST /roles``: grant ``role`` on ``scope`` (``workspace``, ``endpoint:<name>`` or
    ``datastore:<name>``) to the identity named ``identity``."""

    identity: str
    role: str
    scope: str


class RoleAssignmentOut(Open):
    identity: str
    role: str
    scope: str
    created_at: datetime
