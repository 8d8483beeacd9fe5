"""A catalogue of hostile inputs against a real server.

Path traversal in every form on every route and reference that takes a path, symbolic links
out of a local datastore, URLs that point the server at private networks and metadata
services, oversized and malformed bodies. Each gets a 4xx in the server's one error shape,
and no response body, on any request of this module, carries a credential: datastore keys,
SAS tokens and S3 secrets registered here, the workspace's secret.key and the owner's token.
"""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration import storage_services as svc
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    unique,
    upload_folder,
    wait_for_job,
    write_numbered_files,
)

S3_SECRET = f"s3-secret-{uuid.uuid4().hex}"
ACCOUNT_KEY = base64.b64encode(f"account-key-{uuid.uuid4().hex}".encode()).decode()
SAS_SIG = f"sas-signature-{uuid.uuid4().hex}"
SAS_TOKEN = f"sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig={SAS_SIG}"
UPLOAD_LIMIT = 1 << 20
DS = "azureml://datastores/workspaceblobstore/paths"


def _secrets(server: RunningServer) -> dict[str, str]:
    return {
        "s3 secret": S3_SECRET,
        "account key": ACCOUNT_KEY,
        "SAS signature": SAS_SIG,
        "secret.key": (server.home / "secret.key").read_text().strip(),
        "owner token": server.token,
    }


def _checked_client(server: RunningServer) -> httpx.Client:
    """A client that fails the test when a response carries a secret or is a 5xx."""
    secrets = _secrets(server)

    def check(response: httpx.Response) -> None:
        response.read()
        _assert_clean(response.status_code, response.text, secrets)

    return httpx.Client(
        base_url=server.url,
        headers=server.headers,
        timeout=60.0,
        event_hooks={"response": [check]},
    )


def _assert_clean(status: int, text: str, secrets: dict[str, str]) -> None:
    assert status < 500, text
    for what, value in secrets.items():
        assert value not in text, f"the {what} shows in a response: {text[:500]}"


@dataclass(frozen=True)
class Hostile:
    server: RunningServer
    client: httpx.Client
    endpoint: str
    job: str
    data: str  # an input folder the endpoint scores
    local_root: Path  # the folder local datastores may be in

    def raw(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any] | str]:
        """Send ``target`` exactly as written (httpx would remove dot segments)."""
        host = urlsplit(self.server.url).netloc
        conn = http.client.HTTPConnection(host, timeout=60)
        try:
            conn.request(
                method, target, body=body, headers={**self.server.headers, **(headers or {})}
            )
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        _assert_clean(response.status, text, _secrets(self.server))
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile")
    local_root = root / "datastores"
    local_root.mkdir()
    env = {
        # Explicitly strict, whatever the environment says: no private network at all.
        "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "false",
        "SLUICEWAY_BLOB_EMULATOR_ENDPOINTS": "",
        "SLUICEWAY_LOCAL_DATASTORE_ROOTS": str(local_root),
        "SLUICEWAY_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
    }
    server = start_server(root / "home", extra_env=env)
    client = _checked_client(server)
    try:
        # Datastores with credentials known to the test; no request here reaches their storage.
        for body in (
            {"name": "hostile_s3", "type": "s3", "bucket": "hostile",
             "credentials": {"access_key_id": "AKIAHOSTILE", "secret_access_key": S3_SECRET}},
            {"name": "hostile_key", "type": "azure_blob", "account_name": "hostileacct",
             "container_name": "c", "credentials": {"account_key": ACCOUNT_KEY}},
            {"name": "hostile_sas", "type": "azure_blob", "account_name": "hostileacct",
             "container_name": "d", "credentials": {"sas_token": SAS_TOKEN}},
        ):  # fmt: skip
            r = client.put(f"/datastores/{body['name']}", json=body)
            assert r.status_code == 201, r.text
        endpoint = unique("hostile")
        create_script_deployment(client, root, endpoint, "blue")
        write_numbered_files(root / "data", 2)
        data = upload_folder(client, root / "data", unique("data"))
        r = client.post(
            f"/endpoints/{endpoint}/jobs",
            json=invoke_body({"d": {"JobInputType": "UriFolder", "Uri": data}}),
        )
        assert r.status_code in (200, 201, 202), r.text
        job = r.json()["name"]
        assert wait_for_job(client, job)["status"] == "Completed"
        yield Hostile(server, client, endpoint, job, data, local_root)
    finally:
        client.close()
        stop_server(server)


def _error(body: dict[str, Any] | str) -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "target"}, error
    return error


# -- paths ------------------------------------------------------------------------------------

TRAVERSALS = [
    "../../secret.key",
    "a/../../../secret.key",
    "..%2f..%2fsecret.key",
    "%2e%2e/%2e%2e/secret.key",
    "%2E%2e%2f%2e%2E%2fsecret.key",
    "%252e%252e/%252e%252e/secret.key",
    "%25252e%25252e%25252fsecret.key",
    "a%5c..%5c..%5csecret.key",
    "a%00.txt",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "C:/Windows/win.ini",
    "C:%5cWindows%5cwin.ini",
]
FILE_ROUTES = [
    ("GET", "/datastores/workspaceblobstore/files/{p}"),
    ("PUT", "/datastores/workspaceblobstore/files/{p}"),
    ("GET", "/datastores/workspaceblobstore/list?path={p}"),
    ("GET", "/jobs/{job}/outputs/score/files/{p}"),
    ("GET", "/jobs/{job}/logs/{p}"),
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize(("method", "route"), FILE_ROUTES)
def test_file_routes_refuse_paths_that_leave_the_root(
    hostile: Hostile, method: str, route: str, path: str
) -> None:
    target = route.format(p=path, job=hostile.job)
    status, body = hostile.raw(method, target, body=b"overwritten" if method == "PUT" else None)
    assert status == 400, (target, body)
    error = _error(body)
    assert (
        "is not accepted" in error["message"]
        and "relative to the datastore's root" in error["message"]
    ), error
    assert error["target"] == "path"
    assert (hostile.server.home / "secret.key").read_text() != "overwritten"


REFERENCE_TRAVERSALS = [
    f"{DS}/../secret.key",
    f"{DS}/a/../../secret.key",
    f"{DS}/%2e%2e/secret.key",
    f"{DS}/%252e%252e/%252e%252e/secret.key",
    f"{DS}/a\\..\\..\\secret.key",
    f"{DS}/a\x00b/",
    f"{DS}//etc/passwd",
    "/subscriptions/s/resourceGroups/r/workspaces/default/datastores/workspaceblobstore/paths/../x",
    "azureml://datastores/hostile_s3/paths/%2e%2e/%2e%2e/x",
    "s3://hostile/a/../../b",
    "https://hostileacct.blob.core.windows.net/c/%2e%2e/%2e%2e/x",
    "abfss://c@hostileacct.dfs.core.windows.net/a/%252e%252e/x",
]


@pytest.mark.parametrize("uri", REFERENCE_TRAVERSALS)
def test_references_refuse_paths_that_leave_the_root(hostile: Hostile, uri: str) -> None:
    client = hostile.client
    before = len(client.get("/jobs", params={"limit": 1000}).json())
    attempts = [
        ("POST", f"/endpoints/{hostile.endpoint}/jobs",
         invoke_body({"d": {"JobInputType": "UriFolder", "Uri": uri}})),
        ("POST", f"/endpoints/{hostile.endpoint}/jobs",
         invoke_body({"d": {"JobInputType": "UriFolder", "Uri": hostile.data}},
                     {"score": {"JobOutputType": "UriFolder", "Uri": uri}})),
        ("POST", "/data", {"name": unique("d"), "type": "uri_folder", "path": uri}),
        ("POST", "/models", {"name": unique("m"), "type": "custom_model", "path": uri}),
    ]  # fmt: skip
    for method, route, body in attempts:
        r = client.request(method, route, json=body)
        assert r.status_code == 400, (route, uri, r.text)
        message = _error(r.json())["message"]
        assert "is not accepted" in message or "leaves the datastore" in message, message
    assert len(client.get("/jobs", params={"limit": 1000}).json()) == before


def test_symbolic_links_cannot_leave_a_local_datastore(hostile: Hostile) -> None:
    client, home = hostile.client, hostile.server.home
    root = hostile.local_root / unique("links")
    root.mkdir()
    (root / "inside.txt").write_text("inside\n")
    (root / "secret-link").symlink_to(home / "secret.key")
    (root / "home-link").symlink_to(home, target_is_directory=True)
    (root / "inner-link").symlink_to(root / "inside.txt")
    r = client.put("/datastores/links", json={"name": "links", "type": "local", "root": str(root)})
    assert r.status_code in (200, 201), r.text
    assert client.get("/datastores/links/files/inside.txt").text == "inside\n"
    assert client.get("/datastores/links/files/inner-link").text == "inside\n"
    for method, path in [
        ("GET", "/datastores/links/files/secret-link"),
        ("GET", "/datastores/links/files/home-link/secret.key"),
        ("GET", "/datastores/links/files/home-link/token"),
        ("PUT", "/datastores/links/files/home-link/planted.txt"),
        ("PUT", "/datastores/links/files/secret-link"),
        ("GET", "/datastores/links/list?path=home-link"),
    ]:
        r = client.request(method, path, content=b"planted" if method == "PUT" else None)
        assert r.status_code == 400, (path, r.text)
        assert "symbolic link" in _error(r.json())["message"], r.text
    assert not (home / "planted.txt").exists()
    assert (home / "secret.key").read_text() != "planted"
    # A listing of the datastore leaves out what lies outside it.
    listed = {f["path"] for f in client.get("/datastores/links/list").json()}
    assert listed == {"inside.txt", "inner-link"}
    r = client.post(
        f"/endpoints/{hostile.endpoint}/jobs",
        json=invoke_body(
            {
                "d": {
                    "JobInputType": "UriFolder",
                    "Uri": "azureml://datastores/links/paths/home-link/",
                }
            }
        ),
    )
    assert r.status_code == 400 and "symbolic link" in r.text, r.text


def test_local_datastore_roots_stay_where_the_settings_allow(
    hostile: Hostile, tmp_path: Path
) -> None:
    client, home = hostile.client, hostile.server.home
    link = hostile.local_root / unique("link-out")
    link.symlink_to(tmp_path, target_is_directory=True)
    for root in (tmp_path, link, home, home / "blobstore", Path("/")):
        name = unique("outside").replace("-", "_")
        r = client.put(
            f"/datastores/{name}", json={"name": name, "type": "local", "root": str(root)}
        )
        assert r.status_code == 400, (root, r.text)
        error = _error(r.json())
        assert error["target"] == "root" and repr(str(root)) in error["message"], error
        assert client.get(f"/datastores/{name}").status_code == 404


# -- private networks -------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/c/data.csv",
    "http://192.168.1.1/c/data.csv",
    "http://127.0.0.1:10000/devstoreaccount1/c/data.csv",
    "http://[::1]/c/data.csv",
    "http://0.0.0.0/c/data.csv",
    "http://localhost/c/data.csv",
    "http://2130706433/c/data.csv",
    "http://0177.0.0.1/c/data.csv",
    "http://0x7f.1/c/data.csv",
    "http://[::ffff:127.0.0.1]/c/data.csv",
    "http://[fe80::1]/c/data.csv",
    "https://127.0.0.1/c/data.csv?sv=2022-11-02&sig=" + SAS_SIG,
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_urls_to_private_networks_are_refused(hostile: Hostile, url: str) -> None:
    client = hostile.client
    name = unique("ssrf").replace("-", "_")
    attempts = [
        ("POST", f"/endpoints/{hostile.endpoint}/jobs",
         invoke_body({"d": {"JobInputType": "UriFolder", "Uri": url}})),
        ("POST", "/data", {"name": unique("d"), "type": "uri_folder", "path": url}),
        ("PUT", f"/datastores/{name}",
         {"name": name, "type": "s3", "bucket": "b", "endpoint_url": url}),
        ("PUT", f"/datastores/{name}",
         {"name": name, "type": "azure_blob", "account_name": "a", "container_name": "c",
          "endpoint": url.split("?")[0]}),
    ]  # fmt: skip
    for method, route, body in attempts:
        r = client.request(method, route, json=body)
        assert r.status_code == 400, (route, r.text)
        message = _error(r.json())["message"]
        assert "SLUICEWAY_ALLOW_PRIVATE_NETWORK" in message, message
    assert client.get(f"/datastores/{name}").status_code == 404


# -- bodies ------------------------------------------------------------------------------------

JSON_ROUTES = [
    ("PUT", "/datastores/bodies"),
    ("POST", "/data"),
    ("POST", "/models"),
    ("POST", "/components"),
    ("PUT", "/batch-endpoints/bodies"),
    ("PATCH", "/batch-endpoints/{endpoint}"),
    ("PUT", "/batch-endpoints/{endpoint}/deployments/blue"),
    ("POST", "/endpoints/{endpoint}/jobs"),
    ("PUT", "/uploads/abc"),
]
MALFORMED = [
    # (body, content type, status, words in the message)
    (b'{"name": ', "application/json", 400, "not valid JSON"),
    (b"{'name': 'x'}", "application/json", 400, "not valid JSON"),
    (b"[1, 2, 3]", "application/json", 400, "JSON object"),
    (b'"a string"', "application/json", 400, ""),
    (b"42", "application/json", 400, ""),
    (b'{"name": "\xff\xfe"}', "application/json", 400, "UTF-8"),
    (b"name: x\n  bad: [", "application/yaml", 415, "application/json"),
    (b"name: x", "text/yaml", 415, "application/json"),
    (b"name=x", "text/plain", 415, "application/json"),
    (b'{"name": "x"}', "", 415, "Content-Type"),
    (b"name=x&type=s3", "application/x-www-form-urlencoded", 400, ""),
]


@pytest.mark.parametrize(("body", "content_type", "status", "words"), MALFORMED)
@pytest.mark.parametrize(("method", "route"), JSON_ROUTES)
def test_malformed_bodies_are_4xx(
    hostile: Hostile,
    method: str,
    route: str,
    body: bytes,
    content_type: str,
    status: int,
    words: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    got, answer = hostile.raw(
        method, route.format(endpoint=hostile.endpoint), body=body, headers=headers
    )
    assert got == status, (route, body, answer)
    assert words in _error(answer)["message"], answer


@pytest.mark.parametrize(
    "target",
    [
        "/jobs?limit=abc",
        "/jobs?limit=-1",
        "/jobs?limit=99999999999999999999999",
        "/jobs?limit=1e3",
        "/datastores/workspaceblobstore/list?path=%00",
        "/jobs/{job}/logs/job_progress_overview.txt?offset=abc",
        "/jobs/{job}/logs/job_progress_overview.txt?offset=-5",
    ],
)
def test_malformed_query_parameters_are_400(hostile: Hostile, target: str) -> None:
    status, body = hostile.raw("GET", target.format(job=hostile.job))
    assert status == 400, (target, body)
    _error(body)


def test_oversized_bodies_are_413(hostile: Hostile) -> None:
    client = hostile.client
    big = {"name": "big", "type": "s3", "bucket": "b", "description": "x" * (2 << 20)}
    r = client.put("/datastores/big", json=big)
    assert r.status_code == 413, r.text[:500]
    assert "SLUICEWAY_MAX_BODY_BYTES" in _error(r.json())["message"]

    def chunks(total: int) -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"name": "big", "description": "'
        for _ in range(total // 65536):
            yield b"x" * 65536
        yield b'"}'

    r = client.put(
        "/datastores/big", content=chunks(2 << 20), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text[:500]
    # Files have their own, larger limit (set to 1 MiB for this server).
    target = "/datastores/workspaceblobstore/files/big/file.bin"
    r = client.put(target, content=b"x" * (UPLOAD_LIMIT + 1))
    assert r.status_code == 413 and "SLUICEWAY_MAX_UPLOAD_BYTES" in r.text, r.text[:500]
    r = client.put(target, content=chunks(UPLOAD_LIMIT + (1 << 16)))
    assert r.status_code == 413 and "SLUICEWAY_MAX_UPLOAD_BYTES" in r.text, r.text[:500]
    assert client.get(target).status_code == 404  # nothing was written
    r = client.put(target, content=b"x" * UPLOAD_LIMIT)
    assert r.status_code == 200 and r.json()["size"] == UPLOAD_LIMIT, r.text


# -- secrets -----------------------------------------------------------------------------------


def test_datastore_responses_never_show_credentials(hostile: Hostile) -> None:
    client = hostile.client  # every response is checked for the secrets
    listed = {d["name"]: d for d in client.get("/datastores").json()}
    assert listed["hostile_s3"]["credentials"] == {"type": "access_key"}
    assert listed["hostile_sas"]["credentials"] == {"type": "sas_token"}
    for name in ("hostile_s3", "hostile_key", "hostile_sas"):
        assert client.get(f"/datastores/{name}").status_code == 200
    # Bodies that are wrong around a secret are refused without repeating it.
    for credentials in (
        S3_SECRET,
        [S3_SECRET],
        {"access_key_id": "AKIA", "secret_access_key": [S3_SECRET]},
        {"access_key_id": "AKIA", "secret_access_key": S3_SECRET, "extra": S3_SECRET},
        {"secret_access_key": S3_SECRET},
    ):
        body = {"name": "hostile_s3", "type": "s3", "bucket": "b", "credentials": credentials}
        assert client.put("/datastores/hostile_s3", json=body).status_code == 400
    body = {"name": "hostile_key", "type": "azure_blob", "account_name": "a", "container_name": "c",
            "credentials": {"account_key": ACCOUNT_KEY, "sas_token": SAS_TOKEN}}  # fmt: skip
    assert client.put("/datastores/hostile_key", json=body).status_code == 400
    # A SAS in a storage URL that is refused is not repeated either.
    url = f"https://127.0.0.1/c/x.csv?{SAS_TOKEN}"
    r = client.post("/data", json={"name": unique("d"), "type": "uri_folder", "path": url})
    assert r.status_code == 400
    job = client.get(f"/jobs/{hostile.job}").json()
    assert job["status"] == "Completed"


@pytest.fixture(scope="module")
def storage_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    """A server whose datastores are Azurite and moto, with wrong or known credentials."""
    env = svc.server_env()  # skips (fails in CI) without Azurite and moto
    root = tmp_path_factory.mktemp("hostile-storage")
    server = start_server(root / "home", extra_env=env)
    client = _checked_client(server)
    try:
        yield Hostile(server, client, "", "", "", root)
    finally:
        client.close()
        stop_server(server)


def test_storage_errors_never_show_credentials(storage_world: Hostile) -> None:
    client = storage_world.client
    private = svc.make_container("hostile")
    svc.upload_to_container(private, _folder(storage_world.local_root / "data"), "data")
    bucket = svc.make_bucket("hostile")
    svc.upload_to_bucket(bucket, _folder(storage_world.local_root / "data"), "data")
    stores = [
        svc.blob_datastore_yaml("wrong_key", private, credentials={"account_key": ACCOUNT_KEY}),
        svc.blob_datastore_yaml("wrong_sas", private, credentials={"sas_token": SAS_TOKEN}),
        {**svc.s3_datastore_yaml("known_s3", "no-such-bucket-" + uuid.uuid4().hex[:8]),
         "credentials": {"access_key_id": "AKIAHOSTILE", "secret_access_key": S3_SECRET}},
    ]  # fmt: skip
    for body in stores:
        r = client.put(f"/datastores/{body['name']}", json=body)
        assert r.status_code == 201, r.text
    for name in ("wrong_key", "wrong_sas", "known_s3"):
        uri = f"azureml://datastores/{name}/paths/data/"
        r = client.post("/data", json={"name": unique("d"), "type": "uri_folder", "path": uri})
        assert r.status_code == 400, (name, r.text)
        for route in (f"/datastores/{name}/list?path=data", f"/datastores/{name}/files/data/a.txt"):
            r = client.get(route)
            # Azurite refuses the wrong key or SAS; moto takes any secret, and finds no bucket.
            assert 400 <= r.status_code < 500 or name == "known_s3", (route, r.text)
        r = client.put(f"/datastores/{name}/files/data/new.txt", content=b"x")
        assert 400 <= r.status_code < 500, r.text
    # A SAS URL with a wrong signature, straight into the emulator.
    url = f"{svc.azurite_url()}/{svc.AZURITE_ACCOUNT}/{private}/data/?{SAS_TOKEN}"
    r = client.post("/data", json={"name": unique("d"), "type": "uri_folder", "path": url})
    assert r.status_code == 400 and "cannot be read" in r.text, r.text


def _folder(path: Path) -> Path:
    write_numbered_files(path, 2)
    return path
