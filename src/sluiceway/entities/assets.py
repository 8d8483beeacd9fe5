"""Data assets and models (``Datastore`` lives in ``entities.datastore``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sluiceway.entities._resource import (
    RestBacked,
    SystemData,
    drop_empty,
    str_dict,
    str_or_none,
)


class _VersionedAsset(RestBacked):
    """A named, versioned pointer to files: the shape data assets and models share."""

    default_type = "uri_folder"

    def __init__(
        self,
        *,
        name: str | None = None,
        version: str | int | None = None,
        type: str | None = None,
        path: str | os.PathLike[str] | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.version = str_or_none(version)
        self.type = str(type) if type is not None else self.default_type
        self.path = None if path is None else os.fspath(path)
        self.description = description
        self.tags = str_dict(tags)
        self.properties = str_dict(properties)
        self.id: str | None = None
        self.creation_context: SystemData | None = None

    def _fill_from_rest(self, raw: Mapping[str, Any]) -> None:
        self.id = str_or_none(raw.get("id"))
        self.creation_context = SystemData._from_rest(raw.get("creation_context"))
        self._keep(raw)

    def _local_dict(self) -> dict[str, Any]:
        return drop_empty(
            {
                "name": self.name,
                "version": self.version,
                "type": self.type,
                "path": self.path,
                "description": self.description,
                "tags": self.tags,
                "properties": self.properties,
            }
        )

    def _to_create_body(self, path: str) -> dict[str, Any]:
        """The ``DataCreate`` / ``ModelCreate`` body, with ``path`` already uploaded."""
        return drop_empty(
            {
                "name": self.name,
                "version": self.version,
                "type": self.type,
                "path": path,
                "description": self.description,
                "tags": self.tags,
                "properties": self.properties,
            }
        )


class Data(_VersionedAsset):
    """A data asset: ``uri_folder`` (the default), ``uri_file`` or ``mltable``.

    ``path`` may be local; ``ml_client.data.create_or_update`` uploads it first.
    """

    default_type = "uri_folder"

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> Data:
        data = cls(
            name=str_or_none(raw.get("name")),
            version=str_or_none(raw.get("version")),
            type=str_or_none(raw.get("type")),
            path=str_or_none(raw.get("path")),
            description=str_or_none(raw.get("description")),
            tags=raw.get("tags"),
            properties=raw.get("properties"),
        )
        data._fill_from_rest(raw)
        return data


class Model(_VersionedAsset):
    """A model: ``custom_model`` (the default) or ``mlflow_model``.

    ``path`` may be a local folder or file; ``ml_client.models.create_or_update`` uploads it.
    ``flavors`` and ``stage`` are accepted, as Azure's are, and not sent.
    """

    default_type = "custom_model"

    def __init__(
        self,
        *,
        name: str | None = None,
        version: str | int | None = None,
        type: str | None = None,
        path: str | os.PathLike[str] | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        flavors: Mapping[str, Any] | None = None,
        stage: str | None = None,
    ) -> None:
        super().__init__(
            name=name,
            version=version,
            type=type,
            path=path,
            description=description,
            tags=tags,
            properties=properties,
        )
        self.flavors = dict(flavors) if flavors else None
        self.stage = stage

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> Model:
        model = cls(
            name=str_or_none(raw.get("name")),
            version=str_or_none(raw.get("version")),
            type=str_or_none(raw.get("type")),
            path=str_or_none(raw.get("path")),
            description=str_or_none(raw.get("description")),
            tags=raw.get("tags"),
            properties=raw.get("properties"),
        )
        model._fill_from_rest(raw)
        return model
