"""``sluice server start|stop``: run the API, the scheduler and the local executor in one
process (or one of them, ``--role api|scheduler``), or stop the one a workspace home records.

The server lives in the ``server`` extra; without it ``start`` says what to install. ``stop``
needs only the core install: it reads ``<home>/server.json``, checks that a server answers at
the address recorded there (so a stale record never gets an unrelated process killed) and sends
it SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway.cli.arguments import Subcommands, add_command, add_group, workspace_home
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import print_note
from sluiceway.errors import ConflictError, MissingExtraError, ResourceNotFoundError

if TYPE_CHECKING:
    from sluiceway.home import WorkspaceHome

_MLFLOW_MODULES = ("mlflow", "sklearn", "cloudpickle")


def missing_extra(exc: ModuleNotFoundError) -> MissingExtraError | None:
    """The error to show when an optional dependency is missing, or None when ``exc`` is about
    Sluiceway's own modules (a bug, not a missing extra)."""
    module = exc.name or ""
    if not module or module == "sluiceway" or module.startswith("sluiceway."):
        return None
    top = module.split(".")[0]
    return MissingExtraError("mlflow" if top in _MLFLOW_MODULES else "server", top)


def start(args: argparse.Namespace, context: CommandContext) -> int:
    try:
        from sluiceway.server import run
    except ModuleNotFoundError as exc:
        error = missing_extra(exc)
        if error is None:
            raise
        raise error from None
    home = Path(args.home).expanduser() if args.home is not None else None
    try:
        run(host=args.host, port=args.port, home=home, tls=args.tls or None, role=args.role)
    except KeyboardInterrupt:
        pass
    return 0


def _answers(url: str, home: WorkspaceHome) -> bool:
    import httpx

    try:
        verify = home.trust() if url.startswith("https:") else True
        return httpx.get(f"{url}/healthz", timeout=2.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A process that has exited but was not yet reaped by its parent (a zombie) is gone too.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _forget(home: WorkspaceHome, record: str) -> None:
    """Remove the record of a server that is gone, unless a new server has written its own."""
    try:
        if home.server_file.read_text() == record:
            home.server_file.unlink()
    except FileNotFoundError:
        pass


def stop(args: argparse.Namespace, context: CommandContext) -> int:
    home = workspace_home(args.home)
    try:
        record = home.server_file.read_text()
        fields = json.loads(record)
    except (FileNotFoundError, json.JSONDecodeError):
        raise ResourceNotFoundError(
            f"No server is recorded in {home.server_file}; none is running for this home."
        ) from None
    url = fields.get("url") if isinstance(fields, dict) else None
    pid = fields.get("pid") if isinstance(fields, dict) else None
    if not isinstance(url, str) or not isinstance(pid, int) or not _answers(url, home):
        _forget(home, record)
        print_note(f"No server answers at {url}; removed the stale record {home.server_file}.")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise ConflictError(
                f"The server at {url} (pid {pid}) did not stop within {args.timeout:g} s."
            )
        time.sleep(0.1)
    _forget(home, record)
    print_note(f"Stopped the server at {url} (pid {pid}).")
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``server`` group."""
    commands = add_group(subcommands, "server", "Run a Sluiceway server.")
    parser = add_command(
        commands,
        "start",
        "Serve the API, the scheduler and the workers until interrupted.",
        start,
        common,
    )
    parser.add_argument(
        "--host", help="the address to listen on (default: $SLUICEWAY_HOST or 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        help="the port; 0 picks a free one (default: $SLUICEWAY_PORT or 8765)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a self-signed certificate made in <home>/tls/ (or set "
        "$SLUICEWAY_TLS_CERT and $SLUICEWAY_TLS_KEY); the azure-ai-ml SDK needs HTTPS",
    )
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="the workspace home (default: $SLUICEWAY_HOME or ~/.sluiceway)",
    )
    parser.add_argument(
        "--role",
        choices=["all", "api", "scheduler"],
        help="what this process runs: the API and a scheduler (all), or one of them; any "
        "number of each share a workspace on PostgreSQL (default: $SLUICEWAY_ROLE or all)",
    )

    parser = add_command(
        commands, "stop", "Stop the server a workspace home records.", stop, common
    )
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="the workspace home (default: $SLUICEWAY_HOME or ~/.sluiceway)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for it to stop (default: 30)"
    )
