"""Signed URLs for one identity's own rights: the SAS a datastore's ``listSecrets`` answers,
and the log-file links of a run's details.

A SAS never carries more than its identity may do: ``r`` and ``l`` with ``read data`` on the
datastore, ``c`` and ``w`` with ``write data``. When it is used, the identity's roles are
checked again, so a role taken away since also takes the SAS's rights away.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from sluiceway.auth.policy import Action, datastore_scope
from sluiceway.auth.principals import Principal
from sluiceway.auth.signed_urls import DEFAULT_LIFETIME, SignedGrant, UrlSigner
from sluiceway.errors import AuthenticationError, PermissionDeniedError
from sluiceway.store.identities import IdentityStore

READ_PERMISSIONS = "rl"
WRITE_PERMISSIONS = "cw"


def blob_scope(datastore: str) -> str:
    return f"blob:{datastore}"


def log_scope(job: str) -> str:
    return f"log:{job}"


class SignedAccess:
    def __init__(self, signer: UrlSigner, identities: IdentityStore) -> None:
        self._signer = signer
        self._identities = identities

    def _generation(self, principal: Principal) -> int:
        identity = self._identities.get(principal.id)
        if identity is None:
            raise AuthenticationError("The caller's identity no longer exists.")
        return identity.token_generation

    def datastore_sas(
        self, principal: Principal, datastore: str, lifetime: timedelta = DEFAULT_LIFETIME
    ) -> tuple[str, str]:
        """A SAS query string for ``datastore`` with the caller's own data rights there, and
        its expiry (ISO 8601).

        Raises:
            PermissionDeniedError: the caller may neither read nor write the datastore's data.
        """
        permissions = self.datastore_permissions(principal, datastore)
        query = self._signer.sign(
            blob_scope(datastore),
            permissions,
            principal.id,
            self._generation(principal),
            lifetime,
        )
        return urlencode(query), query["se"]

    def datastore_permissions(self, principal: Principal, datastore: str) -> str:
        """The SAS permissions of the caller's own data rights on ``datastore``.

        Raises:
            PermissionDeniedError: the caller may neither read nor write the datastore's data.
        """
        scope = datastore_scope(datastore)
        permissions = ""
        if principal.allows(Action.READ_DATA, scope):
            permissions += READ_PERMISSIONS
        if principal.allows(Action.WRITE_DATA, scope):
            permissions += WRITE_PERMISSIONS
        if not permissions:
            principal.require(Action.READ_DATA, scope, what=f"datastore {datastore!r}")
        return permissions

    def log_query(self, principal: Principal, job: str) -> str:
        """The query string that lets a log link of ``job`` be read without a token."""
        query = self._signer.sign(log_scope(job), "r", principal.id, self._generation(principal))
        return urlencode(query)

    def principal(self, query: dict[str, str], scope: str) -> tuple[Principal, SignedGrant]:
        """The identity a signed query acts for, once its signature is checked for ``scope``.

        Raises:
            AuthenticationError: a bad, expired or revoked signature, or an unknown identity.
        """
        claimed = self._signer.claims(query)
        identity = self._identities.get(claimed.identity_id)
        if identity is None:
            raise AuthenticationError("The signature names an identity that no longer exists.")
        grant = self._signer.verify(query, scope, identity.token_generation)
        return Principal.of(identity, grant.expires_on), grant


def require_permission(grant: SignedGrant, letter: str, what: str) -> None:
    """Raises: PermissionDeniedError when the SAS does not grant ``letter``."""
    if letter not in grant.permissions:
        raise PermissionDeniedError(
            f"The SAS grants {grant.permissions!r}, which does not include {letter!r} "
            f"needed to {what}.",
            target="sp",
        )
