"""Who is calling: the identity a token names, and its roles."""

from __future__ import annotations

from dataclasses import dataclass

from sluiceway.auth.policy import WORKSPACE, Action, Grants, Role
from sluiceway.auth.tokens import TokenIssuer
from sluiceway.errors import AuthenticationError
from sluiceway.home import WorkspaceHome
from sluiceway.store.identities import Identity, IdentityStore

OWNER_NAME = "owner"
WORKSPACE_SCOPE = WORKSPACE


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
    authorization: str | None, issuer: TokenIssuer, identities: IdentityStore
) -> Principal:
    """The principal behind an ``Authorization: Bearer <token>`` header.

    Raises:
        AuthenticationError: no header, not a bearer token, a bad token, or an unknown identity.
    """
    if not authorization:
        raise AuthenticationError("This route needs an 'Authorization: Bearer <token>' header.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The Authorization header must be 'Bearer <token>'.")
    identity = identities.get(issuer.verify(token.strip()))
    if identity is None:
        raise AuthenticationError("The token names an identity that no longer exists.")
    return Principal.of(identity)


def ensure_owner(home: WorkspaceHome, issuer: TokenIssuer, identities: IdentityStore) -> Principal:
    """Create the workspace owner on first start and keep a valid token in ``<home>/token``."""
    owner = identities.get_by_name(OWNER_NAME)
    if owner is None:
        owner = identities.create(OWNER_NAME, "user", [(WORKSPACE_SCOPE, Role.OWNER.value)])
    token = home.read_token()
    valid = False
    if token:
        try:
            valid = issuer.verify(token) == owner.id
        except AuthenticationError:
            valid = False
    if not valid:
        home.write_private(home.token, issuer.issue(owner.id) + "\n")
    return Principal.of(owner)
