"""Identities, roles and OAuth2 client credentials over REST, against a real server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import jwt
import pytest

from tests.integration.conftest import RunningServer
from tests.integration.helpers import (
    DS,
    create_script_deployment,
    invoke_body,
    unique,
    upload_folder,
    write_numbered_files,
)

AZURE_SCOPE = "https://ml.azure.com/.default"


@pytest.fixture
def owner(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_sp(owner: httpx.Client, name: str | None = None) -> dict[str, Any]:
    response = owner.post(
        "/identities", json={"name": name or unique("sp"), "kind": "service_principal"}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def client_credentials(server: RunningServer, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": AZURE_SCOPE,
        },
    )


def sp_token(server: RunningServer, sp: dict[str, Any]) -> str:
    response = client_credentials(server, sp["client_id"], sp["client_secret"])
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# -- identities -----------------------------------------------------------------------------


def test_identity_crud(owner: httpx.Client) -> None:
    name = unique("ana")
    created = owner.post(
        "/identities",
        json={"name": name, "kind": "user", "description": "analyst", "external_id": unique("oid")},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert {"id", "name", "kind", "description", "external_id", "created_at", "roles"} <= set(body)
    assert (body["kind"], body["description"], body["roles"]) == ("user", "analyst", [])
    assert body["client_id"] is None and body["client_secret"] is None

    shown = owner.get(f"/identities/{name}").json()
    assert shown["id"] == body["id"] and "client_secret" not in shown
    assert name in [i["name"] for i in owner.get("/identities").json()]

    again = owner.post("/identities", json={"name": name, "kind": "user"})
    assert again.status_code == 409, again.text
    taken = owner.post(
        "/identities",
        json={"name": unique("bo"), "kind": "user", "external_id": body["external_id"]},
    )
    assert taken.status_code == 409 and "external_id" in taken.json()["error"]["target"]

    assert owner.delete(f"/identities/{name}").status_code == 204
    missing = owner.get(f"/identities/{name}")
    assert missing.status_code == 404 and name in missing.json()["error"]["message"]
    assert owner.delete(f"/identities/{name}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "has space", "kind": "user"}, "name", "not valid"),
        ({"name": "ok", "kind": "robot"}, "kind", "'user' or 'service_principal'"),
        ({"kind": "user"}, "name", "required"),
        ({"name": "ok", "kind": "user", "colour": "red"}, "colour", "not permitted"),
    ],
)
def test_bad_identity_bodies_are_400(
    owner: httpx.Client, body: dict[str, Any], field: str, words: str
) -> None:
    response = owner.post("/identities", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert field in error["message"] and words in error["message"]


def test_a_service_principal_secret_is_shown_once_and_rotates(
    server: RunningServer, owner: httpx.Client
) -> None:
    sp = create_sp(owner)
    assert sp["kind"] == "service_principal" and sp["client_id"] and sp["client_secret"]
    shown = owner.get(f"/identities/{sp['name']}").json()
    assert shown["client_id"] == sp["client_id"]
    assert sp["client_secret"] not in str(owner.get("/identities").json())
    old_token = sp_token(server, sp)

    rotated = owner.post(f"/identities/{sp['name']}/secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["client_secret"]
    assert new_secret and new_secret != sp["client_secret"]
    assert client_credentials(server, sp["client_id"], sp["client_secret"]).status_code == 401
    assert client_credentials(server, sp["client_id"], new_secret).status_code == 200
    # Tokens issued before the rotation are revoked with the old secret.
    refused_old = httpx.get(f"{server.url}/whoami", headers=bearer(old_token))
    assert refused_old.status_code == 401 and "revoked" in refused_old.text

    user = unique("usr")
    owner.post("/identities", json={"name": user, "kind": "user"})
    refused = owner.post(f"/identities/{user}/secret")
    assert refused.status_code == 400 and "only service principals" in refused.text


def test_deleting_an_identity_ends_its_tokens(server: RunningServer, owner: httpx.Client) -> None:
    sp = create_sp(owner)
    token = sp_token(server, sp)
    assert owner.delete(f"/identities/{sp['name']}").status_code == 204
    response = httpx.get(f"{server.url}/whoami", headers=bearer(token))
    assert response.status_code == 401 and "no longer exists" in response.text
    assert client_credentials(server, sp["client_id"], sp["client_secret"]).status_code == 401


def test_identity_routes_need_the_owner_role(server: RunningServer, owner: httpx.Client) -> None:
    sp = create_sp(owner)
    headers = bearer(sp_token(server, sp))
    owner.post("/roles", json={"identity": sp["name"], "role": "contributor", "scope": "workspace"})
    for method, path, body in [
        ("GET", "/identities", None),
        ("POST", "/identities", {"name": unique("x"), "kind": "user"}),
        ("GET", "/identities/owner", None),
        ("DELETE", "/identities/owner", None),
        ("POST", "/identities/owner/tokens", {}),
        ("POST", f"/identities/{sp['name']}/secret", None),
        ("GET", "/roles", None),
        ("POST", "/roles", {"identity": sp["name"], "role": "owner", "scope": "workspace"}),
        ("DELETE", "/roles?identity=owner&role=owner&scope=workspace", None),
    ]:
        response = httpx.request(method, f"{server.url}{path}", headers=headers, json=body)
        assert response.status_code == 403, f"{method} {path}: {response.text}"
        assert "owner" in response.json()["error"]["message"]
    roles = owner.get("/roles", params={"identity": sp["name"]}).json()
    assert [r["role"] for r in roles] == ["contributor"]


# -- tokens minted for an identity ------------------------------------------------------------


def test_tokens_for_an_identity(server: RunningServer, owner: httpx.Client) -> None:
    sp = create_sp(owner)
    minted = owner.post(f"/identities/{sp['name']}/tokens", json={"expires_in": 600})
    assert minted.status_code == 200, minted.text
    body = minted.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] == body["expires_on"]
    who = httpx.get(f"{server.url}/whoami", headers=bearer(body["access_token"])).json()
    assert who["name"] == sp["name"]

    default = owner.post(f"/identities/{sp['name']}/tokens").json()
    assert default["expires_in"] == 3600
    # An identity mints tokens for itself, and only for itself, that do not outlive the token
    # it mints them with.
    own = httpx.post(
        f"{server.url}/identities/{sp['name']}/tokens",
        headers=bearer(body["access_token"]),
        json={"expires_in": 7 * 86400},
    )
    assert own.status_code == 200 and own.json()["expires_in"] <= 600
    assert own.json()["expires_on"] <= body["expires_on"]
    other = httpx.post(
        f"{server.url}/identities/owner/tokens", headers=bearer(body["access_token"]), json={}
    )
    assert other.status_code == 403

    for bad in (10, 366 * 86400):
        response = owner.post(f"/identities/{sp['name']}/tokens", json={"expires_in": bad})
        assert response.status_code == 400 and "expires_in" in response.text
    assert owner.post(f"/identities/{unique('no')}/tokens", json={}).status_code == 404


def test_expired_and_foreign_tokens_are_401_without_echo(
    server: RunningServer, owner: httpx.Client
) -> None:
    key = bytes.fromhex((server.home / "secret.key").read_text().strip())
    me = owner.get("/whoami").json()
    base = {"sub": me["id"], "iss": "sluiceway:default", "aud": "sluiceway", "iat": 1}
    cases = {
        "expired": jwt.encode({**base, "exp": 2}, key, algorithm="HS256"),
        "audience": jwt.encode(
            {**base, "aud": "https://ml.azure.com", "exp": 4_000_000_000}, key, algorithm="HS256"
        ),
        "'exp'": jwt.encode(base, key, algorithm="HS256"),
        "signature": jwt.encode({**base, "exp": 4_000_000_000}, b"x" * 32, algorithm="HS256"),
        "algorithm": (
            base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
            + "."
            + owner.headers["Authorization"].split(" ")[1].split(".")[1]
            + "."
        ),
    }
    for words, token in cases.items():
        response = httpx.get(f"{server.url}/whoami", headers=bearer(token))
        assert response.status_code == 401, words
        message = response.json()["error"]["message"]
        assert words in message, message
        assert token not in response.text


# -- role assignments -----------------------------------------------------------------------


def test_role_assign_list_remove(owner: httpx.Client, tmp_path: Path) -> None:
    name = unique("rita")
    owner.post("/identities", json={"name": name, "kind": "user"})
    endpoint = unique("ep")
    assert owner.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint}).status_code == 201
    grant = {"identity": name, "role": "invoker", "scope": f"endpoint:{endpoint}"}
    first = owner.post("/roles", json=grant)
    assert first.status_code == 201, first.text
    assert {"identity", "role", "scope", "created_at"} <= set(first.json())
    again = owner.post("/roles", json=grant)
    assert again.status_code == 200 and again.json() == first.json()
    owner.post(
        "/roles", json={"identity": name, "role": "Reader", "scope": "datastore:workspaceblobstore"}
    )

    mine = owner.get("/roles", params={"identity": name}).json()
    assert [(r["role"], r["scope"]) for r in mine] == [
        ("reader", "datastore:workspaceblobstore"),
        ("invoker", f"endpoint:{endpoint}"),
    ]
    on_endpoint = owner.get("/roles", params={"scope": f"endpoint:{endpoint}"}).json()
    assert [r["identity"] for r in on_endpoint] == [name]
    assert owner.get(f"/identities/{name}").json()["roles"] == [
        {"scope": "datastore:workspaceblobstore", "role": "reader"},
        {"scope": f"endpoint:{endpoint}", "role": "invoker"},
    ]

    params = {"identity": name, "role": "invoker", "scope": f"endpoint:{endpoint}"}
    assert owner.delete("/roles", params=params).status_code == 204
    gone = owner.delete("/roles", params=params)
    assert gone.status_code == 404 and name in gone.json()["error"]["message"]


@pytest.mark.parametrize(
    ("grant", "status", "target", "words"),
    [
        (
            {"role": "admin", "scope": "workspace"},
            400,
            "role",
            "owner, contributor, invoker, reader",
        ),
        ({"role": "reader", "scope": "cluster:x"}, 400, "scope", "'endpoint:<name>'"),
        ({"role": "reader", "scope": "endpoint:no-such-ep"}, 404, "scope", "'no-such-ep'"),
        ({"role": "reader", "scope": "datastore:no_such_ds"}, 404, "scope", "'no_such_ds'"),
    ],
)
def test_bad_role_assignments(
    owner: httpx.Client, grant: dict[str, str], status: int, target: str, words: str
) -> None:
    name = unique("bad")
    owner.post("/identities", json={"name": name, "kind": "user"})
    response = owner.post("/roles", json={"identity": name, **grant})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["target"] == target and words in error["message"]
    assert owner.get("/roles", params={"identity": name}).json() == []


def test_roles_of_unknown_identities_and_bad_queries(owner: httpx.Client) -> None:
    missing = unique("ghost")
    grant = {"identity": missing, "role": "reader", "scope": "workspace"}
    assert owner.post("/roles", json=grant).status_code == 404
    assert owner.get("/roles", params={"identity": missing}).status_code == 404
    assert owner.get("/roles", params={"scope": "nowhere"}).status_code == 400
    response = owner.delete("/roles", params={"identity": "owner", "role": "owner"})
    assert response.status_code == 400 and "scope" in response.text


def test_the_last_owner_cannot_go(fresh_server: RunningServer) -> None:
    with fresh_server.client() as owner:
        params = {"identity": "owner", "role": "owner", "scope": "workspace"}
        refused = owner.delete("/roles", params=params)
        assert refused.status_code == 409
        assert "last identity with the 'owner' role" in refused.json()["error"]["message"]
        assert owner.delete("/identities/owner").status_code == 409

        owner.post("/identities", json={"name": "second", "kind": "user"})
        owner.post("/roles", json={"identity": "second", "role": "owner", "scope": "workspace"})
        token = owner.post("/identities/second/tokens", json={}).json()["access_token"]
        assert owner.delete("/roles", params=params).status_code == 204
        assert owner.get("/identities").status_code == 403
    with httpx.Client(base_url=fresh_server.url, headers=bearer(token)) as second:
        params = {"identity": "second", "role": "owner", "scope": "workspace"}
        assert second.delete("/roles", params=params).status_code == 409
        assert second.delete("/identities/second").status_code == 409
        assert second.delete("/identities/owner").status_code == 204
        who = second.get("/whoami").json()
        assert who["roles"] == [{"scope": "workspace", "role": "owner"}]


# -- OAuth2 client credentials ---------------------------------------------------------------


def test_a_service_principal_invokes_an_endpoint_with_client_credentials(
    server: RunningServer, owner: httpx.Client, tmp_path: Path
) -> None:
    sp = create_sp(owner)
    grant = {"identity": sp["name"], "role": "contributor", "scope": "workspace"}
    assert owner.post("/roles", json=grant).status_code == 201

    response = client_credentials(server, sp["client_id"], sp["client_secret"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "ext_expires_in"}
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == (
        "Bearer",
        3599,
        3599,
    )
    assert response.headers["cache-control"] == "no-store"
    headers = bearer(body["access_token"])

    who = httpx.get(f"{server.url}/whoami", headers=headers).json()
    assert who["name"] == sp["name"] and who["kind"] == "service_principal"
    assert who["roles"] == [{"scope": "workspace", "role": "contributor"}]

    endpoint = unique("sp-ep")
    create_script_deployment(owner, tmp_path, endpoint, "echo")
    write_numbered_files(tmp_path / "data", 2)
    upload_folder(owner, tmp_path / "data", f"sp-data/{endpoint}")
    invoke = httpx.post(
        f"{server.url}/endpoints/{endpoint}/jobs",
        headers=headers,
        json=invoke_body(
            {"heart_dataset": {"JobInputType": "UriFolder", "Uri": f"{DS}/sp-data/{endpoint}/"}}
        ),
    )
    assert invoke.status_code == 201, invoke.text
    job = invoke.json()
    assert job["creation_context"]["created_by"] == sp["name"]


def test_client_credentials_as_http_basic(server: RunningServer, owner: httpx.Client) -> None:
    sp = create_sp(owner)
    pair = f"{quote_plus(sp['client_id'])}:{quote_plus(sp['client_secret'])}"
    response = httpx.post(
        f"{server.url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
    )
    assert response.status_code == 200, response.text
    wrong = base64.b64encode(f"{sp['client_id']}:nope".encode()).decode()
    refused = httpx.post(
        f"{server.url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {wrong}"},
    )
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic")


CC = "client_credentials"


@pytest.mark.parametrize(
    ("form", "status", "error", "words"),
    [
        ({"grant_type": CC, "client_secret": "x"}, 400, "invalid_request", "client_id"),
        ({"grant_type": CC, "client_id": "x"}, 400, "invalid_request", "client_secret"),
        ({"client_id": "x", "client_secret": "y"}, 400, "invalid_request", "grant_type"),
        (
            {"grant_type": "password", "client_id": "x", "client_secret": "y"},
            400,
            "unsupported_grant_type",
            "'password'",
        ),
        (
            {"grant_type": CC, "client_id": "unknown", "client_secret": "y"},
            401,
            "invalid_client",
            "client id",
        ),
    ],
)
def test_token_endpoint_errors(
    server: RunningServer, form: dict[str, str], status: int, error: str, words: str
) -> None:
    response = httpx.post(f"{server.url}/oauth2/token", data=form)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error and words in body["error_description"]


def test_token_endpoint_takes_only_forms(server: RunningServer, owner: httpx.Client) -> None:
    sp = create_sp(owner)
    response = httpx.post(
        f"{server.url}/oauth2/token",
        json={"grant_type": "client_credentials", **{k: sp[k] for k in ("client_id",)}},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in response.json()["error_description"]
    twice = httpx.post(
        f"{server.url}/oauth2/token",
        content=f"grant_type=client_credentials&client_id={sp['client_id']}&client_id=x"
        f"&client_secret={quote_plus(sp['client_secret'])}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert twice.status_code == 400 and "more than once" in twice.text


def test_read_rights_on_an_input_are_checked_on_every_invocation(
    server: RunningServer, owner: httpx.Client, tmp_path: Path
) -> None:
    """Storage checks of an input are remembered for a few seconds; who may read it is not:
    an identity whose datastore role went away a moment after invoking is refused at once."""
    sp = create_sp(owner)
    endpoint = unique("rights-ep")
    create_script_deployment(owner, tmp_path, endpoint, "echo")
    write_numbered_files(tmp_path / "data", 2)
    upload_folder(owner, tmp_path / "data", f"rights-data/{endpoint}")
    on_data = {"identity": sp["name"], "role": "invoker", "scope": "datastore:workspaceblobstore"}
    for grant in ({**on_data, "scope": f"endpoint:{endpoint}"}, on_data):
        assert owner.post("/roles", json=grant).status_code == 201
    headers = bearer(owner.post(f"/identities/{sp['name']}/tokens").json()["access_token"])
    body = invoke_body(
        {"heart_dataset": {"JobInputType": "UriFolder", "Uri": f"{DS}/rights-data/{endpoint}/"}}
    )

    def invoke() -> httpx.Response:
        return httpx.post(f"{server.url}/endpoints/{endpoint}/jobs", headers=headers, json=body)

    first = invoke()
    assert first.status_code == 201, first.text
    assert owner.delete("/roles", params=on_data).status_code == 204
    again = invoke()
    assert again.status_code == 403, again.text
    assert "heart_dataset" in again.json()["error"]["message"]
