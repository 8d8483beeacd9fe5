"""``sluice batch-deployment``: create, show, list, delete and list-jobs.

``create -f deployment.yml [--endpoint-name E] [--set-default]`` loads the YAML with the SDK,
which uploads the local ``code`` folder and registers an inline model, with paths relative to
the YAML file. The first deployment of an endpoint becomes its default.
"""

from __future__ import annotations

import argparse

from sluiceway.cli.arguments import Subcommands, add_command, add_group, existing_file
from sluiceway.cli.context import CommandContext
from sluiceway.cli.endpoint import confirm
from sluiceway.cli.output import print_note, resource_json, resources_json


def create(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway import load_batch_deployment

    deployment = load_batch_deployment(existing_file(args.file))
    # The flags override the file, as in az ml.
    if args.endpoint_name is not None:
        deployment.endpoint_name = args.endpoint_name
    if args.name is not None:
        deployment.name = args.name
    operations = context.client.batch_deployments
    created = operations.begin_create_or_update(deployment, set_default=args.set_default).result()
    context.emit(resource_json(created))
    return 0


def show(args: argparse.Namespace, context: CommandContext) -> int:
    deployment = context.client.batch_deployments.get(args.name, endpoint_name=args.endpoint_name)
    context.emit(resource_json(deployment))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    deployments = context.client.batch_deployments.list(endpoint_name=args.endpoint_name)
    context.emit(resources_json(deployments))
    return 0


def delete(args: argparse.Namespace, context: CommandContext) -> int:
    where = f"batch deployment {args.name!r} of endpoint {args.endpoint_name!r}"
    if not args.yes and not confirm(f"Delete {where}? Its jobs and outputs stay."):
        print_note(f"The {where} was not deleted; pass --yes to skip the question.")
        return 1
    context.client.batch_deployments.begin_delete(
        args.name, endpoint_name=args.endpoint_name
    ).result()
    return 0


def list_jobs(args: argparse.Namespace, context: CommandContext) -> int:
    jobs = context.client.batch_deployments.list_jobs(args.endpoint_name, name=args.name)
    context.emit(resources_json(jobs))
    return 0


def _add_names(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--name", required=True, help="the deployment")
    parser.add_argument("-e", "--endpoint-name", required=True, help="its endpoint")


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``batch-deployment`` group."""
    commands = add_group(subcommands, "batch-deployment", "Manage batch deployments.")

    parser = add_command(
        commands, "create", "Create or replace a batch deployment.", create, common
    )
    parser.add_argument("-f", "--file", required=True, help="the deployment YAML")
    parser.add_argument("-e", "--endpoint-name", help="the endpoint (overrides the file's)")
    parser.add_argument("-n", "--name", help="the deployment name (overrides the file's)")
    parser.add_argument(
        "--set-default", action="store_true", help="make it the endpoint's default deployment"
    )
    parser.add_argument("--no-wait", action="store_true", help="accepted; creation is immediate")

    parser = add_command(commands, "show", "Show a batch deployment as JSON.", show, common)
    _add_names(parser)

    parser = add_command(commands, "list", "List the deployments of an endpoint.", list_, common)
    parser.add_argument("-e", "--endpoint-name", required=True)

    parser = add_command(
        commands, "delete", "Delete a batch deployment (not the default one).", delete, common
    )
    _add_names(parser)
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--no-wait", action="store_true", help="accepted; deletion is immediate")

    parser = add_command(
        commands, "list-jobs", "List the jobs a deployment ran, newest first.", list_jobs, common
    )
    _add_names(parser)
