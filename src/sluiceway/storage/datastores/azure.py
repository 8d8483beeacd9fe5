"""What ``azure_blob`` and ``azure_data_lake_gen2`` share: one container reached over the Blob API.

Both are read through adlfs and written through azure-storage-blob (extra ``azure``). An ADLS
Gen2 file system is a blob container of a storage account with a hierarchical namespace, and
the Blob API reaches it as it reaches any container, so the two types differ only in the name
of the setting that names the container.

``endpoint`` is Azure's storage DNS suffix (``core.windows.net``, the default) or, for an
emulator such as Azurite, the blob service's URL (``http://127.0.0.1:10000/devstoreaccount1``;
a URL with no path gets ``/<account_name>`` added, as emulators are path-style).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sluiceway.errors import MissingExtraError, ValidationError
from sluiceway.storage.datastores.base import (
    ClientSettings,
    DatastoreType,
    contained_path,
    optional,
    required,
)
from sluiceway.storage.network import PrivateNetworkPolicy

DEFAULT_SUFFIX = "core.windows.net"
CREDENTIAL_KEYS = ("account_key", "sas_token")


def blob_endpoint(account: str, endpoint: str | None, protocol: str | None) -> str:
    """The blob service URL of ``account``."""
    if endpoint and "://" in endpoint:
        parts = urlsplit(endpoint)
        if not parts.hostname:
            raise ValidationError(f"endpoint {endpoint!r} is not a URL.", target="endpoint")
        base = endpoint.rstrip("/")
        return base if parts.path.strip("/") else f"{base}/{account}"
    scheme = (protocol or "https").lower()
    if scheme not in ("https", "http"):
        raise ValidationError(
            f"protocol {protocol!r} is not accepted; use https or http.", target="protocol"
        )
    return f"{scheme}://{account}.blob.{endpoint or DEFAULT_SUFFIX}"


def connection_string(url: str, account: str, credentials: dict[str, Any] | None) -> str:
    """A connection string for ``url`` with an account key, a SAS, or no credential."""
    scheme = urlsplit(url).scheme
    parts = [f"DefaultEndpointsProtocol={scheme}", f"BlobEndpoint={url}"]
    creds = credentials or {}
    if creds.get("account_key"):
        parts += [f"AccountName={account}", f"AccountKey={creds['account_key']}"]
    elif creds.get("sas_token"):
        parts.append(f"SharedAccessSignature={str(creds['sas_token']).lstrip('?')}")
    return ";".join(parts) + ";"


def check_credentials(credentials: dict[str, Any] | None, type_name: str) -> None:
    unknown = sorted(set(credentials or {}) - set(CREDENTIAL_KEYS))
    if unknown:
        raise ValidationError(
            f"credentials {', '.join(unknown)} are not accepted for a {type_name} datastore; "
            "give account_key or sas_token, or none for a public container.",
            target="credentials",
        )
    if credentials and all(credentials.get(k) for k in CREDENTIAL_KEYS):
        raise ValidationError(
            "credentials: give account_key or sas_token, not both.", target="credentials"
        )


@dataclass
class AzureContainerDatastore:
    """One container (or ADLS Gen2 file system) of a storage account."""

    type: DatastoreType
    account: str
    container: str
    url: str
    credentials: dict[str, Any] | None = field(default=None, repr=False)
    client: ClientSettings = field(default_factory=ClientSettings)
    _fs: Any = field(default=None, repr=False)
    _service: Any = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        kind: DatastoreType,
        container_key: str,
        config: dict[str, Any],
        credentials: dict[str, Any] | None,
        client: ClientSettings,
    ) -> AzureContainerDatastore:
        account = required(config, "account_name", kind.value)
        container = required(config, container_key, kind.value)
        check_credentials(credentials, kind.value)
        url = blob_endpoint(account, optional(config, "endpoint"), optional(config, "protocol"))
        return cls(
            kind, account, container, url, dict(credentials) if credentials else None, client
        )

    def probing(self, timeout: float) -> AzureContainerDatastore:
        return replace(self, client=replace(self.client, timeout=timeout), _fs=None, _service=None)

    def _client_options(self, transport: Any) -> dict[str, Any]:
        """The Blob clients' transport (connections checked by the network policy) and, for
        checks, a timeout and no retries."""
        timeout = self.client.timeout
        limits = {} if timeout is None else {"connection_timeout": timeout, "read_timeout": timeout}
        options: dict[str, Any] = {"transport": transport(self.client.network, **limits)}
        if timeout is not None:
            options["retry_total"] = 0
        return options

    @property
    def service_url(self) -> str:
        return self.url

    @property
    def connection_string(self) -> str:
        return connection_string(self.url, self.account, self.credentials)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from sluiceway.storage.egress import guarded_azure_transport

            self._fs = _filesystem_class()(
                self._client_options(guarded_azure_transport),
                connection_string=self.connection_string,
                skip_instance_cache=True,
                use_listings_cache=False,
            )
        return self._fs

    def _container_client(self) -> Any:
        if self._service is None:
            try:
                from azure.storage.blob import BlobServiceClient
            except ImportError:
                raise MissingExtraError("azure", "azure-storage-blob") from None
            from azure.core.pipeline.transport import RequestsTransport

            from sluiceway.storage.egress import guarded_session

            def transport(network: PrivateNetworkPolicy, **limits: Any) -> Any:
                return RequestsTransport(session=guarded_session(network), **limits)

            service = BlobServiceClient.from_connection_string(
                self.connection_string, **self._client_options(transport)
            )
            self._service = service.get_container_client(self.container)
        return self._service

    def full_path(self, path: str) -> str:
        return contained_path(self.container, path)

    def local_path(self, path: str) -> Path | None:
        return None

    def write_file(self, path: str, chunks: Iterable[bytes], *, overwrite: bool) -> int:
        from azure.core.exceptions import ResourceExistsError

        blob_name = self.full_path(path)[len(self.container) + 1 :]
        if not blob_name:
            raise ValidationError("A file path inside the container is needed.", target="path")
        counted = _Counted(chunks)
        try:
            # upload_blob stages blocks and commits them in one request; without overwrite the
            # commit carries If-None-Match: *, so a blob created meanwhile is never replaced.
            self._container_client().upload_blob(blob_name, counted, overwrite=overwrite)
        except ResourceExistsError:
            raise FileExistsError(f"{self.container}/{blob_name}") from None
        return counted.size


@functools.cache
def _filesystem_class() -> type[Any]:
    """adlfs's filesystem, whose Blob client gets the options :meth:`AzureContainerDatastore.
    _client_options` gives (adlfs makes its client without a way to pass them)."""
    try:
        from adlfs import AzureBlobFileSystem
    except ImportError:
        raise MissingExtraError("azure", "adlfs") from None

    class CheckedBlobFileSystem(AzureBlobFileSystem):  # type: ignore[misc]
        def __init__(self, client_options: dict[str, Any], **kwargs: Any) -> None:
            self._client_options = client_options
            super().__init__(**kwargs)

        def do_connect(self) -> None:
            from azure.storage.blob.aio import BlobServiceClient

            self.service_client = BlobServiceClient.from_connection_string(
                self.connection_string, **self._client_options
            )

    return CheckedBlobFileSystem


class _Counted:
    """An iterable of byte chunks that counts what passed through it."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Any:
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk
