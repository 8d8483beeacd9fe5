"""``sluice token create``: mint a token for an identity.

``--expires-in`` takes seconds or a number with ``s``, ``m``, ``h`` or ``d`` (``30m``, ``12h``,
``7d``); default one hour, at most 365 days. The token is printed alone, for
``TOKEN=$(sluice token create --identity ci)``; ``-o json`` prints it with its expiry.
"""

from __future__ import annotations

import argparse
import re

from sluiceway.cli.arguments import Subcommands, add_command, add_group
from sluiceway.cli.context import CommandContext
from sluiceway.errors import ValidationError

_DURATION = re.compile(r"\s*(\d+)\s*([smhd]?)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 365 * 86400
MIN_SECONDS = 60


def parse_duration(value: str, option: str = "--expires-in") -> int:
    """Seconds in ``value``: ``3600``, ``45s``, ``30m``, ``12h`` or ``7d``.

    Raises:
        ValidationError: not a duration, or outside one minute to 365 days.
    """
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValidationError(
            f"{option} {value!r} is not a duration; use seconds or a number with s, m, h or d "
            "(30m, 12h, 7d).",
            target=option.lstrip("-"),
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2].lower()]
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValidationError(
            f"{option} {value!r} is not accepted: give from 1 minute (1m) to 365 days (365d).",
            target=option.lstrip("-"),
        )
    return seconds


def create(args: argparse.Namespace, context: CommandContext) -> int:
    seconds = parse_duration(args.expires_in)
    minted = context.client.identities.create_token(args.identity, expires_in=seconds)
    if getattr(args, "output", None) is None:
        print(minted.access_token)
    else:
        context.emit(minted.model_dump(mode="json"))
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``token`` group."""
    commands = add_group(subcommands, "token", "Mint tokens for identities.")
    parser = add_command(
        commands,
        "create",
        "Mint a token for an identity (owners for anyone, an identity for itself); prints it.",
        create,
        common,
    )
    parser.add_argument("--identity", required=True, metavar="NAME", help="the identity")
    parser.add_argument(
        "--expires-in",
        default="1h",
        metavar="DURATION",
        help="how long the token lives: 30m, 12h, 7d (default 1h, at most 365d)",
    )
