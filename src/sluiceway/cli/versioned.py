"""The ``create -f`` and ``show`` of versioned resources (components, environments, data and
models), whose SDK operations have the same ``create_or_update`` and ``get``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sluiceway.cli.arguments import existing_file, override_name_version, version_or_label
from sluiceway.cli.context import CommandContext
from sluiceway.cli.output import resource_json


def create_from_file(
    args: argparse.Namespace,
    context: CommandContext,
    load: Callable[[Path], Any],
    operations: Any,
) -> int:
    """Load ``--file`` with ``load``, apply ``--name`` and ``--version``, and register it."""
    resource = load(existing_file(args.file))
    override_name_version(resource, args)
    context.emit(resource_json(operations.create_or_update(resource)))
    return 0


def show_version(args: argparse.Namespace, context: CommandContext, operations: Any) -> int:
    """Show ``--name`` at ``--version`` or ``--label`` (default: latest)."""
    version, label = version_or_label(args)
    context.emit(resource_json(operations.get(args.name, version=version, label=label)))
    return 0
