"""``sluice datastore``: show and list datastores (``workspaceblobstore`` always exists).

A datastore's ``id`` followed by ``/paths/<path>`` is accepted as an input or output, as on the
reference page: ``$(sluice datastore show -n workspaceblobstore | jq -r .id)/paths/data``.
"""

from __future__ import annotations

import argparse

from sluiceway.cli.arguments import Subcommands, add_command, add_group
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resource_json, resources_json


def show(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resource_json(context.client.datastores.get(args.name)))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resources_json(context.client.datastores.list()))
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``datastore`` group."""
    commands = add_group(subcommands, "datastore", "Show datastores.")
    parser = add_command(commands, "show", "Show a datastore as JSON.", show, common)
    parser.add_argument("-n", "--name", required=True)
    add_command(commands, "list", "List the datastores.", list_, common)
