"""Which hosts the server may connect to on a caller's behalf.

A storage URL in an input or a data asset, and a datastore's endpoint, make the server open
connections where a caller says. Hosts that resolve to loopback, private (RFC 1918,
``fc00::/7``), link-local (``169.254.0.0/16``, ``fe80::/10``), unspecified or otherwise
non-global addresses, and cloud metadata services, are refused unless the operator allows them
with ``SLUICEWAY_ALLOW_PRIVATE_NETWORK``:

- ``false`` (the default): none;
- ``true``: every private address, but not the cloud metadata services;
- a comma-separated list of hosts, addresses and networks (``127.0.0.1,10.0.0.0/8,minio``):
  a URL whose host is named, or all of whose addresses lie in a named network. This is the
  only way to allow a metadata service (``169.254.169.254``).

The blob emulator endpoints (``SLUICEWAY_BLOB_EMULATOR_ENDPOINTS``) are operator settings and
always allowed, as is the default datastore that ``SLUICEWAY_DEFAULT_DATASTORE`` configures.
Every address a host resolves to is checked; a host that does not resolve is let through, as
nothing can be reached there.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from sluiceway.errors import AddressNotAllowedError, ValidationError
from sluiceway.storage.redaction import redact_url

__all__ = ["SETTING", "PrivateNetworkPolicy"]

SETTING = "SLUICEWAY_ALLOW_PRIVATE_NETWORK"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.169.254/32",  # AWS, Azure, GCP, OpenStack, ...
        "169.254.170.2/32",  # AWS ECS task credentials
        "fd00:ec2::254/128",  # AWS over IPv6
        "100.100.100.200/32",  # Alibaba Cloud
    )
)
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_HOST_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class PrivateNetworkPolicy:
    """What ``SLUICEWAY_ALLOW_PRIVATE_NETWORK`` allows, plus the operator's own endpoints."""

    allow_all: bool = False
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    #: ``(host, port)`` of endpoints the operator configured elsewhere (blob emulators).
    endpoints: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, value: str) -> PrivateNetworkPolicy:
        """Read the setting: ``true``, ``false`` or a comma-separated list of hosts and networks.

        Raises:
            ValueError: an entry is neither a host name, an address nor a network.
        """
        text = value.strip().lower()
        if text in _TRUE:
            return cls(allow_all=True)
        if text in _FALSE:
            return cls()
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip().strip("[]") for e in text.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if _HOST_RE.fullmatch(entry) is None:
                raise ValueError(
                    f"{SETTING}: {entry!r} is not a host name, an IP address or a network; give "
                    "true, false, or a comma-separated list such as '127.0.0.1,10.0.0.0/8,minio'."
                )
            hosts.add(entry.rstrip("."))
        return cls(networks=tuple(networks), hosts=frozenset(hosts))

    def with_endpoints(self, urls: Iterable[str]) -> PrivateNetworkPolicy:
        """This policy, also allowing the hosts and ports of ``urls`` (operator settings)."""
        allowed = set(self.endpoints)
        for url in urls:
            where = _host_and_port(url)
            if where is not None:
                allowed.add(where)
        return replace(self, endpoints=frozenset(allowed))

    def check_url(self, url: str, *, what: str, target: str | None = None) -> None:
        """Refuse ``url`` if its host is private and not allowed.

        Args:
            url: The URL the server would connect to.
            what: How the message names it (``"Input 'x'"``, ``"endpoint_url"``).
            target: The error's target.

        Raises:
            ValidationError: naming the URL, the address and the setting that allows it.
        """
        where = _host_and_port(url)
        if where is None:
            return
        host, port = where
        reason = self.refusal(host, port, _addresses(host, port))
        if reason is not None:
            shown = redact_url(url)
            raise ValidationError(f"{what} {shown!r} is not accepted: {reason}", target=target)

    def check_connection(self, host: str, port: int, addresses: Iterable[str]) -> None:
        """Check, at connect time, the addresses a storage client is about to connect to.

        Storage clients call this through :mod:`sluiceway.storage.egress` with the addresses
        they resolved ``host`` to, and then connect to those addresses only; so a redirect to
        another host, or a name that resolves elsewhere than when it was registered, is
        checked too.

        Raises:
            AddressNotAllowedError: naming the host, the address and the setting.
        """
        host = host.lower().rstrip(".").strip("[]")
        found: set[IPAddress] = set()
        for text in addresses:
            try:
                found.add(_plain(ipaddress.ip_address(text.split("%", 1)[0])))
            except ValueError:
                raise AddressNotAllowedError(
                    f"{host}:{port}", f"{text!r} is not an IP address."
                ) from None
        reason = self.refusal(host, port, found)
        if reason is not None:
            raise AddressNotAllowedError(f"{host}:{port}", reason)

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, each checked: a client connects to these, and resolves
        no more.

        Raises:
            AddressNotAllowedError: one of them is not allowed.
            OSError: the host does not resolve.
        """
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
        self.check_connection(host, port, addresses)
        return addresses

    def refusal(self, host: str, port: int, addresses: Iterable[IPAddress]) -> str | None:
        """Why ``host:port``, which resolves to ``addresses``, may not be reached (None if it
        may): the address, what kind it is, and the setting that would allow it."""
        if (host, port) in self.endpoints or host in self.hosts:
            return None
        if host in METADATA_HOSTS:
            return (
                f"{host!r} is a cloud metadata service, which the server does not reach for a "
                f"caller unless {SETTING} names it."
            )
        for address in sorted(addresses, key=lambda a: (a.version, a)):
            kind = _private_kind(address)
            if kind is None or any(address in n for n in self.networks):
                continue
            metadata = any(address in n for n in METADATA_NETWORKS)
            if self.allow_all and not metadata:
                continue
            resolved = "is" if host == str(address) else f"resolves to {address},"
            if metadata:
                rule = f"unless {SETTING} names {address}"
                kind = "a cloud metadata"
            else:
                example = host if host == str(address) else f"{host}' or '{address}"
                rule = (
                    f"unless {SETTING} allows it: true, or a list of hosts and networks such as "
                    f"'{example}'"
                )
            return (
                f"its host {host!r} {resolved} {kind} address, and the server does not connect "
                f"to such addresses for a caller {rule}."
            )
        return None


def _host_and_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError(f"{redact_url(url)!r} is not a valid URL.", target="url") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    return host, port or _DEFAULT_PORTS.get(parts.scheme.lower(), 443)


def _addresses(host: str, port: int) -> set[IPAddress]:
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return set()
    return {_plain(ipaddress.ip_address(str(a[0]).split("%", 1)[0])) for *_, a in found}


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _private_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is (with its article), or None for a global one."""
    if address.is_unspecified:
        return "an unspecified"
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_private:
        return "a private"
    if address.is_multicast:
        return "a multicast"
    if not address.is_global:
        return "a reserved"
    return None
