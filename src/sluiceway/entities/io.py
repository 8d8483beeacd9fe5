"""Job inputs and outputs: ``Input`` and ``Output`` as in ``azure.ai.ml``."""

from __future__ import annotations

import os
from typing import Any

from sluiceway.entities._resource import drop_empty

#: Literal input types, with ``float`` as the reference page's name for ``number``.
LITERAL_TYPES = frozenset({"string", "integer", "number", "float", "boolean"})
#: Data input types, as the YAML and the SDK spell them.
DATA_INPUT_TYPES = frozenset(
    {"uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model"}
)
OUTPUT_TYPES = frozenset({"uri_file", "uri_folder"})

Literal = str | int | float | bool


class Input:
    """One job input: data at ``path``, or a literal value in ``default``.

    ``Input(type=AssetTypes.URI_FOLDER, path="azureml://datastores/ds/paths/data/")`` is a data
    input; ``Input(type="integer", default=5)`` a literal. ``path`` may be a local file or
    folder: the SDK uploads it before invoking. ``type=None`` takes a data asset's own type
    (and ``uri_folder`` for anything else).
    """

    def __init__(
        self,
        *,
        type: str | None = "uri_folder",
        path: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        default: Literal | None = None,
        min: int | float | None = None,
        max: int | float | None = None,
        optional: bool | None = None,
        description: str | None = None,
        enum: list[str] | None = None,
        datastore: str | None = None,
    ) -> None:
        self.type = None if type is None else str(type)
        self.path = None if path is None else os.fspath(path)
        self.mode = mode
        self.default = default
        self.min = min
        self.max = max
        self.optional = optional
        self.description = description
        self.enum = enum
        self.datastore = datastore

    @property
    def is_literal(self) -> bool:
        return self.type is not None and self.type.lower() in LITERAL_TYPES

    def _copy(self, **changes: Any) -> Input:
        values = dict(vars(self))
        values.update(changes)
        return Input(**values)

    def _to_dict(self) -> dict[str, Any]:
        return drop_empty(
            {
                "type": self.type,
                "path": self.path,
                "mode": self.mode,
                "default": self.default,
                "min": self.min,
                "max": self.max,
                "optional": self.optional,
                "description": self.description,
                "enum": self.enum,
                "datastore": self.datastore,
            }
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._to_dict().items())
        return f"Input({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Input) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


class Output:
    """One job output; without ``path`` the server picks its default location."""

    def __init__(
        self,
        *,
        type: str | None = "uri_folder",
        path: str | None = None,
        mode: str | None = None,
        description: str | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        self.type = None if type is None else str(type)
        self.path = path
        self.mode = mode
        self.description = description
        self.name = name
        self.version = version

    def _to_dict(self) -> dict[str, Any]:
        return drop_empty(
            {
                "type": self.type,
                "path": self.path,
                "mode": self.mode,
                "description": self.description,
                "name": self.name,
                "version": self.version,
            }
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._to_dict().items())
        return f"Output({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Output) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]
