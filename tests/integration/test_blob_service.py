"""The blob face of a real TLS server, with azure-storage-blob as the client: a 70 MiB upload in
blocks, listing, a ranged download, and refusals (a changed signature, a shared key, a SAS of
an identity that may only read, the server's job folders)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from tests.integration.conftest import RunningServer, stop_server
from tests.integration.helpers import unique
from tests.integration.tls_server import (
    ca_bundle,
    start_tls_server,
    tls_client,
    workspace_path,
)

blob = pytest.importorskip("azure.storage.blob", reason="needs the azure extra")
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError  # noqa: E402

CONTAINER = "workspaceblobstore"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_tls_server(tmp_path_factory.mktemp("blob-home"))
    yield running
    stop_server(running)


def list_secrets(server: RunningServer, token: str | None = None) -> str:
    ws = workspace_path(server)
    with tls_client(server, token) as client:
        answer = client.post(
            f"{ws}/datastores/{CONTAINER}/listSecrets",
            params={"api-version": "2024-10-01-preview"},
            json={"expirableSecret": True, "expireAfterHours": 1},
        )
    assert answer.status_code == 200, answer.text
    secrets = answer.json()
    assert secrets["secretsType"] == "Sas"
    sas: str = secrets["sasToken"]
    return sas


_OPEN: list[object] = []


def container(server: RunningServer, sas: str) -> object:
    """A container client; closed at the end of the test (an open keep-alive connection
    would hold the server's shutdown)."""
    account = f"{server.url}/azureml/blob/default.blob.local"
    client = blob.ContainerClient(
        account, CONTAINER, credential=sas, connection_verify=str(ca_bundle(server.home))
    )
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()  # type: ignore[attr-defined]


def test_upload_in_blocks_list_and_ranged_download(tls_server: RunningServer) -> None:
    client = container(tls_server, list_secrets(tls_server))
    data = os.urandom(70 << 20)
    name = f"data/{unique('big')}/big.bin"
    client.upload_blob(name, data, max_concurrency=2)  # type: ignore[attr-defined]
    listed = {b.name: b.size for b in client.list_blobs(name_starts_with=name.rsplit("/", 1)[0])}  # type: ignore[attr-defined]
    assert listed == {name: len(data)}
    part = client.download_blob(name, offset=5 << 20, length=1000).readall()  # type: ignore[attr-defined]
    assert part == data[5 << 20 : (5 << 20) + 1000]
    with tls_client(tls_server) as owner:
        stored = owner.get(f"/datastores/{CONTAINER}/files/{name}").content
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


def test_bad_signatures_and_rights_are_refused(tls_server: RunningServer) -> None:
    sas = list_secrets(tls_server)
    uploaded = f"data/{unique('small')}.txt"
    container(tls_server, sas).upload_blob(uploaded, b"x")  # type: ignore[attr-defined]
    fields = dict(parse_qsl(sas))
    fields["sp"] = "rlcw" if fields["sp"] != "rlcw" else "rl"  # a changed permission
    with pytest.raises(ClientAuthenticationError):
        container(tls_server, urlencode(fields)).upload_blob("data/x.txt", b"x")  # type: ignore[attr-defined]
    with pytest.raises(HttpResponseError) as server_owned:
        container(tls_server, sas).upload_blob("azureml/some-job/score/x.csv", b"x")  # type: ignore[attr-defined]
    assert server_owned.value.status_code == 403

    with tls_client(tls_server) as owner:
        name = unique("reader")
        owner.post("/identities", json={"name": name, "kind": "user"}).raise_for_status()
        owner.post(
            "/roles", json={"identity": name, "role": "reader", "scope": "workspace"}
        ).raise_for_status()
        token = owner.post(f"/identities/{name}/tokens").json()["access_token"]
    reader_sas = list_secrets(tls_server, token)
    assert dict(parse_qsl(reader_sas))["sp"] == "rl"  # the reader's own rights, no more
    reader = container(tls_server, reader_sas)
    assert reader.download_blob(uploaded).readall() == b"x"  # type: ignore[attr-defined]
    with pytest.raises(HttpResponseError) as read_only:
        reader.upload_blob(f"data/{unique('r')}.txt", b"y")  # type: ignore[attr-defined]
    assert read_only.value.status_code == 403


def test_plain_http_azure_store_is_served_through_the_face(tmp_path: Path) -> None:
    """A workspaceblobstore in Azurite served over plain http, which the SDK (https only)
    cannot reach itself: the datastore answers as a container of the blob face, whose SAS
    reads and writes reach Azurite."""
    import json

    from tests.integration import storage_services as svc

    name = svc.make_container("httpstore")
    default = {k: v for k, v in svc.blob_datastore_yaml("x", name).items() if k != "name"}
    env = {**svc.server_env(), "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(default)}
    server = start_tls_server(tmp_path / "home", env)
    try:
        ws = workspace_path(server)
        with tls_client(server) as owner:
            shown = owner.get(
                f"{ws}/datastores/{CONTAINER}", params={"api-version": "2024-10-01-preview"}
            ).json()["properties"]
        assert shown["accountName"].endswith("/azureml/blob/default")
        assert shown["containerName"] == CONTAINER
        client = container(server, list_secrets(server))
        blob_name = f"data/{unique('via-face')}.txt"
        client.upload_blob(blob_name, b"through the face")  # type: ignore[attr-defined]
        assert client.download_blob(blob_name).readall() == b"through the face"  # type: ignore[attr-defined]
        stored = svc.container_client(name).download_blob(blob_name).readall()
        assert stored == b"through the face"
    finally:
        while _OPEN:
            _OPEN.pop().close()  # type: ignore[attr-defined]
        stop_server(server)
