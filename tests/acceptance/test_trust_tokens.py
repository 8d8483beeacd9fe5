"""Trust at the edges, against a real server: tokens can be revoked and cannot outlive what
minted them, the token endpoint is rate-limited, stored state never breaks a read, numbers
and names are checked whole, and request heads have a size limit.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
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


# -- tokens -------------------------------------------------------------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _whoami(server: RunningServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/whoami", headers=_bearer(token))


def _client_credentials(server: RunningServer, client_id: str, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return httpx.post(f"{server.url}/oauth2/token", data=form)


def _service_principal(owner: httpx.Client) -> dict[str, str]:
    response = owner.post("/identities", json={"name": unique("sp"), "kind": "service_principal"})
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


def _expires_on(token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


def _revoked(response: httpx.Response) -> bool:
    return response.status_code == 401 and "revoked" in response.text


def test_a_token_minted_with_a_token_does_not_outlive_it(
    server: RunningServer, owner: httpx.Client
) -> None:
    sp = _service_principal(owner)
    issued = _client_credentials(server, sp["client_id"], sp["client_secret"])
    assert issued.status_code == 200, issued.text
    hour = issued.json()["access_token"]
    minted = httpx.post(
        f"{server.url}/identities/{sp['name']}/tokens",
        headers=_bearer(hour),
        json={"expires_in": 365 * 86400},
    )
    assert minted.status_code == 200, minted.text
    year = minted.json()["access_token"]
    assert _expires_on(year) <= _expires_on(hour)
    assert minted.json()["expires_on"] <= _expires_on(hour)
    assert minted.json()["expires_in"] <= 3600
    # And again from the minted one: the chain never gets longer.
    again = httpx.post(
        f"{server.url}/identities/{sp['name']}/tokens",
        headers=_bearer(year),
        json={"expires_in": 365 * 86400},
    )
    assert _expires_on(again.json()["access_token"]) <= _expires_on(hour)


def test_rotating_a_secret_revokes_the_tokens_issued_before(
    server: RunningServer, owner: httpx.Client
) -> None:
    sp = _service_principal(owner)
    hour = _client_credentials(server, sp["client_id"], sp["client_secret"]).json()["access_token"]
    minted = httpx.post(
        f"{server.url}/identities/{sp['name']}/tokens", headers=_bearer(hour), json={}
    ).json()["access_token"]
    by_owner = owner.post(f"/identities/{sp['name']}/tokens").json()["access_token"]
    for token in (hour, minted, by_owner):
        assert _whoami(server, token).status_code == 200

    rotated = owner.post(f"/identities/{sp['name']}/secret")
    assert rotated.status_code == 200, rotated.text
    for token in (hour, minted, by_owner):
        assert _revoked(_whoami(server, token))
    fresh = _client_credentials(server, sp["client_id"], rotated.json()["client_secret"])
    assert _whoami(server, fresh.json()["access_token"]).json()["name"] == sp["name"]


def test_revoking_an_identitys_tokens_and_deleting_it(
    server: RunningServer, owner: httpx.Client
) -> None:
    name = unique("usr")
    assert owner.post("/identities", json={"name": name, "kind": "user"}).status_code == 201
    old = owner.post(f"/identities/{name}/tokens").json()["access_token"]
    assert owner.delete(f"/identities/{name}/tokens").status_code == 204
    assert _revoked(_whoami(server, old))
    new = owner.post(f"/identities/{name}/tokens").json()["access_token"]
    assert _whoami(server, new).status_code == 200

    # A deleted identity's tokens stop working, also for a new identity of the same name.
    assert owner.delete(f"/identities/{name}").status_code == 204
    assert _whoami(server, new).status_code == 401
    assert owner.post("/identities", json={"name": name, "kind": "user"}).status_code == 201
    assert _whoami(server, new).status_code == 401
    # Only an owner revokes tokens.
    other = owner.post(f"/identities/{name}/tokens").json()["access_token"]
    refused = httpx.delete(f"{server.url}/identities/{name}/tokens", headers=_bearer(other))
    assert refused.status_code == 403


def test_token_requests_are_rate_limited_and_the_home_token_survives_restarts(
    tmp_path: Path,
) -> None:
    limits = {
        "SLUICEWAY_TOKEN_REQUESTS_PER_CLIENT": "3",
        "SLUICEWAY_TOKEN_REQUESTS_PER_ADDRESS": "5",
    }
    home = tmp_path / "home"
    running = start_server(home, extra_env=limits)
    try:
        with running.client() as owner:
            sp = _service_principal(owner)
        answers = [
            _client_credentials(running, sp["client_id"], sp["client_secret"]) for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        throttled = answers[-1]
        assert throttled.json()["error"] == "temporarily_unavailable"
        assert int(throttled.headers["Retry-After"]) >= 1
        assert "client id" in throttled.json()["error_description"]
        # Another client id is served, until the address has used its requests.
        other = [_client_credentials(running, "unknown-client", "wrong") for _ in range(2)]
        assert [a.status_code for a in other] == [401, 429]
        assert "address" in other[-1].json()["error_description"]
        home_token = running.token
    finally:
        stop_server(running)

    # The owner's home token works after a restart, and is the same token.
    running = start_server(home, extra_env=limits)
    try:
        assert running.token == home_token
        assert _whoami(running, home_token).json()["name"] == "owner"
        # Revoking the owner's tokens revokes the home token, and writes a new one.
        revoked = httpx.delete(
            f"{running.url}/identities/owner/tokens", headers=_bearer(home_token)
        )
        assert revoked.status_code == 204
        assert _revoked(_whoami(running, home_token))
        renewed = (home / "token").read_text().strip()
        assert renewed != home_token
        assert _whoami(running, renewed).json()["name"] == "owner"
    finally:
        stop_server(running)


# -- stored state -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "shown"),
    [
        ({"tags": "x"}, "tags", "'x'"),
        ({"tags": ["a", "b"]}, "tags", "['a', 'b']"),
        ({"tags": {"team": 1}}, "tags.team", "1"),
        ({"tags": {"team": {"nested": "x"}}}, "tags.team", None),
        ({"description": 5}, "description", "5"),
        ({"description": {"text": "x"}}, "description", None),
        ({"defaults": "blue"}, "defaults", "'blue'"),
        ({"colour": "red"}, "colour", "'red'"),
    ],
)
def test_a_wrongly_typed_patch_is_400_and_breaks_no_read(
    owner: httpx.Client, changes: dict[str, object], field: str, shown: str | None
) -> None:
    name = unique("patch")
    assert owner.put(f"/batch-endpoints/{name}", json={"name": name}).status_code == 201
    response = owner.patch(f"/batch-endpoints/{name}", json=changes)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["target"] == field
    if shown is not None:
        assert f"(got {shown})" in error["message"]
    assert owner.get(f"/batch-endpoints/{name}").status_code == 200
    assert owner.get("/batch-endpoints").status_code == 200


def test_a_patch_changes_what_it_names(owner: httpx.Client) -> None:
    name = unique("patch")
    body = {"name": name, "description": "first", "tags": {"team": "a"}}
    assert owner.put(f"/batch-endpoints/{name}", json=body).status_code == 201
    changed = owner.patch(f"/batch-endpoints/{name}", json={"tags": {"team": "b"}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["tags"]) == ("first", {"team": "b"})
    cleared = owner.patch(f"/batch-endpoints/{name}", json={"description": None, "tags": None})
    assert (cleared.json()["description"], cleared.json()["tags"]) == (None, {})


def test_rows_stored_with_wrong_types_do_not_break_reads(
    server: RunningServer, owner: httpx.Client
) -> None:
    """Rows written before writes were checked (or by hand) are read, not a 500."""
    name = unique("stored")
    assert owner.put(f"/batch-endpoints/{name}", json={"name": name}).status_code == 201
    with sqlite3.connect(server.home / "workspace.db") as db:
        db.execute(
            "UPDATE batch_endpoints SET tags = ?, properties = ?, description = ? WHERE name = ?",
            ('{"team": 1, "nested": {"a": [1]}}', "[1, 2]", 5, name),
        )
    shown = owner.get(f"/batch-endpoints/{name}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["tags"] == {"team": "1", "nested": '{"a": [1]}'}
    assert shown.json()["description"] == "5"
    listed = owner.get("/batch-endpoints")
    assert listed.status_code == 200, listed.text
    assert name in [e["name"] for e in listed.json()]
