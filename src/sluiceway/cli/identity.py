"""``sluice identity``: users and service principals.

``create service-principal NAME`` prints the new ``client_id`` and ``client_secret``; the secret
is shown this once (``rotate-secret`` makes a new one). ``--external-id`` maps the subject (the
``oid`` or ``sub``) of the server's external OpenID Connect issuer to the identity. Managing
identities needs the ``owner`` role on the workspace.
"""

from __future__ import annotations

import argparse

from sluiceway.cli.arguments import Subcommands, add_command, add_group
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import print_note
from sluiceway.errors import ValidationError

KINDS = {"user": "user", "service-principal": "service_principal"}


def _name(args: argparse.Namespace) -> str:
    name: str | None = args.name_option or args.name
    if not name:
        raise ValidationError("Name the identity: NAME or --name NAME.", target="name")
    return name


def _add_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="the identity's name")
    parser.add_argument("-n", "--name", dest="name_option", metavar="NAME", help="same as NAME")


def create(args: argparse.Namespace, context: CommandContext) -> int:
    created = context.client.identities.create(
        args.name,
        KINDS[args.kind],
        description=args.description,
        external_id=args.external_id,
    )
    context.emit(created.model_dump(mode="json"))
    if created.client_secret:
        print_note(
            f"Keep the client secret of {created.name!r} now: it is not shown again "
            f"(`sluice identity rotate-secret {created.name}` makes a new one)."
        )
    return 0


def show(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit(context.client.identities.get(_name(args)).model_dump(mode="json"))
    return 0


def list_(args: argparse.Namespace, context: CommandContext) -> int:
    context.emit([i.model_dump(mode="json") for i in context.client.identities.list()])
    return 0


def delete(args: argparse.Namespace, context: CommandContext) -> int:
    context.client.identities.delete(_name(args))
    return 0


def rotate_secret(args: argparse.Namespace, context: CommandContext) -> int:
    rotated = context.client.identities.rotate_secret(_name(args))
    context.emit(rotated.model_dump(mode="json"))
    print_note(f"The old secret of {rotated.name!r} no longer works; keep this one now.")
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``identity`` group."""
    commands = add_group(
        subcommands, "identity", "Create, show, list and delete users and service principals."
    )
    parser = add_command(
        commands,
        "create",
        "Create a user or a service principal (which gets a client id and secret).",
        create,
        common,
    )
    parser.add_argument("kind", choices=["user", "service-principal"], help="what to create")
    parser.add_argument("name", metavar="NAME", help="its name")
    parser.add_argument("--description", help="what it is for")
    parser.add_argument(
        "--external-id",
        metavar="SUBJECT",
        help="the oid or sub of the external OpenID Connect issuer's tokens that act as it",
    )
    parser = add_command(commands, "show", "Show an identity and its roles.", show, common)
    _add_name(parser)
    add_command(commands, "list", "List the identities.", list_, common)
    parser = add_command(
        commands,
        "delete",
        "Delete an identity and its roles; its tokens stop working.",
        delete,
        common,
    )
    _add_name(parser)
    parser = add_command(
        commands,
        "rotate-secret",
        "Give a service principal a new secret; the old one stops working.",
        rotate_secret,
        common,
    )
    _add_name(parser)
