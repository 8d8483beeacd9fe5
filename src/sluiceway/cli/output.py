"""How ``sluice`` prints results and errors.

Results are printed like ``az ml`` prints them: the resource's JSON with an indent of 2, lists
as JSON arrays, so ``sluice data show ... | jq -r .id`` works as the reference page uses it.
``--query`` takes a small part of JMESPath (dotted names, ``[N]`` and ``[]``), and ``--output``
``tsv`` prints bare values for shell variables.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from sluiceway.errors import ValidationError

_STEP = re.compile(r"\.?(?P<key>[A-Za-z_][\w\-]*)|\[(?P<index>-?\d*)\]")
_QUERY_HELP = "use a dotted path such as 'id', 'properties.status' or '[].name'"


@dataclass(frozen=True)
class OutputOptions:
    """The ``--output`` format and ``--query`` of one command."""

    format: str = "json"
    query: str | None = None


@dataclass(frozen=True)
class _Step:
    key: str | None = None
    index: int | None = None  # None with no key: every element ("[]")


def _parse_query(query: str) -> list[_Step]:
    steps: list[_Step] = []
    position = 0
    text = query.strip()
    if text in ("", "@"):
        return steps
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None or (match.start() == 0 and text.startswith(".")):
            raise ValidationError(
                f"--query {query!r} is not supported; {_QUERY_HELP}", target="query"
            )
        if match["key"] is not None:
            steps.append(_Step(key=match["key"]))
        elif match["index"]:
            steps.append(_Step(index=int(match["index"])))
        else:
            steps.append(_Step())
        position = match.end()
    return steps


def _evaluate(value: Any, steps: list[_Step]) -> Any:
    if not steps:
        return value
    step, rest = steps[0], steps[1:]
    if step.key is not None:
        return _evaluate(value.get(step.key), rest) if isinstance(value, dict) else None
    if not isinstance(value, list):
        return None
    if step.index is None:
        # A projection, as in JMESPath: apply the rest to each element, dropping nulls.
        found = (_evaluate(item, rest) for item in value)
        return [item for item in found if item is not None]
    if -len(value) <= step.index < len(value):
        return _evaluate(value[step.index], rest)
    return None


def apply_query(value: Any, query: str | None) -> Any:
    """The part of ``value`` that ``query`` names; None when it names nothing.

    Raises:
        ValidationError: the query uses more of JMESPath than this supports.
    """
    if query is None:
        return value
    return _evaluate(value, _parse_query(query))


def _tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _tsv(value: Any) -> str:
    if value is None:
        return ""
    rows = value if isinstance(value, list) else [value]
    lines = []
    for row in rows:
        cells = list(row.values()) if isinstance(row, dict) else [row]
        lines.append("\t".join(_tsv_cell(cell) for cell in cells))
    return "\n".join(lines)


def render(value: Any, options: OutputOptions) -> str | None:
    """The text to print for a result, or None to print nothing."""
    value = apply_query(value, options.query)
    if options.format == "none":
        return None
    if options.format == "tsv":
        return _tsv(value)
    if options.format == "yaml":
        import yaml

        return str(yaml.safe_dump(value, sort_keys=False, default_flow_style=False)).rstrip("\n")
    return json.dumps(value, indent=2, default=str)


def print_result(value: Any, options: OutputOptions, stream: TextIO | None = None) -> None:
    """Print a result (a resource's JSON, or a list of them) on stdout."""
    text = render(value, options)
    if text is not None:
        print(text, file=stream or sys.stdout)


def print_error(message: str, stream: TextIO | None = None) -> None:
    """Print ``ERROR: <message>`` on stderr, as az does."""
    print(f"ERROR: {message}", file=stream or sys.stderr)


def print_note(message: str, stream: TextIO | None = None) -> None:
    """Print a remark for the user on stderr, leaving stdout to the result."""
    print(message, file=stream or sys.stderr)


def resource_json(entity: Any) -> Any:
    """The server's JSON for an SDK entity, as ``show`` prints it."""
    return entity._to_dict()


def resources_json(entities: Iterable[Any]) -> list[Any]:
    """The JSON array ``list`` prints."""
    return [resource_json(entity) for entity in entities]
