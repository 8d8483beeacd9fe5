"""``sluice quickstart``: the bundled heart-disease example, end to end.

It starts an embedded server if none is running, registers the example model and data, creates
the endpoint and its deployment, invokes it and prints the first predictions. The work is done
by :mod:`sluiceway.quickstart`; this module only parses the flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sluiceway.cli.arguments import Subcommands, add_command
from sluiceway.cli.context import CommandContext
from sluiceway.cli.server import missing_extra


def quickstart(args: argparse.Namespace, context: CommandContext) -> int:
    from rich.console import Console

    try:
        from sluiceway.quickstart import run
    except ModuleNotFoundError as exc:
        error = missing_extra(exc)
        if error is None:
            raise
        raise error from None
    home = Path(args.home).expanduser() if args.home is not None else None
    return run(Console(), home=home)


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``quickstart`` command."""
    text = "Run the bundled heart-disease example end to end and print its predictions."
    parser = add_command(subcommands, "quickstart", text, quickstart, common)
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="the workspace home (default: $SLUICEWAY_HOME or ~/.sluiceway)",
    )
