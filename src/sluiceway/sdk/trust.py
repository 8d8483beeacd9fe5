"""Which certificates the SDK and ``sluice`` trust for an https server, in this order:

1. ``ca_bundle=`` (``MLClient``, ``Connection``), or ``sluice --ca-bundle PATH``;
2. ``$SLUICEWAY_CA_BUNDLE``;
3. the workspace home's bundle (``<home>/tls/ca-bundle.pem``), when the server is the one the
   home recorded: a ``sluice server start --tls`` with its self-signed certificate;
4. ``$REQUESTS_CA_BUNDLE``, then ``$SSL_CERT_FILE``, as azure-ai-ml's clients read them;
5. the public roots (certifi).

A plain-http server needs none of them.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sluiceway.errors import ValidationError
from sluiceway.home import WorkspaceHome, default_home
from sluiceway.sdk.server_address import same_origin

CA_BUNDLE_ENV = "SLUICEWAY_CA_BUNDLE"
_OPTION: ContextVar[str | None] = ContextVar("sluiceway_ca_bundle", default=None)


@contextmanager
def trusting(bundle: str | os.PathLike[str] | None) -> Iterator[None]:
    """Trust ``bundle`` for every server reached inside (``sluice --ca-bundle``)."""
    token = _OPTION.set(str(bundle) if bundle else None)
    try:
        yield
    finally:
        _OPTION.reset(token)


def server_trust(
    url: str,
    *,
    ca_bundle: str | os.PathLike[str] | None = None,
    home: WorkspaceHome | None = None,
) -> ssl.SSLContext | bool:
    """What verifies the server at ``url`` (True: the public roots).

    Raises:
        ValidationError: a bundle named by an argument or a setting cannot be read.
    """
    if not url.lower().startswith("https:"):
        return True
    named = (
        ("ca_bundle", str(ca_bundle) if ca_bundle else None),
        ("--ca-bundle", _OPTION.get()),
        (f"${CA_BUNDLE_ENV}", os.environ.get(CA_BUNDLE_ENV)),
    )
    for source, path in named:
        if path:
            return _context(path, source)
    workspace = home or WorkspaceHome(default_home())
    if workspace.ca_bundle.exists() and same_origin(url, workspace.read_server_address()):
        return _context(str(workspace.ca_bundle), "the workspace home's CA bundle")
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        path = os.environ.get(variable)
        if path:
            return _context(path, f"${variable}")
    return True


def _context(path: str, source: str) -> ssl.SSLContext:
    bundle = Path(path).expanduser()
    try:
        return ssl.create_default_context(cafile=str(bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ValidationError(
            f"The CA bundle {str(bundle)!r} ({source}) cannot be read as PEM certificates: "
            f"{exc}. Give a PEM file, such as the <home>/tls/ca-bundle.pem that "
            "`sluice server start --tls` writes.",
            target=source,
        ) from None
