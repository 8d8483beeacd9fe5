"""``sluice batch-endpoint``: create, update, show, list, delete, list-jobs and invoke.

``create -f endpoint.yml`` loads the YAML with the SDK; ``--name`` and ``--set key=value``
override its fields, as Azure's ``params_override`` does. ``update -n E --set
defaults.deployment_name=D`` applies the same overrides to the endpoint the server has now.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from sluiceway.cli import invoke
from sluiceway.cli.arguments import (
    Subcommands,
    add_command,
    add_group,
    existing_file,
    parse_set_tokens,
)
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import print_note, resource_json, resources_json
from sluiceway.errors import ValidationError


class _NamedText(io.StringIO):
    """YAML text with a name, which the SDK's loader uses in its error messages."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self._name = name

    @property
    def name(self) -> str:
        return self._name


def _overrides(name: str | None, sets: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Azure's ``params_override``: ``--name`` first, then each ``--set`` in order."""
    return ([{"name": name}] if name is not None else []) + [{key: value} for key, value in sets]


def _current(context: CommandContext, name: str) -> _NamedText:
    """The endpoint the server has, in its YAML shape (the fields a create request takes)."""
    import yaml

    from sluiceway.schemas.endpoints import BatchEndpointCreate

    shown = resource_json(context.client.batch_endpoints.get(name))
    writable = {
        key: value for key, value in shown.items() if key in BatchEndpointCreate.model_fields
    }
    return _NamedText(yaml.safe_dump(writable, sort_keys=False), f"batch endpoint {name!r}")


def create(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway import load_batch_endpoint

    sets = parse_set_tokens(args.set or [])
    if args.file is not None:
        source: Path | _NamedText = existing_file(args.file)
    elif args.name is not None:
        source = _NamedText("", "--name and --set")
    else:
        raise ValidationError(
            "batch-endpoint create needs --file endpoint.yml or --name NAME", target="name"
        )
    endpoint = load_batch_endpoint(source, params_override=_overrides(args.name, sets))
    created = context.client.batch_endpoints.begin_create_or_update(endpoint).result()
    context.emit(resource_json(created))
    return 0


def update(args: argparse.Namespace, context: CommandContext) -> int:
    from sluiceway import load_batch_endpoint

    sets = parse_set_tokens(args.set or [])
    if args.file is not None:
        source: Path | _NamedText = existing_file(args.file)
    elif args.name is None:
        raise ValidationError("batch-endpoint update needs --name or --file", target="name")
    elif not sets:
        raise ValidationError(
            "batch-endpoint update has nothing to change: give --set KEY=VALUE "
            "(for example defaults.deployment_name=NAME) or --file",
            target="set",
        )
    else:
        source = _current(context, args.name)
    endpoint = load_batch_endpoint(source, params_override=_overrides(args.name, sets))
    updated = context.client.batch_endpoints.begin_create_or_update(endpoint).result()
    context.emit(resource_json(updated))
    return 0


def show(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resource_json(context.client.batch_endpoints.get(args.name)))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resources_json(context.client.batch_endpoints.list()))
    return 0


def confirm(question: str) -> bool:
    """Ask on the terminal; anything but yes, or no terminal to ask on, is a no."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} (y/n): ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def delete(args: argparse.Namespace, context: CommandContext) -> int:
    if not args.yes and not confirm(
        f"Delete batch endpoint {args.name!r} and its deployments? Its jobs and outputs stay."
    ):
        print_note(
            f"Batch endpoint {args.name!r} was not deleted; pass --yes to skip the question."
        )
        return 1
    context.client.batch_endpoints.begin_delete(args.name).result()
    return 0


def list_jobs(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(resources_json(context.client.batch_endpoints.list_jobs(args.name)))
    return 0


def _add_set(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "--set",
        nargs="+",
        action="append",
        metavar="KEY=VALUE",
        help=f"set a field, e.g. {example}; 'KEY VALUE' pairs work too",
    )


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``batch-endpoint`` group."""
    commands = add_group(subcommands, "batch-endpoint", "Manage batch endpoints and invoke them.")

    parser = add_command(commands, "create", "Create or replace a batch endpoint.", create, common)
    parser.add_argument("-f", "--file", help="the endpoint YAML")
    parser.add_argument("-n", "--name", help="the endpoint name (overrides the file's)")
    _add_set(parser, "description=TEXT")
    parser.add_argument("--no-wait", action="store_true", help="accepted; creation is immediate")

    parser = add_command(
        commands, "update", "Change a batch endpoint, e.g. its default deployment.", update, common
    )
    parser.add_argument("-n", "--name", help="the endpoint name")
    parser.add_argument("-f", "--file", help="the endpoint YAML to apply")
    _add_set(parser, "defaults.deployment_name=NAME")
    parser.add_argument("--no-wait", action="store_true", help="accepted; updates are immediate")

    parser = add_command(commands, "show", "Show a batch endpoint as JSON.", show, common)
    parser.add_argument("-n", "--name", required=True)

    add_command(commands, "list", "List the batch endpoints.", list_, common)

    parser = add_command(
        commands, "delete", "Delete a batch endpoint and its deployments.", delete, common
    )
    parser.add_argument("-n", "--name", required=True)
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--no-wait", action="store_true", help="accepted; deletion is immediate")

    parser = add_command(
        commands, "list-jobs", "List the jobs of a batch endpoint, newest first.", list_jobs, common
    )
    parser.add_argument("-n", "--name", required=True)

    invoke.register(commands, common)
