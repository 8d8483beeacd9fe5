"""What a ``sluice`` command gets besides its arguments: the SDK client and the printer.

The client is made on first use, so commands that need no server (``server start``,
``--help``) never import the SDK, and tests can hand in a client of their own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluiceway.cli.output import OutputOptions, print_result

if TYPE_CHECKING:
    from sluiceway import MLClient

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
