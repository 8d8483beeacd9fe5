"""Start a server on a socket it binds itself, so port 0 picks a free port."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import ssl
import time
from pathlib import Path

import httpx

from sluiceway.config import Settings
from sluiceway.errors import ConflictError
from sluiceway.home import WorkspaceHome
from sluiceway.server.tls import ServerCertificate

logger = logging.getLogger("sluiceway.server")


def trust(home: WorkspaceHome) -> ssl.SSLContext | bool:
    """What verifies the home's own server (see :meth:`WorkspaceHome.trust`)."""
    return home.trust()


def running_server(home: WorkspaceHome) -> str | None:
    """The URL of a live server recorded in ``home``, or None."""
    url = home.read_server_address()
    if url is None:
        return None
    try:
        ok = httpx.get(f"{url}/healthz", timeout=2.0, verify=trust(home)).status_code == 200
    except httpx.HTTPError:
        ok = False
    return url if ok else None


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def client_url(host: str, port: int, scheme: str = "http") -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{scheme}://{shown}:{port}"


def certificate(settings: Settings, url: str) -> ServerCertificate | None:
    """The certificate to serve with, if the settings ask for HTTPS."""
    from urllib.parse import urlsplit

    from sluiceway.server.tls import self_signed, subject_names

    if settings.tls_cert is not None and settings.tls_key is not None:
        return ServerCertificate(settings.tls_cert, settings.tls_key, None)
    if not settings.tls:
        return None
    public_host = urlsplit(url).hostname or ""
    names = subject_names(settings.host, (public_host, *settings.extra_tls_hosts))
    return self_signed(settings.workspace, names)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(
    host: str | None = None,
    port: int | None = None,
    home: str | Path | None = None,
    *,
    tls: bool | None = None,
    role: str | None = None,
) -> None:
    """Serve until interrupted; records the address in ``<home>/server.json``.

    Args:
        role: ``all``, ``api`` or ``scheduler`` (default: ``$SLUICEWAY_ROLE`` or ``all``).

    Raises:
        ConflictError: a server for this home is already running.
    """
    import uvicorn

    from sluiceway.server.app import create_app
    from sluiceway.server.http_limits import LimitedHttpToolsProtocol
    from sluiceway.server.logs import configure_logging

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if home is not None:
        overrides["home"] = Path(home).expanduser().resolve()
    if tls is not None:
        overrides["tls"] = tls
    if role is not None:
        overrides["role"] = role
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.role, settings.log_format, settings.log_level)
    workspace_home = settings.workspace
    other = running_server(workspace_home)
    if other is not None:
        raise ConflictError(
            f"A server for workspace home {workspace_home.root} is already running at {other}."
        )
    sock = bind(settings.host, settings.port)
    actual_port = sock.getsockname()[1]
    scheme = "https" if settings.serves_tls else "http"
    url = settings.public_url or client_url(settings.host, actual_port, scheme)
    cert = certificate(settings, url)
    app = create_app(settings, base_url=url)
    record = {"url": url, "pid": os.getpid(), "role": settings.role.value}
    workspace_home.write_private(workspace_home.server_file, json.dumps(record) + "\n")
    print(f"Sluiceway {url} (role {settings.role.value}, home {workspace_home.root})", flush=True)
    if settings.runs_api:
        print(f"  API docs: {url}/docs   token: {workspace_home.token}", flush=True)
    if cert is not None and cert.ca_bundle is not None:
        print(f"  CA bundle (REQUESTS_CA_BUNDLE): {cert.ca_bundle}", flush=True)
    # Request heads are limited (16 KiB a line, 64 KiB in all) by the protocol class.
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        http=LimitedHttpToolsProtocol,
        ssl_certfile=str(cert.cert) if cert else None,
        ssl_keyfile=str(cert.key) if cert else None,
        log_config=None,  # its records go through the process's own log (server/logs.py)
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises SIGTERM once it has shut down; exit through Python so ``finally`` runs.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        try:
            if json.loads(workspace_home.server_file.read_text()).get("pid") == os.getpid():
                workspace_home.server_file.unlink()
        except (FileNotFoundError, json.JSONDecodeError):
            pass


def stop_server(workspace: WorkspaceHome) -> int | None:
    """Stop the home's server (SIGTERM to the pid it recorded); its pid, or None if none ran."""
    try:
        pid = int(json.loads(workspace.server_file.read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        workspace.server_file.unlink(missing_ok=True)
        return None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    return pid
