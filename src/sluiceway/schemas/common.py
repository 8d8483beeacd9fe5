"""Shapes and names shared by every resource."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from sluiceway.storage.uris import DEFAULT_DATASTORE as DEFAULT_DATASTORE
from sluiceway.storage.uris import datastore_uri as datastore_uri

ARM_PROVIDER = "Microsoft.MachineLearningServices"
ENDPOINT_NAME_RE = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
ASSET_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,254}")
# Names are checked with ``fullmatch``: ``$`` would also match before a final newline.
VERSION_RULE = "it may not be empty or hold '/', ':', '@', spaces or control characters"


def is_version_text(text: str) -> bool:
    """Whether ``text`` may be an asset's or a component's version (see ``VERSION_RULE``)."""
    return bool(text) and not any(c in "/:@" or c.isspace() or not c.isprintable() for c in text)


class AssetType(StrEnum):
    URI_FILE = "uri_file"
    URI_FOLDER = "uri_folder"
    MLTABLE = "mltable"
    CUSTOM_MODEL = "custom_model"
    MLFLOW_MODEL = "mlflow_model"


class Strict(BaseModel):
    """Base for request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Open(BaseModel):
    """Base for response bodies: clients ignore fields they do not know."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreationContext(Open):
    created_at: datetime
    created_by: str
    last_modified_at: datetime | None = None


@dataclass(frozen=True)
class WorkspaceScope:
    """The Azure-style coordinates of this workspace, used in resource ids.

    Sluiceway serves one workspace per server; its ids carry these parts so that code that
    builds or parses Azure ARM ids works unchanged.
    """

    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "sluiceway"
    workspace_name: str = "default"

    @property
    def prefix(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{ARM_PROVIDER}/workspaces/{self.workspace_name}"
        )

    def is_named(self, subscription: str, resource_group: str, workspace: str) -> bool:
        """Whether a path's coordinates name this workspace (the resource group in any case,
        as ARM takes it)."""
        return (
            subscription == self.subscription_id
            and resource_group.lower() == self.resource_group.lower()
            and workspace == self.workspace_name
        )

    def datastore_id(self, name: str) -> str:
        return f"{self.prefix}/datastores/{name}"

    def data_id(self, name: str, version: str) -> str:
        return f"{self.prefix}/data/{name}/versions/{version}"

    def model_id(self, name: str, version: str) -> str:
        return f"{self.prefix}/models/{name}/versions/{version}"

    def environment_id(self, name: str, version: str) -> str:
        return f"{self.prefix}/environments/{name}/versions/{version}"

    def endpoint_id(self, name: str) -> str:
        return f"{self.prefix}/batchEndpoints/{name}"

    def deployment_id(self, endpoint: str, name: str) -> str:
        return f"{self.prefix}/batchEndpoints/{endpoint}/deployments/{name}"

    def job_id(self, name: str) -> str:
        return f"{self.prefix}/jobs/{name}"

    def compute_id(self, name: str) -> str:
        return f"{self.prefix}/computes/{name}"
