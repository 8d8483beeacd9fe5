"""Reading a YAML file a user names: every way it can be unusable is a one-line error.

Each ``-f`` file (data, model, endpoint, deployment, component, datastore, invoke inputs) and a
deployment's conda file is read here. A file that is missing or unreadable, not UTF-8, not
YAML, nested deeper than :data:`MAX_DEPTH`, expanding (through aliases) to more than
:data:`MAX_VALUES` values, referring to itself, or holding a value Python cannot build (an
integer of more than 4,300 digits) raises a :class:`ValidationError` that names the file and
what is wrong, rather than a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from sluiceway.errors import ValidationError

Source = str | os.PathLike[str] | IO[str] | IO[bytes]

#: Deepest nesting of mappings and lists accepted; no Azure ML file comes near it.
MAX_DEPTH = 100
#: Most values a file may expand to once its aliases are followed (as JSON would write it).
MAX_VALUES = 1_000_000


@dataclass(frozen=True)
class YamlFile:
    """A YAML file's content, the folder its relative paths start at, and its name."""

    content: Any
    base: Path
    label: str


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _text(raw: str | bytes, label: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise ValidationError(
            f"{label}: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start}); save the file "
            "as UTF-8",
            target="file",
        ) from None


def read_yaml(source: Source, what: str = "YAML file") -> YamlFile:
    """Read and parse the YAML file or stream ``source``.

    Args:
        source: A path, or an open text or binary stream.
        what: How to name the file in the error of a file that does not exist.

    Raises:
        ValidationError: the file is missing or unreadable, or its content cannot be used;
            the message names the file and what is wrong.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        label = str(path)
        try:
            raw: str | bytes = path.read_bytes()
        except FileNotFoundError:
            raise ValidationError(f"{what} {label!r} does not exist", target="file") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ValidationError(f"{what} {label!r} cannot be read: {reason}") from None
        base = path.resolve().parent
    else:
        raw = source.read()
        label = str(getattr(source, "name", "<stream>"))
        base = Path.cwd()
    text = _text(raw, label)
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{label}: not valid YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise ValidationError(
            f"{label}: nested too deeply (at most {MAX_DEPTH} levels of mappings and lists)",
            target="file",
        ) from None
    except ValueError as exc:
        # A value YAML parses but Python will not build: an integer of more than 4,300
        # digits, a date like 2020-13-45.
        reason = _one_line(str(exc)).split(": use ")[0].split("; use ")[0]
        raise ValidationError(f"{label}: a value cannot be read: {reason}") from None
    _check_shape(content, label)
    return YamlFile(content, base, label)


def _children(node: dict[Any, Any] | list[Any]) -> Iterable[Any]:
    return node.values() if isinstance(node, dict) else node


def _check_shape(content: Any, label: str) -> None:
    """Refuse content nested too deep, too large once aliases are followed, or cyclic.

    Walks without recursion, each shared (aliased) node once, so a hostile file cannot make
    the check itself slow or deep.
    """
    done: dict[int, tuple[int, int]] = {}  # id -> (depth, values it expands to)
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(content, False)]
    while stack:
        node, finished = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        if finished:
            depth, values = 1, 1
            for child in _children(node):
                if isinstance(child, dict | list):
                    child_depth, child_values = done[id(child)]
                    depth = max(depth, child_depth + 1)
                    values += child_values
                else:
                    values += 1
            open_nodes.discard(key)
            done[key] = (depth, values)
            if depth > MAX_DEPTH:
                raise ValidationError(
                    f"{label}: nested too deeply (at most {MAX_DEPTH} levels of mappings and "
                    "lists)",
                    target="file",
                )
            if values > MAX_VALUES:
                raise ValidationError(
                    f"{label}: expands to more than {MAX_VALUES:,} values once its aliases "
                    "are followed",
                    target="file",
                )
            continue
        if key in done:
            continue
        if key in open_nodes:
            raise ValidationError(
                f"{label}: a value contains itself (an alias inside its own anchor)",
                target="file",
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
