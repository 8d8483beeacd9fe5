"""``sluice``: the command line, with the verbs of ``az ml`` for batch endpoints.

Each command group lives in its own module and calls the SDK; nothing here talks HTTP. The SDK
and the server are imported only by the commands that need them, so ``sluice --help`` and
argument errors are quick.

Exit codes: 0 success, 1 an error Sluiceway reports (printed as ``ERROR: <message>``), 2 a
usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from sluiceway.cli import (
    assets,
    azure,
    component,
    compute,
    datastore,
    deployment,
    endpoint,
    environment,
    identity,
    job,
    login,
    quickstart,
    role,
    server,
    studio,
    token,
)
from sluiceway.cli.arguments import common_options
from sluiceway.cli.context import ClientFactory, CommandContext, Handler
from sluiceway.cli.output import print_error
from sluiceway.errors import SluicewayError

PROG = "sluice"


def package_version() -> str:
    """The installed version of Sluiceway."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sluiceway")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    # Like argparse's "version" action, but the version is looked up only when asked for.
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"{PROG} {package_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The whole ``sluice`` command tree."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sluiceway: self-hosted batch endpoints, driven like 'az ml'.",
        parents=[common],
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.set_defaults(handler=None, help_parser=parser)
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND")
    server.register(subcommands, common)
    quickstart.register(subcommands, common)
    datastore.register(subcommands, common)
    compute.register(subcommands, common)
    assets.register(subcommands, common)
    component.register(subcommands, common)
    environment.register(subcommands, common)
    endpoint.register(subcommands, common)
    deployment.register(subcommands, common)
    job.register(subcommands, common)
    identity.register(subcommands, common)
    role.register(subcommands, common)
    token.register(subcommands, common)
    login.register(subcommands, common)
    studio.register(subcommands, common)
    azure.register(subcommands, common)
    return parser


def _trusting(bundle: str | None) -> contextlib.AbstractContextManager[None]:
    """``--ca-bundle`` for every server the command reaches (the SDK only when given)."""
    if not bundle:
        return contextlib.nullcontext()
    from sluiceway.sdk.trust import trusting

    return trusting(bundle)


def main(argv: Sequence[str] | None = None, *, client_factory: ClientFactory | None = None) -> int:
    """Run ``sluice`` with ``argv`` (default: the process's arguments) and return its exit code.

    Args:
        argv: The arguments after the program name.
        client_factory: Makes the SDK client from ``--endpoint`` and ``--token``; tests pass
            their own.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    handler: Handler | None = args.handler
    if handler is None:
        args.help_parser.print_help()
        return 0
    context = CommandContext.from_args(args, client_factory)
    try:
        with _trusting(getattr(args, "ca_bundle", None)):
            return handler(args, context)
    except SluicewayError as exc:
        if getattr(args, "debug", False):
            raise
        print_error(exc.message)
        return 1
    except BrokenPipeError:
        # The reader of stdout went away (`| head`); nothing more can be shown.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        # A file the user named cannot be read or written: their mistake, not a bug.
        if getattr(args, "debug", False):
            raise
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
