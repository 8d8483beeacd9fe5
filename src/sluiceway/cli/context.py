"""What a ``sluice`` command gets besides its arguments: the SDK client and the printer.

The client is made on first use, so commands that need no server (``server start``,
``--help``) never import the SDK, and tests can hand in a client of their own.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluiceway.cli.output import OutputOptions, print_result
from sluiceway.errors import AuthenticationError

if TYPE_CHECKING:
    from sluiceway import MLClient
    from sluiceway.home import WorkspaceHome
    from sluiceway.sdk.server_address import ServerAddress

ClientFactory = Callable[[str | None, str | None], "MLClient"]


def connect(endpoint: str | None, token: str | None) -> MLClient:
    """An SDK client for ``--endpoint``/``--token``; the SDK finds what is not given."""
    from sluiceway import MLClient

    return MLClient(endpoint=endpoint, token=token)


@dataclass
class CommandContext:
    """The connection options and output options of one ``sluice`` run."""

    endpoint: str | None = None
    token: str | None = None
    output: OutputOptions = field(default_factory=OutputOptions)
    client_factory: ClientFactory = connect
    _client: MLClient | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, client_factory: ClientFactory | None = None
    ) -> CommandContext:
        output = OutputOptions(
            format=getattr(args, "output", None) or "json", query=getattr(args, "query", None)
        )
        return cls(
            endpoint=getattr(args, "endpoint", None),
            token=getattr(args, "token", None),
            output=output,
            client_factory=client_factory or connect,
        )

    @property
    def client(self) -> MLClient:
        if self._client is None:
            self._client = self.client_factory(self.endpoint, self.token)
        return self._client

    def emit(self, value: Any) -> None:
        """Print a command's result in the chosen format."""
        print_result(value, self.output)


Handler = Callable[[argparse.Namespace, CommandContext], int]


def owner_token(address: ServerAddress, home: WorkspaceHome | None = None) -> str:
    """The owner token to act with: ``$SLUICEWAY_TOKEN``, else the workspace home's, each only
    for the server it may be sent to.

    Raises:
        AuthenticationError: the token may not go to ``address``, or there is none.
    """
    from sluiceway.home import WorkspaceHome, default_home
    from sluiceway.sdk.connection import TOKEN_ENV

    home = home or WorkspaceHome(default_home())
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given:
        if not address.chosen:
            raise address.refuse(f"${TOKEN_ENV}")
        return given
    token = home.read_token()
    if token and not address.is_home_server:
        raise address.refuse("the workspace home's owner token")
    if not token:
        raise AuthenticationError(
            f"There is no owner token to act with: run this where the server's home is "
            f"({home.token} is missing), or set {TOKEN_ENV} to an owner's token.",
            target="token",
        )
    return token
