"""Short-lived signed URLs: a shared access signature (SAS) the server issues for one identity.

Some clients cannot send a bearer token: the azure-ai-ml SDK reaches blob storage with the SAS
a datastore's ``listSecrets`` answers, and fetches log files with no credential at all. For
them the server signs the query string of a URL: what it reaches (``scope``), the permissions
(``sp``), when it expires (``se``) and the identity it acts for (``skoid``). The signature also
covers the identity's token generation, so revoking an identity's tokens (or rotating its
secret) revokes its signed URLs too. The key is derived from the workspace key and used for
nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sluiceway.clock import utcnow
from sluiceway.errors import AuthenticationError

#: The ``sv`` every signed URL carries (Azure's SAS field; the value names this format).
SIGNED_VERSION = "sluiceway-1"
#: How long a datastore SAS from ``listSecrets`` lives (the SDK asks for an hour).
DEFAULT_LIFETIME = timedelta(hours=1)
_FIELDS = ("sv", "sp", "se", "skoid", "sig")


@dataclass(frozen=True)
class SignedGrant:
    """What a valid signature says: the identity, its permissions and where they apply."""

    identity_id: str
    scope: str
    permissions: str
    expires_on: datetime


class UrlSigner:
    def __init__(self, workspace_key: bytes) -> None:
        self._key = hmac.new(workspace_key, b"sluiceway signed urls", hashlib.sha256).digest()

    def _signature(self, scope: str, sp: str, se: str, identity_id: str, generation: int) -> str:
        text = f"{SIGNED_VERSION}\n{scope}\n{sp}\n{se}\n{identity_id}\n{generation}"
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(
        self,
        scope: str,
        permissions: str,
        identity_id: str,
        generation: int,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> dict[str, str]:
        """The query parameters of a URL signed for ``identity_id``."""
        se = (utcnow() + lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = self._signature(scope, permissions, se, identity_id, generation)
        return {"sv": SIGNED_VERSION, "sp": permissions, "se": se, "skoid": identity_id, "sig": sig}

    def claims(self, query: dict[str, str]) -> SignedGrant:
        """The grant a signed query names, before its signature is checked (which needs the
        identity's generation: see :meth:`verify`).

        Raises:
            AuthenticationError: a field is missing, of another format, or expired.
        """
        missing = [f for f in _FIELDS if not query.get(f)]
        if missing:
            raise AuthenticationError(
                f"The signed URL lacks {', '.join(missing)}; a SAS from the datastore's "
                "listSecrets carries sv, sp, se, skoid and sig.",
                target="sig",
            )
        if query["sv"] != SIGNED_VERSION:
            raise AuthenticationError(
                f"Signed version sv={query['sv'][:40]!r} is not accepted; accepted: "
                f"{SIGNED_VERSION} (a SAS from this server's listSecrets).",
                target="sv",
            )
        try:
            expires_on = datetime.strptime(query["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise AuthenticationError(
                "The signed expiry 'se' is not a time.", target="se"
            ) from None
        if expires_on <= utcnow():
            raise AuthenticationError(
                "The signature has expired; ask listSecrets for a new one.", target="se"
            )
        return SignedGrant(query["skoid"], "", query["sp"], expires_on)

    def verify(self, query: dict[str, str], scope: str, generation: int) -> SignedGrant:
        """Check the signature for ``scope`` and the identity's current ``generation``.

        Raises:
            AuthenticationError: as :meth:`claims`, or the signature does not match (another
                scope, changed fields, or the identity's tokens were revoked since).
        """
        grant = self.claims(query)
        expected = self._signature(scope, query["sp"], query["se"], grant.identity_id, generation)
        if not hmac.compare_digest(expected, query["sig"]):
            raise AuthenticationError(
                "The signature does not match: the URL was changed, is for another resource, "
                "or its identity's tokens were revoked since it was issued.",
                target="sig",
            )
        return SignedGrant(grant.identity_id, scope, grant.permissions, grant.expires_on)
