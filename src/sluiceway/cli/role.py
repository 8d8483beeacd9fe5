"""``sluice role``: assign, list and remove roles.

Roles are ``owner``, ``contributor``, ``invoker`` and ``reader``; a scope is ``workspace``,
``endpoint:<name>`` or ``datastore:<name>``. Managing roles needs the ``owner`` role on the
workspace, and the workspace always keeps one owner.
"""

from __future__ import annotations

import argparse

from sluiceway.cli.arguments import Subcommands, add_command, add_group
from sluiceway.cli.context import CommandContext

_SCOPE_HELP = "workspace, endpoint:<name> or datastore:<name>"


def assign(args: argparse.Namespace, context: CommandContext) -> int:
    granted = context.client.role_assignments.create(args.identity, args.role, args.scope)
    context.emit(granted.model_dump(mode="json"))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    found = context.client.role_assignments.list(identity=args.identity, scope=args.scope)
    context.emit([a.model_dump(mode="json") for a in found])
    return 0


def remove(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.role_assignments.delete(args.identity, args.role, args.scope)
    return 0


def _add_assignment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--identity", required=True, metavar="NAME", help="the identity")
    parser.add_argument("--role", required=True, help="owner, contributor, invoker or reader")
    parser.add_argument("--scope", required=True, help=_SCOPE_HELP)


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``role`` group."""
    commands = add_group(subcommands, "role", "Assign, list and remove roles of identities.")
    parser = add_command(commands, "assign", "Grant a role on a scope.", assign, common)
    _add_assignment(parser)
    parser = add_command(commands, "list", "List role assignments.", list_, common)
    parser.add_argument("--identity", metavar="NAME", help="only this identity's")
    parser.add_argument("--scope", help=f"only those on this scope: {_SCOPE_HELP}")
    parser = add_command(commands, "remove", "Take a role back.", remove, common)
    _add_assignment(parser)
