"""``sluice component``: register, show and list components, as ``az ml component`` does.

``create -f component.yml`` loads the YAML with the SDK (``load_component``), which uploads
the local ``code`` folders, with paths relative to the file; a pipeline's local step component
files are read too.
"""

from __future__ import annotations

import argparse

from sluiceway.cli.arguments import Subcommands, add_command, add_group, existing_file
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resource_json, resources_json


def create(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway import load_component

    component = load_component(existing_file(args.file))
    # The flags override the file, as in az ml.
    if args.name is not None:
        component.name = args.name
    if args.version is not None:
        component.version = args.version
    created = context.client.components.create_or_update(component)
    context.emit(resource_json(created))
    return 0


def show(args: argparse.Namespace, context: CommandContext) -> int:
    version: str | None = args.version
    label: str | None = args.label
    if version is None and label is None:
        label = "latest"
    component = context.client.components.get(args.name, version=version, label=label)
    context.emit(resource_json(component))
    return 0


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
    parser.add_argument(
        "-f", "--file", required=True, help="the component YAML; relative paths start at it"
    )
    parser.add_argument("-n", "--name", help="the name (overrides the file's)")
    parser.add_argument(
        "-v", "--version", help="the version (overrides the file's); default: the next number"
    )

    parser = add_command(commands, "show", "Show a component as JSON.", show, common)
    parser.add_argument("-n", "--name", required=True)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-v", "--version")
    which.add_argument("-l", "--label", choices=("latest",), help="the label; default: latest")

    parser = add_command(
        commands,
        "list",
        "List components (the latest version of each), or one's versions.",
        list_,
        common,
    )
    parser.add_argument("-n", "--name", help="list the versions of this component")
