"""Trust at the edges, against a real server: tokens can be revoked and cannot outlive what
minted them, the token endpoint is rate-limited, stored state never breaks a read, numbers
and names are checked whole, and request heads have a size limit.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    unique,
    upload_folder,
    write_numbered_files,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("trust") / "home")
    yield running
    stop_server(running)


@pytest.fixture
def owner(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# -- request heads ------------------------------------------------------------------------------


def _raw(server: RunningServer, head: bytes) -> bytes:
    """Send ``head`` on a socket of its own; what the server answered before it closed."""
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    answer = b""
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def test_a_megabyte_header_line_is_refused(server: RunningServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    assert _status(_raw(server, head)) == 431
    # One line past 16 KiB is refused on its own, and the answer names it.
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (20 << 10) + b"\r\n\r\n"
    answer = _raw(server, head)
    assert _status(answer) == 431
    assert b"x-long" in answer.lower()


def test_many_header_lines_past_the_total_are_refused(server: RunningServer) -> None:
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(100))
    answer = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    assert _status(answer) == 431


def test_a_long_request_line_is_refused(server: RunningServer) -> None:
    answer = _raw(server, b"GET /healthz?" + b"q" * (32 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(answer) == 414


def test_ordinary_heads_and_large_bodies_still_pass(server: RunningServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"c" * 8000 + b"\r\n"
    answer = _raw(server, head + b"Connection: close\r\n\r\n")
    assert _status(answer) == 200
    # A body far past the head limit, arriving in the same reads as the head, is not a head.
    body = b'{"name": "' + b"d" * (200 << 10) + b'"}'
    answer = _raw(
        server,
        b"POST /identities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Authorization: Bearer "
        + server.token.encode()
        + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        + body,
    )
    assert _status(answer) == 400  # the name is not valid, but the request was read


# -- names --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """An endpoint with a script deployment, and an uploaded folder of two files to score."""
    tmp = tmp_path_factory.mktemp("deployed")
    endpoint = unique("trust")
    with server.client() as client:
        create_script_deployment(client, tmp, endpoint, "blue")
        data = tmp / "data"
        data.mkdir()
        write_numbered_files(data, 2)
        return endpoint, upload_folder(client, data, "trust-data")


def _refused_with_newline(response: httpx.Response, what: str) -> None:
    assert response.status_code == 400, f"{what}: {response.status_code} {response.text}"
    assert "\\n" in response.json()["error"]["message"], response.text


def test_names_ending_in_a_newline_are_refused(
    owner: httpx.Client, deployed: tuple[str, str]
) -> None:
    endpoint, data = deployed
    _refused_with_newline(
        owner.post("/identities", json={"name": "owner\n", "kind": "user"}), "identity"
    )
    name = unique("ep")
    _refused_with_newline(
        owner.put(f"/batch-endpoints/{name}%0A", json={"name": f"{name}\n"}), "endpoint"
    )
    body = {"name": "green\n", "endpoint_name": endpoint, "type": "model", "model": "azureml:m:1"}
    _refused_with_newline(
        owner.put(f"/batch-endpoints/{endpoint}/deployments/green%0A", json=body), "deployment"
    )
    _refused_with_newline(
        owner.put("/datastores/store%0A", json={"name": "store\n", "type": "azure_blob"}),
        "datastore",
    )
    _refused_with_newline(
        owner.post("/data", json={"name": "data\n", "type": "uri_folder", "path": data}), "data"
    )
    _refused_with_newline(
        owner.post("/data", json={"name": "data", "version": "1\n", "path": data}), "version"
    )
    _refused_with_newline(
        owner.post("/models", json={"name": "model\n", "type": "custom_model", "path": data}),
        "model",
    )
    component = {"name": "comp\n", "type": "command", "command": "echo", "version": "1"}
    _refused_with_newline(owner.post("/components", json=component), "component")
    invoke = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": data}}, JobName="job\n")
    _refused_with_newline(owner.post(f"/endpoints/{endpoint}/jobs", json=invoke), "job")


# -- numbers ------------------------------------------------------------------------------------

NON_FINITE = ("1e999", "-1e999", "Infinity", "-Infinity", "NaN")
OVERRIDES = (
    ("MiniBatchSize", '"MiniBatchSize": {}', "properties.MiniBatchSize"),
    ("InstanceCount", '"Compute": {{"InstanceCount": {}}}', "properties.Compute.InstanceCount"),
    ("MaxRetries", '"RetrySettings": {{"MaxRetries": {}}}', "properties.RetrySettings.MaxRetries"),
    ("Timeout", '"RetrySettings": {{"Timeout": {}}}', "properties.RetrySettings.Timeout"),
    ("ErrorThreshold", '"ErrorThreshold": {}', "properties.ErrorThreshold"),
)


@pytest.mark.parametrize("literal", NON_FINITE)
@pytest.mark.parametrize(("_", "override", "field"), OVERRIDES, ids=[o[0] for o in OVERRIDES])
def test_numbers_that_are_not_finite_are_400_naming_the_field(
    owner: httpx.Client, deployed: tuple[str, str], literal: str, _: str, override: str, field: str
) -> None:
    endpoint, data = deployed
    inputs = json.dumps({"data": {"JobInputType": "UriFolder", "Uri": data}})
    text = f'{{"properties": {{"InputData": {inputs}, {override.format(literal)}}}}}'
    response = owner.post(
        f"/endpoints/{endpoint}/jobs",
        content=text,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["target"] == field
    assert field in error["message"]


def test_numbers_that_are_not_finite_are_refused_in_every_body(owner: httpx.Client) -> None:
    for route, text in (
        ("/identities/owner/tokens", '{"expires_in": 1e999}'),
        ("/data", '{"name": "n", "path": "x", "tags": {"a": [1, NaN]}}'),
    ):
        response = owner.post(route, content=text, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
    assert owner.get("/whoami").status_code == 200
