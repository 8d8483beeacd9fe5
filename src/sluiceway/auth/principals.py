"""Who is calling: the identity a token names, and its roles."""

from __future__ import annotations

from dataclasses import dataclass

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
    id: str
    name: str
    kind: str
    roles: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, identity: Identity) -> Principal:
        return cls(identity.id, identity.name, identity.kind, identity.roles)

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
    ``external_id``; any other token must be one this workspace signed.

    Raises:
        AuthenticationError: no header, not a bearer token, a bad token, or an unknown identity.
    """
    if not authorization:
        raise AuthenticationError("This route needs an 'Authorization: Bearer <token>' header.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationError("The Authorization header must be 'Bearer <token>'.")
    if external is not None and unverified_issuer(token) == external.issuer:
        subject = external.subject(token)
        identity = identities.get_by_external_id(subject)
        if identity is None:
            raise AuthenticationError(
                f"No identity is mapped to subject {subject!r} of issuer {external.issuer!r}; "
                "an owner maps one with `sluice identity create user NAME --external-id "
                f"{subject}`.",
                target="token",
            )
        return Principal.of(identity)
    identity = identities.get(issuer.verify(token))
    if identity is None:
        raise AuthenticationError("The token names an identity that no longer exists.")
    return Principal.of(identity)


def _owner_token_is_fresh(token: str | None, issuer: TokenIssuer, owner: Identity) -> bool:
    if not token:
        return False
    try:
        claims = issuer.claims(token)
    except AuthenticationError:
        return False
    return claims.subject == owner.id and claims.expires_on - utcnow() > OWNER_RENEW_BEFORE


def ensure_owner(home: WorkspaceHome, issuer: TokenIssuer, identities: IdentityStore) -> Principal:
    """Create the workspace owner on first start and keep a valid token in ``<home>/token``.

    The token lives 365 days; it is issued anew when it is not valid or has less than 30 days
    left.
    """
    owner = identities.get_by_name(OWNER_NAME)
    if owner is None:
        owner = identities.create(OWNER_NAME, "user", [(WORKSPACE, Role.OWNER.value)])
    if not _owner_token_is_fresh(home.read_token(), issuer, owner):
        token = issuer.issue(owner.id, expires_in=MAX_LIFETIME)
        home.write_private(home.token, token + "\n")
    return Principal.of(owner)
