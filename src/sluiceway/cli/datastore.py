"""``sluice datastore``: create, show, list and delete datastores.

``create -f FILE`` takes Azure's datastore YAML (``type: azure_blob``, ``account_name``,
``container_name``, ``credentials: {account_key | sas_token}``; ``azure_data_lake_gen2`` with
``filesystem``; ``s3`` with ``bucket``, ``endpoint_url``; ``local`` with ``root``).
``workspaceblobstore`` always exists. A datastore's ``id`` followed by ``/paths/<path>`` is
accepted as an input or output, as on the reference page:
``$(sluice datastore show -n workspaceblobstore | jq -r .id)/paths/data``.
"""

from __future__ import annotations

import argparse

from sluiceway.cli.arguments import Subcommands, add_command, add_group, existing_file
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resource_json, resources_json


def create(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway.sdk.datastore_operations import load_datastore

    store = load_datastore(existing_file(args.file))
    if args.name:
        store.name = args.name
    context.emit(resource_json(context.client.datastores.create_or_update(store)))
    return 0


def show(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resource_json(context.client.datastores.get(args.name)))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resources_json(context.client.datastores.list()))
    return 0


def delete(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.datastores.delete(args.name)
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``datastore`` group."""
    commands = add_group(subcommands, "datastore", "Create, show, list and delete datastores.")
    parser = add_command(
        commands, "create", "Create or update a datastore from YAML.", create, common
    )
    parser.add_argument("-f", "--file", required=True, help="the datastore YAML")
    parser.add_argument("-n", "--name", help="the datastore's name (overrides the YAML's)")
    parser = add_command(commands, "show", "Show a datastore as JSON.", show, common)
    parser.add_argument("-n", "--name", required=True)
    add_command(commands, "list", "List the datastores.", list_, common)
    parser = add_command(commands, "delete", "Delete a datastore (its files stay).", delete, common)
    parser.add_argument("-n", "--name", required=True)
