"""``sluice component``: register, show and list components, as ``az ml component`` does.

``create -f component.yml`` loads the YAML with the SDK (``load_component``), which uploads
the local ``code`` folders, with paths relative to the file; a pipeline's local step component
files are read too.
"""

from __future__ import annotations

import argparse

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


def create(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway import load_component

    return create_from_file(args, context, load_component, context.client.components)


def show(args: argparse.Namespace, context: CommandContext) -> int:
    return show_version(args, context, context.client.components)


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    operations = context.client.components
    components = operations.list(name=args.name) if args.name else operations.list()
    context.emit(resources_json(components))
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``component`` group."""
    commands = add_group(subcommands, "component", "Manage command and pipeline components.")

    parser = add_command(
        commands, "create", "Register a component (a new version).", create, common
    )
    add_file_overrides(parser, "component")

    parser = add_command(commands, "show", "Show a component as JSON.", show, common)
    add_version_choice(parser)

    parser = add_command(
        commands,
        "list",
        "List components (the latest version of each), or one's versions.",
        list_,
        common,
    )
    parser.add_argument("-n", "--name", help="list the versions of this component")
