"""``sluice data`` and ``sluice model``: versioned assets, created from YAML or from flags.

Both groups have the same verbs as ``az ml data`` and ``az ml model``: ``create -f FILE`` (or
``--name --path --type``), ``show -n NAME [--version V | --label latest]`` and ``list``. The
SDK uploads a local ``path`` to the default datastore.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluiceway.cli.arguments import (
    Subcommands,
    add_command,
    add_group,
    add_version_choice,
    existing_file,
    override_name_version,
)
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resource_json, resources_json
from sluiceway.cli.versioned import show_version
from sluiceway.errors import ValidationError

if TYPE_CHECKING:
    from sluiceway import MLClient


def _data_operations(client: MLClient) -> Any:
    return client.data


def _model_operations(client: MLClient) -> Any:
    return client.models


def _load_data(path: Path) -> Any:
    from sluiceway import load_data

    return load_data(path)


def _load_model(path: Path) -> Any:
    from sluiceway import load_model

    return load_model(path)


def _new_data(**fields: Any) -> Any:
    from sluiceway import Data

    return Data(**fields)


def _new_model(**fields: Any) -> Any:
    from sluiceway import Model

    return Model(**fields)


@dataclass(frozen=True)
class AssetKind:
    """What differs between ``data`` and ``model``."""

    group: str
    noun: str
    types: tuple[str, ...]
    default_type: str | None
    operations: Callable[[MLClient], Any]
    load: Callable[[Path], Any]
    new: Callable[..., Any]


DATA = AssetKind(
    group="data",
    noun="data asset",
    types=("uri_folder", "uri_file", "mltable"),
    default_type="uri_folder",
    operations=_data_operations,
    load=_load_data,
    new=_new_data,
)
MODEL = AssetKind(
    group="model",
    noun="model",
    types=("custom_model", "mlflow_model"),
    default_type=None,
    operations=_model_operations,
    load=_load_model,
    new=_new_model,
)


def _create(kind: AssetKind, args: argparse.Namespace, context: CommandContext) -> int:
    fields = {
        "name": args.name,
        "version": args.version,
        "type": args.type,
        "path": args.path,
        "description": args.description,
    }
    given = {key: value for key, value in fields.items() if value is not None}
    if args.file is not None:
        asset = kind.load(existing_file(args.file))
        override_name_version(asset, args)
        if args.type is not None:
            asset.type = args.type
        if args.path is not None:
            asset.path = args.path
        if args.description is not None:
            asset.description = args.description
    else:
        missing = [f"--{key}" for key in ("name", "path") if key not in given]
        if kind.default_type is None and "type" not in given:
            missing.append("--type")
        if missing:
            raise ValidationError(
                f"{kind.group} create needs --file, or {', '.join(missing)} "
                f"(--type is one of {', '.join(kind.types)})",
                target=missing[0].lstrip("-"),
            )
        given.setdefault("type", kind.default_type)
        asset = kind.new(**given)
    created = kind.operations(context.client).create_or_update(asset)
    context.emit(resource_json(created))
    return 0


def _show(kind: AssetKind, args: argparse.Namespace, context: CommandContext) -> int:
    return show_version(args, context, kind.operations(context.client))


def _list(kind: AssetKind, args: argparse.Namespace, context: CommandContext) -> int:
    operations = kind.operations(context.client)
    assets = operations.list(name=args.name) if args.name else operations.list()
    context.emit(resources_json(assets))
    return 0


def _register_kind(
    subcommands: Subcommands, common: argparse.ArgumentParser, kind: AssetKind, help_text: str
) -> None:
    commands = add_group(subcommands, kind.group, help_text)

    def create(args: argparse.Namespace, context: CommandContext) -> int:
        return _create(kind, args, context)

    def show(args: argparse.Namespace, context: CommandContext) -> int:
        return _show(kind, args, context)

    def list_(args: argparse.Namespace, context: CommandContext) -> int:
        return _list(kind, args, context)

    parser = add_command(
        commands, "create", f"Register a {kind.noun} (a new version).", create, common
    )
    parser.add_argument("-f", "--file", help=f"the {kind.noun} YAML; relative paths start at it")
    parser.add_argument("-n", "--name", help="the name (overrides the file's)")
    parser.add_argument("-v", "--version", help="the version; default: the next number")
    parser.add_argument(
        "-t",
        "--type",
        choices=kind.types,
        help=f"the {kind.noun} type"
        + (f" (default: {kind.default_type})" if kind.default_type else ""),
    )
    parser.add_argument(
        "-p", "--path", help="a local file or folder (uploaded), or a datastore URI"
    )
    parser.add_argument("-d", "--description")

    parser = add_command(commands, "show", f"Show a {kind.noun} as JSON.", show, common)
    add_version_choice(parser)

    parser = add_command(
        commands,
        "list",
        f"List {kind.noun}s (the latest version of each), or one's versions.",
        list_,
        common,
    )
    parser.add_argument("-n", "--name", help=f"list the versions of this {kind.noun}")


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``data`` and ``model`` groups."""
    _register_kind(subcommands, common, DATA, "Manage data assets.")
    _register_kind(subcommands, common, MODEL, "Manage models.")
