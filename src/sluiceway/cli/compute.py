"""``sluice compute``: create, show, list and delete computes.

``create -f FILE`` takes the compute YAML (``name``, ``type: ray``, ``address: auto |
host:port | ray://host:port``, ``description``). ``show`` asks the Ray cluster what it has.
A deployment's ``compute: azureml:<name>`` runs its jobs there; ``local`` is built in.
"""

from __future__ import annotations

import argparse

from sluiceway.cli.arguments import Subcommands, add_command, add_group, existing_file
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resource_json, resources_json


def create(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway.sdk.compute_operations import load_compute

    compute = load_compute(existing_file(args.file))
    if args.name:
        compute.name = args.name
    poller = context.client.compute.begin_create_or_update(compute)
    context.emit(resource_json(poller.result()))
    return 0


def show(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resource_json(context.client.compute.get(args.name)))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resources_json(context.client.compute.list()))
    return 0


def delete(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.compute.begin_delete(args.name).result()
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``compute`` group."""
    commands = add_group(
        subcommands, "compute", "Create, show, list and delete computes (Ray clusters)."
    )
    parser = add_command(
        commands, "create", "Create or update a compute from YAML.", create, common
    )
    parser.add_argument("-f", "--file", required=True, help="the compute YAML")
    parser.add_argument("-n", "--name", help="the compute's name (overrides the YAML's)")
    parser = add_command(
        commands, "show", "Show a compute as JSON, with what its cluster has.", show, common
    )
    parser.add_argument("-n", "--name", required=True)
    add_command(commands, "list", "List the computes.", list_, common)
    parser = add_command(commands, "delete", "Delete a compute.", delete, common)
    parser.add_argument("-n", "--name", required=True)
