"""``sluice environment``: register, show, list, archive and delete environments, as
``az ml environment`` does; ``log`` prints a version's whole build log.

``create -f env.yml`` loads the YAML with the SDK (``load_environment``): its ``conda_file`` or
``requirements`` file is read in, ``-r`` files too, and local wheels are uploaded.
"""

from __future__ import annotations

import argparse
import sys

from sluiceway.cli.arguments import (
    Subcommands,
    add_command,
    add_file_overrides,
    add_group,
    add_version_choice,
)
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resources_json
from sluiceway.cli.versioned import create_from_file, show_version
from sluiceway.errors import ValidationError


def create(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway import load_environment

    return create_from_file(args, context, load_environment, context.client.environments)


def show(args: argparse.Namespace, context: CommandContext) -> int:
    return show_version(args, context, context.client.environments)


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    operations = context.client.environments
    if args.name:
        found = operations.list(name=args.name)
    else:
        found = operations.list(include_archived=args.include_archived)
    context.emit(resources_json(found))
    return 0


def archive(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.environments.archive(args.name, version=args.version)
    return 0


def restore(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.environments.restore(args.name, version=args.version)
    return 0


def delete(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.environments.delete(args.name, version=args.version)
    return 0


def log(args: argparse.Namespace, context: CommandContext) -> int:
    operations = context.client.environments
    if args.hash:
        sys.stdout.write(operations.get_build_log(content_hash=args.hash))
        return 0
    if not args.name:
        raise ValidationError("give --name (and --version), or --hash", target="name")
    version = args.version or operations.get(args.name).version
    sys.stdout.write(operations.get_build_log(args.name, version))
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``environment`` group."""
    commands = add_group(
        subcommands, "environment", "Manage environments: the packages deployments run with."
    )

    parser = add_command(
        commands, "create", "Register an environment (a new version).", create, common
    )
    add_file_overrides(parser, "environment")

    parser = add_command(
        commands, "show", "Show an environment and its build state as JSON.", show, common
    )
    add_version_choice(parser)

    parser = add_command(
        commands,
        "list",
        "List environments (the latest version of each), or one's versions.",
        list_,
        common,
    )
    parser.add_argument("-n", "--name", help="list the versions of this environment")
    parser.add_argument(
        "--include-archived", action="store_true", help="list archived environments too"
    )

    for name, handler, text in (
        ("archive", archive, "Archive an environment version, or all its versions."),
        ("restore", restore, "Restore an archived environment version, or all its versions."),
        ("delete", delete, "Delete an environment version (or all) that no deployment uses."),
    ):
        parser = add_command(commands, name, text, handler, common)
        parser.add_argument("-n", "--name", required=True)
        parser.add_argument("-v", "--version", help="one version; default: every version")

    parser = add_command(
        commands,
        "log",
        "Print an environment version's build log, or a deployment's (--hash).",
        log,
        common,
    )
    parser.add_argument("-n", "--name")
    parser.add_argument("-v", "--version", help="default: the latest version")
    parser.add_argument(
        "--hash", help="a build's content hash (a deployment's environment_build.content_hash)"
    )
