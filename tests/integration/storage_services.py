"""The storage servers the test script starts: Azurite (Azure Blob) and moto (S3).

``scripts/test.sh`` exports their URLs; a test that needs one and finds none skips locally and
fails in CI. Containers and buckets get unique names, so tests share the servers safely.
"""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import service_missing

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_KEY = "testing"
S3_SECRET = "testing"


def azurite_url() -> str:
    """Azurite's blob endpoint (``http://127.0.0.1:<port>``), or skip / fail in CI."""
    url = os.environ.get("SLUICEWAY_TEST_AZURITE_URL")
    if not url:
        service_missing("Azurite (SLUICEWAY_TEST_AZURITE_URL)")
    return str(url).rstrip("/")


def s3_url() -> str:
    """The S3 server's endpoint URL, or skip / fail in CI."""
    url = os.environ.get("SLUICEWAY_TEST_S3_URL")
    if not url:
        service_missing("the S3 server (SLUICEWAY_TEST_S3_URL)")
    return str(url).rstrip("/")


def unique_name(prefix: str) -> str:
    """A container or bucket name: lowercase letters, digits and '-'."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def azurite_connection_string() -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={azurite_url()}/{AZURITE_ACCOUNT};"
    )


@functools.cache
def _blob_service() -> Any:
    """One client of Azurite for the whole run: the container clients share its connections,
    which are then never left for the garbage collector to find open in another test."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite_connection_string())


def container_client(container: str) -> Any:
    return _blob_service().get_container_client(container)


def make_container(prefix: str, *, public: bool = False) -> str:
    """A new Azurite container (public read access when ``public``)."""
    from azure.storage.blob import PublicAccess

    name = unique_name(prefix)
    container_client(name).create_container(
        public_access=PublicAccess.CONTAINER if public else None
    )
    return name


def container_sas(container: str) -> str:
    """A read+list SAS for a container, valid for an hour."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        AZURITE_ACCOUNT,
        container,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


def upload_to_container(container: str, folder: Path, prefix: str) -> None:
    client = container_client(container)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = f"{prefix}/{path.relative_to(folder).as_posix()}".lstrip("/")
        client.upload_blob(name, path.read_bytes(), overwrite=True)


def s3_filesystem() -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        key=S3_KEY, secret=S3_SECRET, endpoint_url=s3_url(), skip_instance_cache=True
    )


def make_bucket(prefix: str) -> str:
    name = unique_name(prefix)
    s3_filesystem().mkdir(name)
    return name


def upload_to_bucket(bucket: str, folder: Path, prefix: str) -> None:
    fs = s3_filesystem()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fs.pipe(f"{bucket}/{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())


def loopback_client() -> Any:
    """Client settings for backends opened by tests: Azurite and moto listen on loopback."""
    from sluiceway.storage.datastores import ClientSettings
    from sluiceway.storage.network import PrivateNetworkPolicy

    return ClientSettings(PrivateNetworkPolicy.parse("127.0.0.1"))


def server_env() -> dict[str, str]:
    """Settings for a server whose storage is Azurite and moto (ambient AWS credentials too).

    Both listen on loopback: Azurite is allowed as a blob emulator, and datastores may name
    moto's endpoint because loopback is allowed explicitly.
    """
    return {
        "SLUICEWAY_BLOB_EMULATOR_ENDPOINTS": azurite_url(),
        "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "127.0.0.1",
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_ENDPOINT_URL_S3": s3_url(),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def blob_datastore_yaml(name: str, container: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "azure_blob",
        "account_name": AZURITE_ACCOUNT,
        "container_name": container,
        "endpoint": f"{azurite_url()}/{AZURITE_ACCOUNT}",
        "credentials": {"account_key": AZURITE_KEY},
        **extra,
    }


def adls_datastore_yaml(name: str, filesystem: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "azure_data_lake_gen2",
        "account_name": AZURITE_ACCOUNT,
        "filesystem": filesystem,
        "endpoint": azurite_url(),
        "credentials": {"account_key": AZURITE_KEY},
    }


def s3_datastore_yaml(name: str, bucket: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3_url(),
        "credentials": {"access_key_id": S3_KEY, "secret_access_key": S3_SECRET},
    }
