"""Turn pydantic's validation errors into Sluiceway's, so callers see one exception tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic

from sluiceway.errors import ValidationError

ShapeT = TypeVar("ShapeT", bound=pydantic.BaseModel)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def describe(exc: pydantic.ValidationError) -> list[str]:
    """One readable line per problem: ``settings.mini_batch_size: Input should be ...``."""
    lines = []
    for err in exc.errors():
        where = _location(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key {where!r}")
        elif err["type"] == "missing":
            lines.append(f"{where}: a value is required")
        else:
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {message} (got {err.get('input')!r})" if where else message)
    return lines


def validate_shape(shape: type[ShapeT], data: Mapping[str, Any], *, source: str) -> ShapeT:
    """Validate ``data`` against a schema, raising :class:`ValidationError` naming ``source``.

    Args:
        shape: The pydantic model (a ``*Create`` schema).
        data: The raw mapping (from YAML, arguments or an entity).
        source: What the data came from, e.g. a file name or ``"BatchEndpoint"``.

    Raises:
        ValidationError: listing every problem, with the offending key and value.
    """
    try:
        return shape.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        problems = describe(exc)
        first = exc.errors()[0]["loc"] if exc.errors() else ()
        raise ValidationError(
            f"{source}: " + "; ".join(problems), target=_location(tuple(first)) or None
        ) from None
