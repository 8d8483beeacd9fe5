"""Datastores: the Azure-style YAML that creates one, and what the API answers.

``type`` is ``azure_blob`` (``account_name``, ``container_name``), ``azure_data_lake_gen2``
(``account_name``, ``filesystem``), ``s3`` (``bucket``, ``endpoint_url``, ``region``) or
``local`` (``root``). ``credentials`` holds ``account_key`` or ``sas_token`` (Azure), or
``access_key_id`` + ``secret_access_key`` (+ ``session_token``) (S3); no credentials means a
public container or the server's ambient AWS credentials. Credentials are stored encrypted and
no response ever holds them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from sluiceway.schemas.common import Open, Strict

DATASTORE_NAME_RE = re.compile(r"[a-zA-Z0-9_]{1,255}")

#: The settings each type takes, besides name, type, description, tags and credentials.
TYPE_SETTINGS: dict[str, tuple[str, ...]] = {
    "azure_blob": ("account_name", "container_name", "endpoint", "protocol"),
    "azure_data_lake_gen2": ("account_name", "filesystem", "endpoint", "protocol"),
    "s3": ("bucket", "endpoint_url", "region"),
    "local": ("root",),
}
SETTING_FIELDS = tuple(sorted({k for keys in TYPE_SETTINGS.values() for k in keys}))


class DatastoreCreate(Strict):
    """``PUT /datastores/{name}``: the datastore YAML of ``sluice datastore create -f``."""

    schema_url: str | None = Field(default=None, alias="$schema")
    name: str
    type: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    account_name: str | None = None
    container_name: str | None = None
    filesystem: str | None = None
    endpoint: str | None = None
    protocol: str | None = None
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    root: str | None = None
    credentials: dict[str, str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DATASTORE_NAME_RE.fullmatch(value):
            raise ValueError(
                f"name {value!r} is not valid: use 1-255 letters, digits or underscores"
            )
        return value

    def settings(self) -> dict[str, Any]:
        """The non-secret settings that were given."""
        return {k: getattr(self, k) for k in SETTING_FIELDS if getattr(self, k) is not None}


class DatastoreOut(Open):
    id: str
    name: str
    type: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    is_default: bool = False
    account_name: str | None = None
    container_name: str | None = None
    filesystem: str | None = None
    endpoint: str | None = None
    protocol: str | None = None
    bucket: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    root: str | None = None
    #: Which kind of credential is stored (``account_key``, ``sas_token``, ``access_key``) or
    #: ``none``; never the credential itself.
    credentials: dict[str, str] = Field(default_factory=dict)


__all__ = ["DATASTORE_NAME_RE", "TYPE_SETTINGS", "DatastoreCreate", "DatastoreOut"]
