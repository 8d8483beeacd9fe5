"""Datastores, named as in ``azure.ai.ml.entities``, plus ``S3Datastore`` and ``LocalDatastore``.

Build one and register it with ``ml_client.datastores.create_or_update``::

    store = AzureBlobDatastore(
        name="blob_example",
        account_name="mytestblobstore",
        container_name="data-container",
        credentials=AccountKeyConfiguration(account_key="<key>"),
    )

Credentials go to the server, which stores them encrypted; what the server answers never holds
them, so an entity read back has ``credentials`` None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluiceway.entities._resource import RestBacked, drop_empty, str_dict, str_or_none
from sluiceway.storage.retired import gen1_refusal, is_gen1_type

_SETTINGS = (
    "account_name",
    "container_name",
    "filesystem",
    "endpoint",
    "protocol",
    "bucket",
    "endpoint_url",
    "region",
    "root",
)


@dataclass
class AccountKeyConfiguration:
    """An Azure storage account key."""

    account_key: str

    def _to_dict(self) -> dict[str, str]:
        return {"account_key": self.account_key}


@dataclass
class SasTokenConfiguration:
    """An Azure shared access signature (the query string, with or without ``?``)."""

    sas_token: str

    def _to_dict(self) -> dict[str, str]:
        return {"sas_token": self.sas_token}


@dataclass
class AccessKeyConfiguration:
    """An AWS access key pair (and session token) for an S3 datastore."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def _to_dict(self) -> dict[str, str]:
        return drop_empty(
            {
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key,
                "session_token": self.session_token,
            }
        )


Credentials = (
    AccountKeyConfiguration | SasTokenConfiguration | AccessKeyConfiguration | Mapping[str, str]
)


class Datastore(RestBacked):
    """A named storage location. ``type``: local, azure_blob, azure_data_lake_gen2 or s3."""

    default_type = "local"

    def __init__(
        self,
        *,
        name: str,
        type: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        is_default: bool = False,
        credentials: Credentials | None = None,
        **settings: str | None,
    ) -> None:
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise TypeError(
                f"Datastore got unexpected settings {', '.join(unknown)}; accepted: "
                + ", ".join(_SETTINGS)
            )
        self.name = name
        self.type = type or self.default_type
        self.description = description
        self.tags = str_dict(tags)
        self.is_default = is_default
        self.credentials = credentials
        self.settings: dict[str, str] = {k: str(v) for k, v in settings.items() if v is not None}
        self.id: str | None = None

    def __getattr__(self, name: str) -> Any:
        if name in _SETTINGS:
            return self.__dict__.get("settings", {}).get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> Datastore:
        kind = str(raw.get("type", ""))
        target = _BY_TYPE.get(kind, Datastore)
        store = Datastore.__new__(target)
        Datastore.__init__(
            store,
            name=str(raw.get("name", "")),
            type=kind,
            description=str_or_none(raw.get("description")),
            tags=raw.get("tags"),
            is_default=bool(raw.get("is_default", False)),
        )
        store.settings = {k: str(raw[k]) for k in _SETTINGS if raw.get(k) is not None}
        store.id = str_or_none(raw.get("id"))
        store._keep(raw)
        return store

    @classmethod
    def _from_yaml(cls, content: Mapping[str, Any]) -> Datastore:
        """A datastore from the YAML of ``sluice datastore create -f``; checked by the server."""
        values = {str(k): v for k, v in content.items() if k != "$schema"}
        credentials = values.pop("credentials", None)
        if credentials is not None and not isinstance(credentials, Mapping):
            raise TypeError("credentials must be a mapping (account_key, sas_token, ...)")
        name = values.pop("name", None)
        kind = values.pop("type", None)
        if kind is not None and is_gen1_type(str(kind)):
            raise gen1_refusal(f"datastore type {kind!r}", target="type")
        known = {"description", "tags", *_SETTINGS}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(
                f"datastore YAML has unknown keys {', '.join(unknown)}; accepted: name, type, "
                "description, tags, credentials, " + ", ".join(_SETTINGS)
            )
        target = _BY_TYPE.get(str(kind), Datastore)
        store = Datastore.__new__(target)
        Datastore.__init__(
            store,
            name=str(name or ""),
            type=str_or_none(kind),
            description=str_or_none(values.pop("description", None)),
            tags=values.pop("tags", None),
            credentials={str(k): str(v) for k, v in credentials.items()} if credentials else None,
        )
        store.settings = {k: str(v) for k, v in values.items() if v is not None}
        return store

    def _credentials_dict(self) -> dict[str, str] | None:
        creds = self.credentials
        if creds is None:
            return None
        if isinstance(creds, Mapping):
            return {str(k): str(v) for k, v in creds.items()}
        return creds._to_dict()

    def _to_create_body(self) -> dict[str, Any]:
        """The ``PUT /datastores/{name}`` body, credentials included."""
        return drop_empty(
            {
                "name": self.name,
                "type": self.type,
                "description": self.description,
                "tags": self.tags,
                **self.settings,
                "credentials": self._credentials_dict(),
            }
        )

    def _local_dict(self) -> dict[str, Any]:
        return drop_empty(
            {
                "name": self.name,
                "type": self.type,
                "description": self.description,
                "tags": self.tags,
                "is_default": self.is_default or None,
                **self.settings,
            }
        )


class AzureBlobDatastore(Datastore):
    """``type: azure_blob``: ``account_name``, ``container_name`` (and ``endpoint``,
    ``protocol``); credentials an account key, a SAS token, or none for a public container."""

    default_type = "azure_blob"

    def __init__(
        self,
        *,
        name: str,
        account_name: str,
        container_name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        protocol: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        super().__init__(
            name=name,
            description=description,
            tags=tags,
            credentials=credentials,
            account_name=account_name,
            container_name=container_name,
            endpoint=endpoint,
            protocol=protocol,
        )


class AzureDataLakeGen2Datastore(Datastore):
    """``type: azure_data_lake_gen2``: ``account_name``, ``filesystem`` (and ``endpoint``,
    ``protocol``)."""

    default_type = "azure_data_lake_gen2"

    def __init__(
        self,
        *,
        name: str,
        account_name: str,
        filesystem: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        protocol: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        super().__init__(
            name=name,
            description=description,
            tags=tags,
            credentials=credentials,
            account_name=account_name,
            filesystem=filesystem,
            endpoint=endpoint,
            protocol=protocol,
        )


class S3Datastore(Datastore):
    """``type: s3``: ``bucket`` (and ``endpoint_url``, ``region``); credentials an access key,
    or none for the server's ambient AWS credentials."""

    default_type = "s3"

    def __init__(
        self,
        *,
        name: str,
        bucket: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        super().__init__(
            name=name,
            description=description,
            tags=tags,
            credentials=credentials,
            bucket=bucket,
            endpoint_url=endpoint_url,
            region=region,
        )


class LocalDatastore(Datastore):
    """``type: local``: a folder (``root``) on the server's machine."""

    default_type = "local"

    def __init__(
        self,
        *,
        name: str,
        root: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name=name, description=description, tags=tags, root=root)


_BY_TYPE: dict[str, type[Datastore]] = {
    "azure_blob": AzureBlobDatastore,
    "azure_data_lake_gen2": AzureDataLakeGen2Datastore,
    "s3": S3Datastore,
    "local": LocalDatastore,
}
