"""Datastores, data assets and models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sluiceway.schemas.common import (
    ASSET_NAME_RE,
    VERSION_RULE,
    AssetType,
    CreationContext,
    Open,
    Strict,
    is_version_text,
)
from sluiceway.schemas.datastores import DatastoreOut


def _check_asset_name(value: str) -> str:
    if not ASSET_NAME_RE.fullmatch(value):
        raise ValueError(
            f"name {value!r} is not valid: use 1-255 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return value


def _check_version(value: str | None) -> str | None:
    if value is None:
        return None
    value = str(value)
    if not is_version_text(value):
        raise ValueError(f"version {value!r} is not valid: {VERSION_RULE}")
    return value


class VersionedCreate(Strict):
    """What every versioned resource's create body starts with: a checked name and version
    (none: the next number)."""

    name: str
    version: str | None = None

    _name = field_validator("name")(_check_asset_name)
    _version = field_validator("version", mode="before")(_check_version)


class DataCreate(VersionedCreate):
    """``POST /data``: register a new version of a data asset.

    ``path`` is a datastore URI or a storage URL; clients upload local files first.
    """

    type: Literal["uri_file", "uri_folder", "mltable"] = "uri_folder"
    path: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)


class DataOut(Open):
    id: str
    name: str
    version: str
    type: str
    path: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    creation_context: CreationContext | None = None


class ModelCreate(VersionedCreate):
    """``POST /models``: register a new version of a model folder (already uploaded)."""

    type: Literal["custom_model", "mlflow_model"] = "custom_model"
    path: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)


class ModelOut(Open):
    id: str
    name: str
    version: str
    type: str
    path: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    creation_context: CreationContext | None = None


class UploadRecord(Strict):
    """``PUT /uploads/{hash}``: a finished local upload, so the same content is not sent again."""

    name: str
    path: str


__all__ = [
    "AssetType",
    "DataCreate",
    "DataOut",
    "DatastoreOut",
    "ModelCreate",
    "ModelOut",
    "UploadRecord",
]
