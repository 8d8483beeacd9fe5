"""Argument pieces that many ``sluice`` commands share.

Every command accepts Azure's workspace options (``--resource-group``, ``--workspace-name``,
``--subscription``) and ignores them, so ``az ml`` lines run with only ``az ml`` replaced. It
also accepts ``--endpoint`` and ``--token`` to name the server and the credential,
``--ca-bundle`` for the certificates that verify an https server, and az's
``--query`` and ``--output``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sluiceway.errors import ValidationError

if TYPE_CHECKING:
    from sluiceway.home import WorkspaceHome

OUTPUT_FORMATS = ("json", "yaml", "tsv", "none")

# A --set key: dotted names such as inputs.heart_dataset.path or defaults.deployment_name.
_SET_KEY = re.compile(r"[A-Za-z_][\w\-]*(\.[\w\-]+)*")


def common_options() -> argparse.ArgumentParser:
    """A parent parser with the options every command takes.

    The defaults are suppressed so that an option given before the command (``sluice --token T
    job list``) is not overwritten by the command's own parser, which also accepts it.
    """
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    server = parent.add_argument_group("server")
    server.add_argument(
        "--endpoint",
        metavar="URL",
        help="the Sluiceway server; default: $SLUICEWAY_ENDPOINT, config.json, or the "
        "server recorded in the workspace home",
    )
    server.add_argument(
        "--token",
        help="the bearer token; default: $SLUICEWAY_TOKEN, config.json, the `sluice login` "
        "for the server, or <home>/token",
    )
    server.add_argument(
        "--ca-bundle",
        metavar="PEM",
        help="the certificates that verify an https server; default: $SLUICEWAY_CA_BUNDLE, "
        "the workspace home's bundle for its own server (`sluice server start --tls`), "
        "$REQUESTS_CA_BUNDLE or $SSL_CERT_FILE, then the public roots",
    )
    shown = parent.add_argument_group("output")
    shown.add_argument(
        "--query", help="a dotted path into the result: 'id', 'properties.status', '[].name'"
    )
    shown.add_argument(
        "-o", "--output", choices=OUTPUT_FORMATS, help="output format (default: json)"
    )
    shown.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    azure = parent.add_argument_group("Azure options (accepted and ignored)")
    azure.add_argument("-g", "--resource-group", metavar="GROUP")
    azure.add_argument("-w", "--workspace-name", metavar="WORKSPACE")
    azure.add_argument("--subscription", metavar="SUBSCRIPTION")
    azure.add_argument("--only-show-errors", action="store_true")
    azure.add_argument("--verbose", action="store_true")
    return parent


def parse_set_tokens(groups: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """Pair the tokens of ``--set`` into ``(key, value)``, in the order given.

    Azure's CLI takes both ``key=value`` tokens and the reference page's ``key value`` pairs:
    ``--set inputs.x.type uri_folder inputs.x.path azureml:data:1``. A token that holds ``=``
    after a key is one pair; any other key takes the next token as its value, whatever it
    holds (a URL with ``=`` in its query, for instance). Each ``--set`` is paired on its own.

    Args:
        groups: One list of tokens per ``--set`` option.

    Raises:
        ValidationError: a key has no value, or a token is neither a key nor a pair.
    """
    pairs: list[tuple[str, str]] = []
    for tokens in groups:
        index = 0
        while index < len(tokens):
            token = tokens[index]
            key, sep, value = token.partition("=")
            if sep and _SET_KEY.fullmatch(key):
                pairs.append((key, value))
                index += 1
                continue
            if not _SET_KEY.fullmatch(token):
                raise ValidationError(
                    f"--set: expected a key such as inputs.<name>.path or key=value, got {token!r}",
                    target="set",
                )
            if index + 1 >= len(tokens):
                raise ValidationError(
                    f"--set {token}: the key has no value; write '{token}=VALUE' or "
                    f"'{token} VALUE'",
                    target=token,
                )
            pairs.append((token, tokens[index + 1]))
            index += 2
    return pairs


# The object ``add_subparsers`` returns; generic only for the type checker.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_group(subcommands: Subcommands, name: str, help_text: str) -> Subcommands:
    """Add a command group such as ``data``; run alone, it prints its own help."""
    group = subcommands.add_parser(name, help=help_text, description=help_text)
    group.set_defaults(handler=None, help_parser=group)
    return group.add_subparsers(title="commands", metavar="COMMAND")


def add_command(
    subcommands: Subcommands,
    name: str,
    help_text: str,
    handler: Callable[..., int],
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """Add one command with the common options; ``handler(args, context)`` runs it."""
    parser: argparse.ArgumentParser = subcommands.add_parser(
        name, help=help_text, description=help_text, parents=[common]
    )
    parser.set_defaults(handler=handler)
    return parser


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be 1 or more")
    return number


def existing_file(value: str, option: str = "--file") -> Path:
    """The path of a file the user named, which must exist.

    Raises:
        ValidationError: there is no such file.
    """
    path = Path(value).expanduser()
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "not found"
        raise ValidationError(f"{option} {value!r}: {what}", target=option.lstrip("-"))
    return path


def add_file_overrides(parser: argparse.ArgumentParser, noun: str) -> None:
    """A versioned resource's ``create``: ``-f FILE`` and the ``-n``/``-v`` that override it
    (applied with ``override_name_version``)."""
    parser.add_argument(
        "-f", "--file", required=True, help=f"the {noun} YAML; relative paths start at it"
    )
    parser.add_argument("-n", "--name", help="the name (overrides the file's)")
    parser.add_argument(
        "-v", "--version", help="the version (overrides the file's); default: the next number"
    )


def override_name_version(resource: Any, args: argparse.Namespace) -> None:
    """Give ``resource`` the ``--name`` and ``--version`` given: the flags override the file,
    as in az ml."""
    if args.name is not None:
        resource.name = args.name
    if args.version is not None:
        resource.version = args.version


def add_version_choice(parser: argparse.ArgumentParser) -> None:
    """A versioned resource's ``show``: ``-n NAME`` and either ``-v VERSION`` or ``-l latest``
    (read back with ``version_or_label``)."""
    parser.add_argument("-n", "--name", required=True)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-v", "--version")
    which.add_argument("-l", "--label", choices=("latest",), help="the label; default: latest")


def version_or_label(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The ``(version, label)`` to get: the label ``latest`` when neither was given."""
    version: str | None = args.version
    label: str | None = args.label
    if version is None and label is None:
        label = "latest"
    return version, label


def workspace_home(value: str | None) -> WorkspaceHome:
    """The workspace home a ``--home`` option names, else ``$SLUICEWAY_HOME`` or the default."""
    from sluiceway.home import WorkspaceHome, default_home

    return WorkspaceHome(Path(value).expanduser().resolve() if value else default_home())
