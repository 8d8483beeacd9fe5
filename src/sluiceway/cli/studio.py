"""``sluice studio`` (or ``sluice ui``): open the studio in a browser, already signed in.

The server answers a one-time link (usable once, for two minutes) that signs the browser in as
the identity the command runs as: on the server's machine, the workspace home's owner. The link
is printed too, for a browser on another machine or when none can be started.
"""

from __future__ import annotations

import argparse
import webbrowser

from sluiceway.cli.arguments import Subcommands, add_command
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import print_note


def studio(args: argparse.Namespace, context: CommandContext) -> int:
    target = f"/ui/jobs/{args.job}" if args.job else "/ui"
    url = context.client.studio_sign_in_url(target)
    print(url)
    if not args.no_browser and not webbrowser.open(url):
        print_note("No browser could be started here: open the link above (once, within 2 min).")
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add ``studio`` and its alias ``ui``."""
    for name in ("studio", "ui"):
        parser = add_command(
            subcommands,
            name,
            "Open the studio (web pages) in a browser, signed in through a one-time link.",
            studio,
            common,
        )
        parser.add_argument("--job", metavar="NAME", help="open this job's page")
        parser.add_argument(
            "--no-browser", action="store_true", help="only print the one-time link"
        )
