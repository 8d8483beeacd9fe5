"""Identities: users and service principals, their secrets, and the tokens made for them."""

from __future__ import annotations

from datetime import datetime

from sluiceway.auth.client_secrets import (
    decoy_hash,
    hash_secret,
    new_client_id,
    new_client_secret,
    verify_secret,
)
from sluiceway.auth.tokens import (
    CLIENT_CREDENTIALS_LIFETIME,
    DEFAULT_LIFETIME,
    IssuedToken,
    TokenIssuer,
    check_lifetime,
)
from sluiceway.errors import ConflictError, ResourceNotFoundError, ValidationError
from sluiceway.schemas.identities import (
    IdentityCreate,
    IdentityKind,
    IdentityOut,
    IdentityWithSecret,
    RoleOut,
    TokenOut,
)
from sluiceway.store.identities import Identity, IdentityStore


def identity_out(identity: Identity) -> IdentityOut:
    return IdentityOut(
        id=identity.id,
        name=identity.name,
        kind=IdentityKind(identity.kind),
        description=identity.description,
        external_id=identity.external_id,
        client_id=identity.client_id,
        created_at=identity.created_at,
        roles=[RoleOut(scope=scope, role=role) for scope, role in identity.roles],
    )


def with_secret(identity: Identity, client_secret: str | None) -> IdentityWithSecret:
    shown = identity_out(identity).model_dump()
    return IdentityWithSecret.model_validate({**shown, "client_secret": client_secret})


class IdentityService:
    def __init__(self, store: IdentityStore, issuer: TokenIssuer) -> None:
        self._store = store
        self._issuer = issuer

    def identity(self, name: str) -> Identity:
        """Raises: ResourceNotFoundError naming the identity."""
        found = self._store.get_by_name(name)
        if found is None:
            raise ResourceNotFoundError(f"Identity {name!r} does not exist.", target="identity")
        return found

    def get(self, name: str) -> IdentityOut:
        return identity_out(self.identity(name))

    def list_all(self) -> list[IdentityOut]:
        return [identity_out(identity) for identity in self._store.list_all()]

    def create(self, body: IdentityCreate) -> IdentityWithSecret:
        """Add a user or a service principal, with no roles.

        A service principal gets a client id and a secret; the answer is the only place the
        secret is ever shown.

        Raises:
            ConflictError: the name or the external id is taken.
        """
        if self._store.get_by_name(body.name) is not None:
            raise ConflictError(f"Identity {body.name!r} exists already.", target="name")
        if body.external_id is not None:
            holder = self._store.get_by_external_id(body.external_id)
            if holder is not None:
                raise ConflictError(
                    f"External id {body.external_id!r} is mapped to identity {holder.name!r} "
                    "already.",
                    target="external_id",
                )
        secret = client_id = secret_hash = None
        if body.kind is IdentityKind.SERVICE_PRINCIPAL:
            client_id, secret = new_client_id(), new_client_secret()
            secret_hash = hash_secret(secret)
        created = self._store.create(
            body.name,
            body.kind.value,
            [],
            description=body.description,
            client_id=client_id,
            secret_hash=secret_hash,
            external_id=body.external_id,
        )
        return with_secret(created, secret)

    def delete(self, name: str) -> None:
        """Delete an identity and its role assignments; its tokens stop working.

        Raises:
            ResourceNotFoundError: no such identity.
            ConflictError: it is the workspace's last owner.
        """
        if not self._store.delete(self.identity(name).id):
            raise ResourceNotFoundError(f"Identity {name!r} does not exist.", target="identity")

    def rotate_secret(self, name: str) -> IdentityWithSecret:
        """Give a service principal a new secret (shown in this answer only); the old one, and
        every token issued for it so far, stop working at once.

        Raises:
            ResourceNotFoundError: no such identity.
            ValidationError: the identity is a user, which has no secret.
        """
        identity = self.identity(name)
        if identity.kind != IdentityKind.SERVICE_PRINCIPAL.value:
            raise ValidationError(
                f"Identity {name!r} is a {identity.kind}; only service principals have a secret.",
                target="name",
            )
        secret = new_client_secret()
        if not self._store.set_secret_hash(identity.id, hash_secret(secret)):
            raise ResourceNotFoundError(f"Identity {name!r} does not exist.", target="identity")
        return with_secret(identity, secret)

    def revoke_tokens(self, name: str) -> None:
        """Revoke every token issued for the identity so far; new ones work.

        Raises:
            ResourceNotFoundError: no such identity.
        """
        if not self._store.revoke_tokens(self.identity(name).id):
            raise ResourceNotFoundError(f"Identity {name!r} does not exist.", target="identity")

    def create_token(
        self, name: str, expires_in: int | None = None, *, not_after: datetime | None = None
    ) -> TokenOut:
        """A token for the identity ``name``, valid ``expires_in`` seconds (default an hour),
        and never past ``not_after`` (when the token it is minted with expires).

        Raises:
            ResourceNotFoundError: no such identity.
            ValidationError: ``expires_in`` is below a minute or above 365 days.
        """
        lifetime = DEFAULT_LIFETIME if expires_in is None else check_lifetime(expires_in)
        identity = self.identity(name)
        issued = self._issuer.issue_token(
            identity.id,
            expires_in=lifetime,
            generation=identity.token_generation,
            not_after=not_after,
        )
        return token_out(issued)

    def client_credentials(self, client_id: str, client_secret: str) -> IssuedToken | None:
        """A token for the service principal whose client id and secret these are, or None
        when they do not match one (an unknown id takes as long to refuse as a wrong secret)."""
        found = self._store.get_client(client_id)
        stored = found.secret_hash if found is not None else None
        matches = verify_secret(client_secret, stored or decoy_hash())
        if found is None or stored is None or not matches:
            return None
        return self._issuer.issue_token(
            found.identity.id,
            expires_in=CLIENT_CREDENTIALS_LIFETIME,
            generation=found.identity.token_generation,
        )


def token_out(issued: IssuedToken) -> TokenOut:
    return TokenOut(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        expires_on=int(issued.expires_on.timestamp()),
    )
