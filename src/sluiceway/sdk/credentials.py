"""Credentials that get Sluiceway tokens, shaped like ``azure.identity``'s.

:class:`ClientSecretCredential` exchanges a service principal's client id and secret for a
token at the server's ``POST /oauth2/token`` and renews it five minutes before it expires.
:class:`DefaultAzureCredential` is whatever the CLI would use: ``$SLUICEWAY_TOKEN``, else the
``sluice login`` stored for the server, else the workspace home's owner token.
:class:`AzureCliCredential` is the ``sluice login`` only. Each has ``get_token(*scopes)``
returning an :class:`AccessToken`; the scopes are accepted and ignored. Passed to ``MLClient``,
a credential is asked for a token for that client's server.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx

from sluiceway.errors import AuthenticationError, ServerUnavailableError
from sluiceway.home import WorkspaceHome
from sluiceway.sdk.login_store import CLIENT_SECRET, LoginStore, StoredLogin, server_key

#: Gives the bearer token to send now, renewed when due.
TokenProvider = Callable[[], str]
#: A token is renewed when it has less than this many seconds left.
REFRESH_MARGIN = 300
#: Assumed lifetime of a token whose expiry cannot be read.
UNKNOWN_LIFETIME = 3600


class AccessToken(NamedTuple):
    """A token and its expiry in seconds since the epoch, as ``azure.core``'s."""

    token: str
    expires_on: int


def _now() -> float:
    return time.time()


def token_expiry(token: str) -> int | None:
    """The ``exp`` a JWT claims (read, not verified), or None when it has none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return int(exp) if isinstance(exp, int | float) else None


def access_token(token: str) -> AccessToken:
    """An :class:`AccessToken` for a token string, with the expiry it claims."""
    return AccessToken(token, token_expiry(token) or int(_now()) + UNKNOWN_LIFETIME)


def request_client_token(
    endpoint: str,
    client_id: str,
    client_secret: str,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> AccessToken:
    """Exchange client credentials for a token at ``<endpoint>/oauth2/token``.

    Raises:
        AuthenticationError: the server refused the client id or secret.
        ServerUnavailableError: the server could not be reached.
    """
    url = endpoint.rstrip("/") + "/oauth2/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": "https://ml.azure.com/.default",
    }
    try:
        from sluiceway.sdk.trust import server_trust

        verify = server_trust(endpoint)
        with httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=False, verify=verify
        ) as client:
            response = client.post(url, data=form)
    except httpx.TransportError as exc:
        raise ServerUnavailableError(
            f"Could not reach the token endpoint {url} ({type(exc).__name__}: {exc})."
        ) from None
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        detail = body.get("error_description") if isinstance(body, dict) else None
        code = body.get("error") if isinstance(body, dict) else None
        raise AuthenticationError(
            f"The server at {endpoint} refused the client credentials of {client_id!r}: "
            f"{detail or f'HTTP {response.status_code}'}" + (f" ({code})" if code else ""),
            target="credential",
        )
    token = str(body["access_token"])
    expires_in = body.get("expires_in")
    lifetime = int(expires_in) if isinstance(expires_in, int | float) else UNKNOWN_LIFETIME
    return AccessToken(token, int(_now()) + lifetime)


class _RenewingToken:
    """A token renewed by ``fetch`` when it is due; ``saved`` hears of each new one."""

    def __init__(
        self,
        fetch: Callable[[], AccessToken],
        cached: AccessToken | None = None,
        saved: Callable[[AccessToken], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._cached = cached
        self._saved = saved
        self._lock = threading.Lock()

    def get(self) -> AccessToken:
        with self._lock:
            cached = self._cached
            if cached is None or cached.expires_on - REFRESH_MARGIN <= _now():
                cached = self._cached = self._fetch()
                if self._saved is not None:
                    self._saved(cached)
            return cached

    def __call__(self) -> str:
        return self.get().token


class SluicewayCredential(ABC):
    """Base of the credentials here: ``get_token()`` for a server.

    Args:
        endpoint: The server; default: the one the SDK would find (``$SLUICEWAY_ENDPOINT``,
            ``config.json``, the local server). ``MLClient`` passes its own.
        home: The workspace home to find a local server and the owner token in.

    ``bound_to_server`` says whether the credential belongs to one server (a ``sluice login``)
    rather than being given by the caller (a client secret): a given one goes only to an
    address the caller gave too, or to the home's server (:mod:`sluiceway.sdk.server_address`).
    """

    bound_to_server = False

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        home: WorkspaceHome | str | os.PathLike[str] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._home = home

    @abstractmethod
    def provider_for(
        self, endpoint: str, transport: httpx.BaseTransport | None = None
    ) -> TokenProvider | None:
        """What gives tokens for ``endpoint``; None to use the SDK's default order."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token for the server (the scopes are accepted and ignored)."""
        from sluiceway.sdk.connection import locate_server, resolve_settings

        address = locate_server(self._endpoint, home=self._home)
        if not self.bound_to_server and not address.chosen:
            raise address.refuse(f"the credential {type(self).__name__}")
        provider = self.provider_for(address.url)
        if provider is None:
            settings = resolve_settings(self._endpoint, home=self._home)
            provider = settings.provider or (lambda: settings.token)
        if isinstance(provider, _RenewingToken):
            return provider.get()
        return access_token(provider())

    def close(self) -> None:  # noqa: B027 - nothing to release; azure.identity has it
        """Nothing to release; for ``azure.identity`` compatibility."""

    def __enter__(self) -> SluicewayCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClientSecretCredential(SluicewayCredential):
    """A service principal's client id and secret, exchanged for tokens at
    ``POST /oauth2/token`` and renewed before they expire.

    Args:
        tenant_id: Accepted for ``azure.identity`` compatibility; a server is one tenant.
        client_id: The service principal's client id (``sluice identity create
            service-principal`` prints it).
        client_secret: Its secret.
        endpoint: The server; default: the client's, or the one the SDK would find.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        endpoint: str | None = None,
        home: WorkspaceHome | str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(endpoint=endpoint, home=home)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self._tokens: dict[str, _RenewingToken] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientSecretCredential(client_id={self.client_id!r})"

    def provider_for(
        self, endpoint: str, transport: httpx.BaseTransport | None = None
    ) -> TokenProvider:
        key = server_key(endpoint)
        with self._lock:
            renewing = self._tokens.get(key)
            if renewing is None:
                renewing = self._tokens[key] = _RenewingToken(
                    lambda: request_client_token(
                        endpoint, self.client_id, self._client_secret, transport=transport
                    )
                )
            return renewing


class DefaultAzureCredential(SluicewayCredential):
    """The credential the CLI uses: ``$SLUICEWAY_TOKEN``, else ``config.json``'s token, else
    the ``sluice login`` for the server, else the workspace home's owner token; each only for
    the server it belongs to (:mod:`sluiceway.sdk.server_address`)."""

    bound_to_server = True

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        home: WorkspaceHome | str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(endpoint=endpoint, home=home)

    def provider_for(
        self, endpoint: str, transport: httpx.BaseTransport | None = None
    ) -> TokenProvider | None:
        return None


class AzureCliCredential(SluicewayCredential):
    """The credential ``sluice login`` stored for the server (as Azure's is ``az login``'s)."""

    bound_to_server = True

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        home: WorkspaceHome | str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(endpoint=endpoint, home=home)

    def provider_for(
        self, endpoint: str, transport: httpx.BaseTransport | None = None
    ) -> TokenProvider:
        provider = stored_login_provider(endpoint, transport=transport)
        if provider is None:
            raise AuthenticationError(
                f"No `sluice login` for the server at {endpoint}: run `sluice login "
                f"--endpoint {endpoint} ...` first.",
                target="credential",
            )
        return provider


def stored_login_provider(
    endpoint: str,
    *,
    store: LoginStore | None = None,
    transport: httpx.BaseTransport | None = None,
) -> TokenProvider | None:
    """Tokens from the ``sluice login`` stored for ``endpoint``, or None when there is none.

    A stored service principal's token is renewed when due, and the new one stored.

    Raises:
        AuthenticationError: the stored token has expired (and cannot be renewed).
    """
    logins = store or LoginStore()
    login = logins.get(endpoint)
    if login is None:
        return None
    if login.kind == CLIENT_SECRET and login.client_id and login.client_secret:
        client_id, secret = login.client_id, login.client_secret
        cached = (
            AccessToken(login.access_token, login.expires_on)
            if login.access_token and login.expires_on
            else None
        )

        def save(fresh: AccessToken, current: StoredLogin = login) -> None:
            try:
                logins.save(current.with_token(fresh.token, fresh.expires_on))
            except OSError:
                pass  # the token still works; it is only not kept for the next run

        return _RenewingToken(
            lambda: request_client_token(endpoint, client_id, secret, transport=transport),
            cached,
            save,
        )
    token = login.access_token
    if not token:
        return None
    if login.expires_on is not None and login.expires_on <= _now():
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(login.expires_on))
        raise AuthenticationError(
            f"The `sluice login` token for {endpoint} expired at {when}: run `sluice login` "
            "again, or `sluice logout` to use the workspace home's token.",
            target="credential",
        )
    return lambda: token
