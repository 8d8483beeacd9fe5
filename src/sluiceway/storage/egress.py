"""Connections storage clients open, checked against the network policy when they connect.

Checking a URL when a datastore is registered or an input is given is not enough: storage may
answer with a redirect to another host, and a host name may resolve elsewhere later (DNS
rebinding). So every storage client of the server connects through one of these seams, which
resolve the host once, check every address with
:meth:`~sluiceway.storage.network.PrivateNetworkPolicy.check_connection`, and connect to the
checked addresses only:

- aiohttp (adlfs through azure-core's ``AioHttpTransport``; s3fs through aiobotocore):
  :class:`guarded_resolver`, and :class:`GuardedConnector`, which also checks IP literals
  (aiohttp does not resolve those);
- requests (azure-storage-blob's synchronous client, through azure-core's
  ``RequestsTransport``): :func:`guarded_session`, whose connections connect to checked
  addresses.

A refused connection raises :class:`~sluiceway.errors.AddressNotAllowedError`, which is not an
``OSError``, so clients do not retry it; :func:`refusal_in` finds it in the errors a client
wraps it in.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sluiceway.errors import AddressNotAllowedError
from sluiceway.storage.network import PrivateNetworkPolicy

if TYPE_CHECKING:
    import aiohttp
    import requests

__all__ = [
    "guarded_aiohttp_connector",
    "guarded_azure_transport",
    "guarded_resolver",
    "guarded_s3_session",
    "guarded_session",
    "refusal_in",
]


def refusal_in(exc: BaseException) -> AddressNotAllowedError | None:
    """The refused connection behind ``exc``, if a client wrapped one in its own errors."""
    seen: BaseException | None = exc
    for _ in range(20):  # causes can loop
        if seen is None:
            return None
        if isinstance(seen, AddressNotAllowedError):
            return seen
        inner = getattr(seen, "error", None) or getattr(seen, "inner_exception", None)
        seen = inner if isinstance(inner, BaseException) else seen.__cause__ or seen.__context__
    return None


def _resolver_class() -> type[Any]:
    from aiohttp.abc import AbstractResolver

    class _guarded_resolver(AbstractResolver):
        """Resolves a host name once, and returns its addresses only if all are allowed."""

        def __init__(self, policy: PrivateNetworkPolicy) -> None:
            self._policy = policy

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[Any]:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, family=family, flags=socket.AI_ADDRCONFIG
            )
            results = [
                {
                    "hostname": host,
                    "host": str(sockaddr[0]),
                    "port": int(sockaddr[1]),
                    "family": fam,
                    "proto": proto,
                    "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                }
                for fam, _, proto, _, sockaddr in infos
                if fam in (socket.AF_INET, socket.AF_INET6)
            ]
            if not results:
                raise OSError(f"{host!r} has no address")
            self._policy.check_connection(host, port, [str(r["host"]) for r in results])
            return results

        async def close(self) -> None:
            return None

    return _guarded_resolver


def guarded_resolver(policy: PrivateNetworkPolicy) -> aiohttp.abc.AbstractResolver:
    """An aiohttp resolver that checks every address of a host name against ``policy``."""
    resolver: aiohttp.abc.AbstractResolver = _resolver_class()(policy)
    return resolver


def check_literals(connector: aiohttp.TCPConnector, policy: PrivateNetworkPolicy) -> None:
    """Make ``connector`` check IP-literal hosts too, and name the URL a refusal was for.

    Host names go through :func:`guarded_resolver`; aiohttp connects to an IP literal without a
    resolver, so ``_resolve_host``, where the connector turns any host into the addresses it
    connects to, checks those. The connector is patched, not subclassed, because aiobotocore
    makes its own.
    """
    from aiohttp.helpers import is_ip_address

    resolve_host = connector._resolve_host
    connect = connector.connect

    async def _resolve_host(host: str, port: int, traces: Sequence[Any] | None = None) -> Any:
        if is_ip_address(host):
            policy.check_connection(host, port, [host])
        return await resolve_host(host, port, traces=traces)

    async def _connect(req: Any, traces: Any, timeout: Any) -> Any:
        try:
            return await connect(req, traces, timeout)
        except AddressNotAllowedError as exc:
            raise exc.at(str(req.url.with_query(None))) from None

    connector._resolve_host = _resolve_host  # type: ignore[method-assign]
    connector.connect = _connect  # type: ignore[method-assign]


def guarded_aiohttp_connector(policy: PrivateNetworkPolicy, **kwargs: Any) -> aiohttp.TCPConnector:
    """An aiohttp connector whose every connection goes to an address ``policy`` allows."""
    import aiohttp

    connector = aiohttp.TCPConnector(resolver=guarded_resolver(policy), **kwargs)
    check_literals(connector, policy)
    return connector


def guarded_s3_session(policy: PrivateNetworkPolicy) -> type[Any]:
    """aiobotocore's aiohttp session class, with connectors made by
    :func:`guarded_aiohttp_connector`'s rules (``AioConfig(http_session_cls=...)``)."""
    from aiobotocore.httpsession import AIOHTTPSession  # type: ignore[import-untyped]

    class _GuardedSession(AIOHTTPSession):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            connector_args = dict(kwargs.get("connector_args") or {})
            kwargs["connector_args"] = {**connector_args, "resolver": guarded_resolver(policy)}
            super().__init__(*args, **kwargs)

        async def _create_connector(self, proxy_url: str | None) -> Any:
            connector = await super()._create_connector(proxy_url)
            check_literals(connector, policy)
            return connector

    return _GuardedSession


def guarded_azure_transport(policy: PrivateNetworkPolicy, **kwargs: Any) -> Any:
    """azure-core's aiohttp transport, connecting through :func:`guarded_aiohttp_connector`."""
    import aiohttp
    from azure.core.pipeline.transport import AioHttpTransport

    class _GuardedTransport(AioHttpTransport):  # type: ignore[misc]
        async def open(self) -> None:
            # The session binds the running loop, so it is made here, as the base class does.
            if getattr(self, "session", None) is None and self._session_owner:
                self.session = aiohttp.ClientSession(
                    connector=guarded_aiohttp_connector(policy),
                    trust_env=self._use_env_settings,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    auto_decompress=False,
                )
            await super().open()

    return _GuardedTransport(**kwargs)


def guarded_session(policy: PrivateNetworkPolicy) -> requests.Session:
    """A requests session whose connections go to addresses ``policy`` allows, and only to
    the addresses it checked (urllib3 would resolve the name again)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def new_conn(conn: Any, base: Any) -> socket.socket:
        name = conn._dns_host
        addresses = policy.resolve(name, conn.port)
        last: Exception | None = None
        for address in addresses:
            conn._dns_host = address  # the TLS server name stays conn.host
            try:
                sock: socket.socket = base(conn)
                return sock
            except OSError as exc:
                last = exc
            finally:
                conn._dns_host = name
        assert last is not None
        raise last

    class _Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return new_conn(self, HTTPConnection._new_conn)

    class _SecureConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return new_conn(self, HTTPSConnection._new_conn)

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Connection

    class _SecurePool(HTTPSConnectionPool):
        ConnectionCls = _SecureConnection

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _SecurePool}

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().send(request, *args, **kwargs)
            except AddressNotAllowedError as exc:
                raise exc.at(str(request.url).split("?", 1)[0]) from None

    session = requests.Session()
    adapter = _Adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
