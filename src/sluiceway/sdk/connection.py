"""How the SDK reaches a server: its URL, a bearer token, and the HTTP calls themselves.

:func:`resolve_connection` finds the server and the token, each in this order:

1. the arguments (``endpoint=``, ``token=``, or a credential of :mod:`sluiceway.identity`);
2. ``$SLUICEWAY_ENDPOINT`` and ``$SLUICEWAY_TOKEN``;
3. ``config.json`` in the current folder (or ``.azureml/config.json``), with keys
   ``endpoint`` and ``token``; Azure's ``subscription_id``, ``resource_group`` and
   ``workspace_name`` may be there too and are kept;
4. for the token only: the credential ``sluice login`` stored for that server
   (:mod:`sluiceway.sdk.login_store`);
5. the workspace home (``$SLUICEWAY_HOME``, default ``~/.sluiceway``): the URL a running
   ``sluice server start`` wrote to ``server.json`` and the owner's ``token`` file.

A token is taken from a source only when it may be sent to the server found: the home's token
only to the home's server, a ``config.json`` found in the current folder gets none of the
caller's tokens, and so on (:mod:`sluiceway.sdk.server_address`). Redirects are not followed.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import tempfile
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from sluiceway.errors import (
    AuthenticationError,
    ServerUnavailableError,
    ValidationError,
    error_from_response,
)
from sluiceway.home import WorkspaceHome, default_home
from sluiceway.sdk.credentials import SluicewayCredential, TokenProvider, stored_login_provider
from sluiceway.sdk.server_address import AddressSource, ServerAddress, same_origin
from sluiceway.sdk.trust import server_trust

ENDPOINT_ENV = "SLUICEWAY_ENDPOINT"
TOKEN_ENV = "SLUICEWAY_TOKEN"
CONFIG_FILE_NAME = "config.json"
#: The scope Azure's SDK asks a credential for; a credential for Sluiceway may ignore it.
TOKEN_SCOPE = "https://ml.azure.com/.default"
_CONFIG_KEYS = ("endpoint", "token", "subscription_id", "resource_group", "workspace_name")
_START_HINT = "start a local server with `sluice server start`"


def segment(value: str) -> str:
    """One path segment of a URL (a resource name), percent-encoded."""
    return quote(str(value), safe="")


def file_path(value: str) -> str:
    """A file path inside a URL, percent-encoded but keeping its ``/``."""
    return quote(str(value).lstrip("/"), safe="/")


class _Bearer(httpx.Auth):
    """Sets ``Authorization: Bearer`` on each request, asking the provider every time so that
    a renewing credential's new token is used as soon as it has one."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._provider()}"
        yield request


class Connection:
    """An authenticated HTTP session with one Sluiceway server.

    Args:
        endpoint: The server's base URL, e.g. ``http://127.0.0.1:8080``.
        token: The bearer token sent with every request, or a function that gives the token
            to send (a renewing credential).
        transport: An httpx transport to use instead of the network (tests).
        timeout: Seconds to wait for a response (connecting gets at most 10).
        verify: What verifies an https server; default: as :mod:`sluiceway.sdk.trust` finds
            it for ``endpoint``.
    """

    def __init__(
        self,
        endpoint: str,
        token: str | TokenProvider,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 300.0,
        verify: ssl.SSLContext | bool | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token: TokenProvider = token if callable(token) else (lambda: token)
        self._client = httpx.Client(
            base_url=self.endpoint,
            headers={"User-Agent": "sluiceway-sdk"},
            auth=_Bearer(self._token),
            # A redirect could lead the token to another server: answer it with an error.
            follow_redirects=False,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            verify=server_trust(self.endpoint) if verify is None else verify,
        )

    @property
    def token(self) -> str:
        """The bearer token sent now."""
        return self._token()

    def close(self) -> None:
        self._client.close()

    def __del__(self) -> None:
        # Code written for Azure never closes its MLClient; close the pooled sockets when the
        # connection goes away rather than leave them to the garbage collector's warnings.
        client = getattr(self, "_client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Connection(endpoint={self.endpoint!r})"

    def _unavailable(self, exc: httpx.TransportError) -> ServerUnavailableError:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return ServerUnavailableError(
                f"The certificate of the Sluiceway server at {self.endpoint} is not trusted "
                f"({exc}). For a server started with `sluice server start --tls`, trust its "
                "<home>/tls/ca-bundle.pem: ca_bundle= (--ca-bundle), $SLUICEWAY_CA_BUNDLE or "
                "$REQUESTS_CA_BUNDLE (the home's own server is trusted by itself)."
            )
        if isinstance(exc, httpx.ConnectError):
            return ServerUnavailableError(
                f"Could not connect to the Sluiceway server at {self.endpoint} ({exc}). "
                f"Is it running? Start a local server with `sluice server start`, or set "
                f"{ENDPOINT_ENV} (endpoint= in the SDK) to use another server."
            )
        return ServerUnavailableError(
            f"The Sluiceway server at {self.endpoint} did not answer ({type(exc).__name__}: "
            f"{exc}). Check that it is running (`sluice server start`) and reachable."
        )

    def _error(self, response: httpx.Response) -> Exception:
        if response.is_redirect:
            return ServerUnavailableError(
                f"The server at {self.endpoint} answered {response.request.method} "
                f"{response.request.url.path} with a redirect ({response.status_code}) to "
                f"{response.headers.get('location')!r}; the SDK does not follow redirects, so "
                "that the token goes to no other server. Use the address the server answers "
                "at as the endpoint."
            )
        try:
            body: Any = response.json()
        except ValueError:
            text = response.text.strip()[:500]
            body = {
                "error": {
                    "message": f"HTTP {response.status_code}: {text or response.reason_phrase}"
                }
            }
        return error_from_response(response.status_code, body)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        expected: tuple[int, ...] = (200, 201, 204),
    ) -> Any:
        """Send one request and return its JSON answer (None when the answer is empty).

        Raises:
            SluicewayError: the server's error, rebuilt by ``error_from_response``
                (``ResourceNotFoundError`` for 404, ``ValidationError`` for 400, ...).
            ServerUnavailableError: the server could not be reached.
        """
        try:
            response = self._client.request(
                method,
                path,
                json=json,
                params=_clean_params(params),
                headers=dict(headers) if headers else None,
                content=content,
            )
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from None
        if response.status_code not in expected:
            raise self._error(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def stream(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[bytes]:
        """The bytes of a file the server sends, chunk by chunk.

        Raises:
            SluicewayError: the server's error (raised on the first ``next()``).
            ServerUnavailableError: the server could not be reached.
        """
        try:
            with self._client.stream(method, path, params=_clean_params(params)) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._error(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from None

    def download_to(
        self, path: str, dest: str | os.PathLike[str], *, params: Mapping[str, Any] | None = None
    ) -> int:
        """Write the file the server sends for ``GET path`` to ``dest``; return its size.

        The file appears complete or not at all: it is written next to ``dest`` and renamed.
        """
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in self.stream("GET", path, params=params):
                    fh.write(chunk)
                    size += len(chunk)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return size


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {k: v for k, v in params.items() if v is not None}


# -- credentials --------------------------------------------------------------------------


@runtime_checkable
class AccessTokenLike(Protocol):
    token: str


@runtime_checkable
class TokenCredential(Protocol):
    """Azure's credential shape: ``get_token(*scopes)`` returns an object with ``.token``."""

    def get_token(self, *scopes: str) -> Any: ...


Credential = str | TokenCredential


def is_azure_identity(credential: object) -> bool:
    """Whether ``credential`` comes from an Azure library (``azure.identity`` and the like).

    An Azure sign-in yields Azure AD tokens, which a Sluiceway server does not accept; code
    ported from Azure still passes ``DefaultAzureCredential()``, so such a credential is only
    asked for a token when no Sluiceway token is configured.
    """
    return type(credential).__module__.split(".")[0] == "azure"


def token_from_credential(credential: Credential | None) -> str | None:
    """The bearer token a credential yields.

    Raises:
        ValidationError: ``credential`` is neither a string nor has ``get_token``.
        AuthenticationError: ``get_token`` failed or returned no token.
    """
    if credential is None:
        return None
    if isinstance(credential, str):
        return credential.strip() or None
    if not isinstance(credential, TokenCredential):
        raise ValidationError(
            f"credential {type(credential).__name__} is not accepted: give a token string, or "
            "an object with get_token(*scopes) returning an object with .token",
            target="credential",
        )
    try:
        access = credential.get_token(TOKEN_SCOPE)
    except Exception as exc:
        raise AuthenticationError(
            f"credential {type(credential).__name__} could not get a token: {exc}",
            target="credential",
        ) from exc
    token = access.token if isinstance(access, AccessTokenLike) else access
    if not isinstance(token, str) or not token.strip():
        raise AuthenticationError(
            f"credential {type(credential).__name__}.get_token() returned no token",
            target="credential",
        )
    return token.strip()


# -- finding the server -------------------------------------------------------------------


@dataclass(frozen=True)
class ClientConfig:
    """What a ``config.json`` says; every key is optional."""

    endpoint: str | None = None
    token: str | None = None
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace_name: str | None = None
    source: Path | None = None


def read_config_file(path: str | os.PathLike[str]) -> ClientConfig:
    """Read a ``config.json`` (Azure's keys plus ``endpoint`` and ``token``).

    Raises:
        ValidationError: the file is not a JSON object, or a value is not a string.
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(
            f"config file {str(source)!r} does not exist", target="path"
        ) from None
    except (OSError, ValueError) as exc:
        raise ValidationError(f"config file {str(source)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"config file {str(source)!r} must hold a JSON object")
    values: dict[str, str | None] = {}
    for key in _CONFIG_KEYS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ValidationError(
                f"config file {str(source)!r}: {key!r} must be a string, got {value!r}",
                target=key,
            )
        values[key] = value or None
    return ClientConfig(
        endpoint=values["endpoint"],
        token=values["token"],
        subscription_id=values["subscription_id"],
        resource_group=values["resource_group"],
        workspace_name=values["workspace_name"],
        source=source,
    )


def find_config_file(
    path: str | os.PathLike[str] | None = None, file_name: str | None = None
) -> Path | None:
    """The ``config.json`` named by ``path`` (a file or a folder), else the current folder's.

    Looks for ``<folder>/<file_name>`` and ``<folder>/.azureml/<file_name>``. Returns None
    when there is none; raises when an explicit ``path`` has none.
    """
    name = file_name or CONFIG_FILE_NAME
    if path is not None:
        given = Path(path).expanduser()
        if given.is_file():
            return given
        for candidate in (given / name, given / ".azureml" / name):
            if candidate.is_file():
                return candidate
        raise ValidationError(
            f"No {name} found at {str(given)!r} (looked for the file itself, {name} and "
            f".azureml/{name} in it)",
            target="path",
        )
    here = Path.cwd()
    for candidate in (here / name, here / ".azureml" / name):
        if candidate.is_file():
            return candidate
    return None


def _home_of(home: WorkspaceHome | str | os.PathLike[str] | None) -> WorkspaceHome:
    if isinstance(home, WorkspaceHome):
        return home
    if home is None:
        return WorkspaceHome(default_home())
    return WorkspaceHome(Path(home).expanduser())


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class ResolvedSettings:
    """Where the server is, the token to use, and the Azure-style workspace names.

    ``provider``, when set, gives the token to send from now on (a credential that renews
    its token); ``token`` is the one it gave first.
    """

    endpoint: str
    token: str
    config: ClientConfig
    provider: TokenProvider | None = None
    #: What verifies the server when it is https (:mod:`sluiceway.sdk.trust`).
    verify: ssl.SSLContext | bool = True


def _locate(
    endpoint: str | None, config: ClientConfig, workspace: WorkspaceHome, *, named: bool
) -> ServerAddress:
    home_server = workspace.read_server_address()
    candidates = (
        (endpoint, AddressSource.ARGUMENT, None),
        (_env(ENDPOINT_ENV), AddressSource.ENVIRONMENT, None),
        (config.endpoint, AddressSource.CONFIG_FILE, config.source),
        (home_server, AddressSource.HOME, workspace.server_file),
    )
    for url, source, file in candidates:
        if url:
            return ServerAddress(url, source, file, named=named, home_server=home_server)
    raise ServerUnavailableError(
        "No Sluiceway server found: pass endpoint=, set "
        f'{ENDPOINT_ENV}, put "endpoint" in config.json, or {_START_HINT} (it records '
        f"its URL in {workspace.server_file})."
    )


def locate_server(
    endpoint: str | None = None,
    home: WorkspaceHome | str | os.PathLike[str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> ServerAddress:
    """The server's URL, found in the documented order, and where it was found.

    Raises:
        ServerUnavailableError: no server URL was found anywhere.
    """
    found = find_config_file(config_path)
    config = read_config_file(found) if found is not None else ClientConfig()
    return _locate(endpoint, config, _home_of(home), named=config_path is not None)


def resolve_endpoint(
    endpoint: str | None = None,
    home: WorkspaceHome | str | os.PathLike[str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> str:
    """The server's URL, found in the documented order.

    Raises:
        ServerUnavailableError: no server URL was found anywhere.
    """
    return locate_server(endpoint, home, config_path).url


def resolve_settings(
    endpoint: str | None = None,
    token: str | None = None,
    home: WorkspaceHome | str | os.PathLike[str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
    *,
    fallback_credential: Credential | None = None,
    credential: SluicewayCredential | None = None,
    transport: httpx.BaseTransport | None = None,
    ca_bundle: str | os.PathLike[str] | None = None,
) -> ResolvedSettings:
    """Find the server and token in the documented order (see the module's docstring).

    ``credential`` (a credential of :mod:`sluiceway.identity`) comes right after ``token``;
    ``fallback_credential`` is asked for a token only when nothing else gave one. A token is
    taken only from a source it may be sent to (:mod:`sluiceway.sdk.server_address`).

    Raises:
        ServerUnavailableError: no server URL was found anywhere.
        AuthenticationError: a server was found but no token for it, a token given for it
            belongs to another server, or the stored login expired.
    """
    found = find_config_file(config_path)
    config = read_config_file(found) if found is not None else ClientConfig()
    workspace = _home_of(home)
    address = _locate(endpoint, config, workspace, named=config_path is not None)
    withheld: list[str] = []
    provider: TokenProvider | None = None
    resolved_token: str | None = None
    if token:
        if not address.chosen:
            raise address.refuse("the token you gave")
        resolved_token = token
    elif credential is not None:
        if not credential.bound_to_server and not address.chosen:
            raise address.refuse(f"the credential {type(credential).__name__}")
        provider = credential.provider_for(address.url, transport)
        resolved_token = provider() if provider else None
    env_token = _env(TOKEN_ENV)
    if not resolved_token and env_token:
        if address.chosen:
            resolved_token = env_token
        else:
            withheld.append(f"${TOKEN_ENV} goes only to an endpoint given with it")
    if not resolved_token and config.token:
        if config.endpoint is None or same_origin(address.url, config.endpoint):
            resolved_token = config.token
        else:
            withheld.append(f"the token in {config.source} is for {config.endpoint}")
    if not resolved_token:
        provider = stored_login_provider(address.url, transport=transport)
        resolved_token = provider() if provider else None
    home_token = None if resolved_token else workspace.read_token()
    if home_token:
        if address.is_home_server:
            resolved_token = home_token
        else:
            withheld.append(f"the workspace home's token is for {address.home_server}")
    if not resolved_token and fallback_credential is not None and address.chosen:
        resolved_token = token_from_credential(fallback_credential)
    if not resolved_token:
        if not address.chosen:
            raise address.no_credential(withheld)
        held_back = f" ({'; '.join(withheld)})" if withheld else ""
        raise AuthenticationError(
            f"No token for the Sluiceway server at {address.url}{held_back}: pass token= or a "
            f'credential, set {TOKEN_ENV}, put "token" in config.json, run `sluice login`, '
            f"or use the owner's token that `sluice server start` writes to {workspace.token}."
        )
    return ResolvedSettings(
        endpoint=address.url,
        token=resolved_token,
        config=config,
        provider=provider,
        verify=server_trust(address.url, ca_bundle=ca_bundle, home=workspace),
    )


def resolve_connection(
    endpoint: str | None = None,
    token: str | None = None,
    home: WorkspaceHome | str | os.PathLike[str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    ca_bundle: str | os.PathLike[str] | None = None,
) -> Connection:
    """A :class:`Connection` to the server found in the documented order, trusting its
    certificate as :mod:`sluiceway.sdk.trust` says (``ca_bundle`` first).

    Raises:
        ServerUnavailableError: no server URL was found anywhere.
        AuthenticationError: a server was found but no token.
    """
    settings = resolve_settings(
        endpoint, token, home, config_path, transport=transport, ca_bundle=ca_bundle
    )
    return Connection(
        settings.endpoint,
        settings.provider or settings.token,
        transport=transport,
        verify=settings.verify,
    )
