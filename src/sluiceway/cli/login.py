"""``sluice login`` and ``sluice logout``: keep a credential for a server.

``login`` takes one of:

- ``--token T``: a token (from ``sluice token create`` or ``POST /oauth2/token``), kept until
  it expires;
- ``--client-id ID --client-secret S``: a service principal's credentials, exchanged at
  ``POST /oauth2/token``; both are kept so that the token is renewed when it expires;
- ``--identity NAME``: for the workspace owner on the server's machine, a token for ``NAME``
  minted with the workspace home's owner token (``--expires-in``, default 90 days).

The credential is checked against the server, then stored (mode 0600) in
``$SLUICEWAY_CONFIG_DIR/credentials.json`` (default ``~/.config/sluiceway/credentials.json``),
keyed by the server's URL. Every later command uses it for that server, unless ``--token`` or
``$SLUICEWAY_TOKEN`` names another; without a login, the workspace home's owner token is used
for the home's own server. A token or secret given here goes only to an endpoint given with it
(``--endpoint``, ``$SLUICEWAY_ENDPOINT``) or to the home's server, never to one that a
``config.json`` in the current folder names.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from sluiceway.cli.arguments import Subcommands, add_command
from sluiceway.cli.context import CommandContext, owner_token
from sluiceway.cli.output import print_note
from sluiceway.cli.token import parse_duration
from sluiceway.errors import ValidationError

if TYPE_CHECKING:
    pass

DEFAULT_IDENTITY_LIFETIME = "90d"


def _when(expires_on: int | None) -> str | None:
    if expires_on is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_on))


def _whoami(endpoint: str, token: str) -> dict[str, Any]:
    from sluiceway.sdk.connection import Connection

    with Connection(endpoint, token) as connection:
        answer: dict[str, Any] = connection.request("GET", "/whoami", expected=(200,))
    return answer


def login(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway.sdk.connection import locate_server
    from sluiceway.sdk.credentials import request_client_token, token_expiry
    from sluiceway.sdk.login_store import CLIENT_SECRET, TOKEN, LoginStore, StoredLogin

    token: str | None = getattr(args, "token", None)
    ways = [
        name
        for name, given in (
            ("--token", token),
            ("--client-id", args.client_id or args.client_secret),
            ("--identity", args.identity),
        )
        if given
    ]
    if len(ways) != 1:
        raise ValidationError(
            "sluice login takes one of --token TOKEN, --client-id ID --client-secret SECRET, "
            f"or --identity NAME{'; got ' + ' and '.join(ways) if ways else ''}.",
            target="login",
        )
    if args.expires_in is not None and not args.identity:
        raise ValidationError("--expires-in goes with --identity only.", target="expires-in")
    address = locate_server(context.endpoint)
    endpoint = address.url
    if args.identity:
        from sluiceway import MLClient

        seconds = parse_duration(args.expires_in or DEFAULT_IDENTITY_LIFETIME)
        with MLClient(endpoint=endpoint, token=owner_token(address)) as client:
            minted = client.identities.create_token(args.identity, expires_in=seconds)
        stored = StoredLogin(
            endpoint, TOKEN, minted.access_token, minted.expires_on, identity=args.identity
        )
    elif not address.chosen:
        # A token or client secret given here goes only to an endpoint given with it.
        raise address.refuse("--token" if token else "the client credentials")
    elif token:
        who = _whoami(endpoint, token)
        stored = StoredLogin(endpoint, TOKEN, token, token_expiry(token), identity=who["name"])
    else:
        if not (args.client_id and args.client_secret):
            raise ValidationError(
                "--client-id and --client-secret go together.", target="client-secret"
            )
        access = request_client_token(endpoint, args.client_id, args.client_secret)
        who = _whoami(endpoint, access.token)
        stored = StoredLogin(
            endpoint,
            CLIENT_SECRET,
            access.token,
            access.expires_on,
            identity=who["name"],
            client_id=args.client_id,
            client_secret=args.client_secret,
        )
    store = LoginStore()
    stored = store.save(stored)
    renews = stored.kind == CLIENT_SECRET
    context.emit(
        {
            "server": stored.server,
            "identity": stored.identity,
            "credential": stored.kind,
            "expires_on": _when(stored.expires_on),
            "renews": renews,
            "file": str(store.path),
        }
    )
    if renews:
        print_note(
            f"Logged in to {stored.server} as {stored.identity}; the token is renewed "
            "with the client credentials when it expires."
        )
    else:
        until = _when(stored.expires_on) or "it is refused"
        print_note(
            f"Logged in to {stored.server} as {stored.identity} until {until}; "
            "run `sluice login` again then."
        )
    return 0


def logout(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway.sdk.connection import resolve_endpoint
    from sluiceway.sdk.login_store import LoginStore

    store = LoginStore()
    if args.all:
        servers = store.servers()
        for server in servers:
            store.remove(server)
        print_note(f"Logged out of {len(servers)} server(s).")
        return 0
    endpoint = resolve_endpoint(context.endpoint)
    if store.remove(endpoint):
        print_note(f"Logged out of {endpoint}.")
    else:
        print_note(f"There was no login for {endpoint}.")
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add ``login`` and ``logout``."""
    parser = add_command(
        subcommands,
        "login",
        "Keep a credential for the server: --token, --client-id/--client-secret, or --identity.",
        login,
        common,
    )
    parser.add_argument("--client-id", metavar="ID", help="a service principal's client id")
    parser.add_argument("--client-secret", metavar="SECRET", help="its secret")
    parser.add_argument(
        "--tenant", metavar="TENANT", help="accepted for az compatibility and ignored"
    )
    parser.add_argument(
        "--identity",
        metavar="NAME",
        help="mint a token for NAME with the workspace home's owner token",
    )
    parser.add_argument(
        "--expires-in",
        metavar="DURATION",
        help=f"with --identity: how long the token lives (default {DEFAULT_IDENTITY_LIFETIME})",
    )
    parser = add_command(
        subcommands, "logout", "Forget the credential kept for the server.", logout, common
    )
    parser.add_argument("--all", action="store_true", help="forget the credentials of every server")
