"""Who is calling: the identity a token names, and its roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sluiceway.auth.oidc import ExternalIssuer, unverified_issuer
from sluiceway.auth.policy import WORKSPACE, Action, Grants, Role
from sluiceway.auth.tokens import MAX_LIFETIME, OWNER_RENEW_BEFORE, TokenIssuer
from sluiceway.clock import utcnow
from sluiceway.errors import AuthenticationError
from sluiceway.home import WorkspaceHome
from sluiceway.store.identities import Identity, IdentityStore

OWNER_NAME = "owner"


@dataclass(frozen=True)
class Principal:
    """An identity, its roles, and when the token it called with expires (None: no token)."""

    id: str
    name: str
    kind: str
    roles: tuple[tuple[str, str], ...]
    token_expires_on: datetime | None = None

    @classmethod
    def of(cls, identity: Identity, token_expires_on: datetime | None = None) -> Principal:
        return cls(identity.id, identity.name, identity.kind, identity.roles, token_expires_on)

    @property
    def grants(self) -> Grants:
        return Grants(self.name, self.roles)

    def allows(self, action: Action, scope: str = WORKSPACE) -> bool:
        return self.grants.allows(action, scope)

    def require(self, action: Action, scope: str = WORKSPACE, *, what: str | None = None) -> None:
        """Raises: PermissionDeniedError (403) naming the action, scope and allowing roles."""
        self.grants.require(action, scope, what=what)


def authenticate(
    authorization: str | None,
    issuer: TokenIssuer,
    identities: IdentityStore,
    *,
    external: ExternalIssuer | None = None,
) -> Principal:
    """The principal behind an ``Authorization: Bearer <token>`` header.

    A token of the external OpenID Connect issuer (when one is set) names an identity by its
    ``external_id``; any other token must be one this workspace signed, of the identity's
    current token generation (an older one was revoked).

    Raises:
        AuthenticationError: no header, not a bearer token, a bad or revoked token, or an
            unknown identity.
    """
    if not authorization:
        raise AuthenticationError("This route needs an 'Authorization: Bearer <token>' header.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("The Authorization header must be 'Bearer <token>'.")
    return authenticate_token(token, issuer, identities, external=external)


def authenticate_token(
    token: str,
    issuer: TokenIssuer,
    identities: IdentityStore,
    *,
    external: ExternalIssuer | None = None,
) -> Principal:
    """The principal behind a bearer token given without its header (a session cookie, a
    one-time link, a managed-identity header); see :func:`authenticate`.

    Raises:
        AuthenticationError: an empty, bad or revoked token, or an unknown identity.
    """
    token = token.strip()
    if not token:
        raise AuthenticationError("No token was given.", target="token")
    if external is not None and unverified_issuer(token) == external.issuer:
        subject, expires_on = external.verified(token)
        identity = identities.get_by_external_id(subject)
        if identity is None:
            raise AuthenticationError(
                f"No identity is mapped to subject {subject!r} of issuer {external.issuer!r}; "
                "an owner maps one with `sluice identity create user NAME --external-id "
                f"{subject}`.",
                target="token",
            )
        return Principal.of(identity, expires_on)
    claims = issuer.claims(token)
    identity = identities.get(claims.subject)
    if identity is None:
        raise AuthenticationError("The token names an identity that no longer exists.")
    if claims.generation != identity.token_generation:
        raise AuthenticationError(
            f"The token was revoked: the tokens of identity {identity.name!r} were revoked (its "
            "secret was rotated, or an owner revoked them) after it was issued; get a new one.",
            target="token",
        )
    return Principal.of(identity, claims.expires_on)


def _owner_token_is_fresh(token: str | None, issuer: TokenIssuer, owner: Identity) -> bool:
    if not token:
        return False
    try:
        claims = issuer.claims(token)
    except AuthenticationError:
        return False
    return (
        claims.subject == owner.id
        and claims.generation == owner.token_generation
        and claims.expires_on - utcnow() > OWNER_RENEW_BEFORE
    )


def ensure_owner(home: WorkspaceHome, issuer: TokenIssuer, identities: IdentityStore) -> Principal:
    """Create the workspace owner on first start and keep a valid token in ``<home>/token``.

    The token lives 365 days; it is issued anew when it is not valid or has less than 30 days
    left.
    """
    owner = identities.get_by_name(OWNER_NAME)
    if owner is None:
        owner = identities.create(OWNER_NAME, "user", [(WORKSPACE, Role.OWNER.value)])
    if not _owner_token_is_fresh(home.read_token(), issuer, owner):
        token = issuer.issue(owner.id, expires_in=MAX_LIFETIME, generation=owner.token_generation)
        home.write_private(home.token, token + "\n")
    return Principal.of(owner)
