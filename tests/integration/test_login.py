"""``sluice identity|role|token|login|logout`` and the SDK's credentials against a real server.

Commands run in-process through ``main()``; the server is found from ``SLUICEWAY_ENDPOINT``
and, without a login, the owner token in its workspace home (``SLUICEWAY_HOME``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from sluiceway import MLClient
from sluiceway.errors import AuthenticationError, PermissionDeniedError
from sluiceway.identity import ClientSecretCredential, DefaultAzureCredential
from sluiceway.sdk import credentials
from sluiceway.sdk.login_store import LoginStore
from tests.integration.conftest import RunningServer
from tests.integration.helpers import unique
from tests.integration.test_cli import Cli


@pytest.fixture
def cli(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", server.url)
    monkeypatch.delenv("SLUICEWAY_TOKEN", raising=False)
    monkeypatch.setenv("SLUICEWAY_HOME", str(server.home))
    monkeypatch.setenv("SLUICEWAY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return Cli(capsys)


@pytest.fixture
def sp(cli: Cli) -> dict[str, Any]:
    """A service principal with the contributor role on the workspace."""
    created: dict[str, Any] = cli.json("identity", "create", "service-principal", unique("sp"))
    cli.ok("role", "assign", "--identity", created["name"], "--role", "contributor",
           "--scope", "workspace")  # fmt: skip
    return created


def who(server: RunningServer, token: str) -> str:
    response = httpx.get(f"{server.url}/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    name: str = response.json()["name"]
    return name


# -- identity, role and token commands -------------------------------------------------------


def test_identity_commands(cli: Cli) -> None:
    name = unique("robot")
    code, out, err = cli.run(
        "identity", "create", "service-principal", name, "--description", "nightly"
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["client_id"] and created["client_secret"]
    assert "not shown again" in err
    shown = cli.json("identity", "show", name)
    assert shown["description"] == "nightly" and "client_secret" not in shown
    assert cli.json("identity", "show", "-n", name)["id"] == created["id"]
    assert name in cli.json("identity", "list", "--query", "[].name")
    rotated = cli.json("identity", "rotate-secret", name)
    assert rotated["client_secret"] != created["client_secret"]

    user = cli.json("identity", "create", "user", unique("ana"), "--external-id", unique("oid"))
    assert user["kind"] == "user" and user["client_secret"] is None
    cli.ok("identity", "delete", name)
    assert "does not exist" in cli.fails("identity", "show", name)
    assert "accepted" in cli.fails("role", "assign", "--identity", user["name"], "--role",
                                   "boss", "--scope", "workspace")  # fmt: skip


def test_role_commands(cli: Cli) -> None:
    name = cli.json("identity", "create", "user", unique("rolf"))["name"]
    scope = "datastore:workspaceblobstore"
    granted = cli.json("role", "assign", "--identity", name, "--role", "reader", "--scope", scope)
    assert (granted["identity"], granted["role"], granted["scope"]) == (name, "reader", scope)
    listed = cli.json("role", "list", "--identity", name)
    assert [(r["role"], r["scope"]) for r in listed] == [("reader", scope)]
    assert name in cli.json("role", "list", "--scope", scope, "--query", "[].identity")
    cli.ok("role", "remove", "--identity", name, "--role", "reader", "--scope", scope)
    assert cli.json("role", "list", "--identity", name) == []
    assert "does not hold" in cli.fails(
        "role", "remove", "--identity", name, "--role", "reader", "--scope", scope
    )


def test_token_create(cli: Cli, server: RunningServer, sp: dict[str, Any]) -> None:
    token = cli.ok("token", "create", "--identity", sp["name"], "--expires-in", "30m").strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1800
    assert who(server, token) == sp["name"]
    default = cli.ok("token", "create", "--identity", sp["name"]).strip()
    claims = jwt.decode(default, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    shown = cli.json(
        "token", "create", "--identity", sp["name"], "--expires-in", "7d", "-o", "json"
    )
    assert (shown["token_type"], shown["expires_in"]) == ("Bearer", 7 * 86400)
    assert "--expires-in" in cli.fails("token", "create", "--identity", sp["name"],
                                       "--expires-in", "400d")  # fmt: skip


# -- login and logout ------------------------------------------------------------------------


def test_login_with_client_credentials_renews_and_logout_forgets(
    cli: Cli, server: RunningServer, sp: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli.json(
        "login", "--client-id", sp["client_id"], "--client-secret", sp["client_secret"]
    )
    assert (result["identity"], result["credential"], result["renews"]) == (
        sp["name"], "client_secret", True,
    )  # fmt: skip
    store = LoginStore()
    assert Path(result["file"]) == store.path
    assert store.path.stat().st_mode & 0o777 == 0o600
    stored = store.get(server.url)
    assert stored is not None and stored.client_secret == sp["client_secret"]

    # Later commands act as the service principal: it may mint its own tokens, not the owner's.
    own = cli.ok("token", "create", "--identity", sp["name"]).strip()
    assert who(server, own) == sp["name"]
    assert sp["name"] in cli.fails("token", "create", "--identity", "owner")
    # --token and SLUICEWAY_TOKEN win over the login.
    cli.ok("token", "create", "--identity", "owner", "--token", server.token)
    monkeypatch.setenv("SLUICEWAY_TOKEN", server.token)
    cli.ok("token", "create", "--identity", "owner")
    monkeypatch.delenv("SLUICEWAY_TOKEN")

    # A stored token near its expiry is renewed with the stored client credentials.
    first = stored.access_token
    with monkeypatch.context() as later:
        later.setattr(credentials, "_now", lambda: time.time() + 3400)
        cli.ok("token", "create", "--identity", sp["name"])
    renewed = store.get(server.url)
    assert renewed is not None and renewed.access_token != first
    assert who(server, renewed.access_token or "") == sp["name"]

    _, _, err = cli.run("logout")
    assert "Logged out" in err
    assert store.get(server.url) is None
    # Without a login the workspace home's owner token is used again.
    cli.ok("token", "create", "--identity", "owner")


def test_login_with_a_token_and_as_an_identity(
    cli: Cli, server: RunningServer, sp: dict[str, Any]
) -> None:
    token = cli.ok("token", "create", "--identity", sp["name"], "--expires-in", "2h").strip()
    result = cli.json("login", "--token", token)
    assert (result["identity"], result["credential"], result["renews"]) == (
        sp["name"], "token", False,
    )  # fmt: skip
    assert result["expires_on"].endswith("Z")
    assert sp["name"] in cli.fails("token", "create", "--identity", "owner")

    result = cli.json("login", "--identity", sp["name"], "--expires-in", "30d")
    stored = LoginStore().get(server.url)
    assert stored is not None and stored.access_token and stored.expires_on
    assert 29 * 86400 < stored.expires_on - time.time() <= 30 * 86400
    assert who(server, stored.access_token) == sp["name"]

    cli.ok("logout", "--all")
    assert LoginStore().servers() == []


def test_login_refuses_a_bad_credential(cli: Cli, sp: dict[str, Any]) -> None:
    err = cli.fails("login", "--client-id", sp["client_id"], "--client-secret", "wrong")
    assert "invalid_client" in err
    assert "well-formed" in cli.fails("login", "--token", "not-a-token")
    assert LoginStore().servers() == []


# -- the SDK ---------------------------------------------------------------------------------


def test_sdk_client_secret_credential(
    cli: Cli, server: RunningServer, sp: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = ClientSecretCredential("my-tenant", sp["client_id"], sp["client_secret"])
    with MLClient(credential, "sub", "rg", "ws", endpoint=server.url) as client:
        assert client.identities.whoami()["name"] == sp["name"]
        assert [d.name for d in client.datastores.list()]
        first = credential.get_token("https://ml.azure.com/.default")
        assert credential.get_token().token == first.token  # cached while fresh
        assert first.expires_on - time.time() > 3500
        # Five minutes before it expires, the next request gets a new token.
        with monkeypatch.context() as later:
            later.setattr(credentials, "_now", lambda: time.time() + 3400)
            assert client.identities.whoami()["name"] == sp["name"]
        assert client.connection.token != first.token
        with pytest.raises(PermissionDeniedError, match=sp["name"]):
            client.identities.list()

    wrong = ClientSecretCredential("t", sp["client_id"], "wrong", endpoint=server.url)
    with pytest.raises(AuthenticationError, match="refused the client credentials"):
        wrong.get_token()


def test_sdk_default_credential_uses_the_login(
    cli: Cli, server: RunningServer, sp: dict[str, Any]
) -> None:
    with MLClient(DefaultAzureCredential()) as client:
        assert client.identities.whoami()["name"] == "owner"
    cli.ok("login", "--client-id", sp["client_id"], "--client-secret", sp["client_secret"])
    with MLClient(DefaultAzureCredential()) as client:
        assert client.identities.whoami()["name"] == sp["name"]
    with MLClient() as client:
        assert client.identities.whoami()["name"] == sp["name"]
    cli.ok("logout")


def test_sdk_identity_and_role_operations(server: RunningServer) -> None:
    with MLClient(endpoint=server.url, token=server.token) as client:
        name = unique("ops")
        created = client.identities.create(name, "service_principal", description="d")
        assert created.client_secret and created.client_id
        granted = client.role_assignments.create(name, "invoker", "workspace")
        assert granted.role == "invoker"
        assert [r.role for r in client.role_assignments.list(identity=name)] == ["invoker"]
        minted = client.identities.create_token(name, expires_in=120)
        assert minted.expires_in == 120
        client.role_assignments.delete(name, "invoker", "workspace")
        assert client.identities.get(name).roles == []
        client.identities.delete(name)
        assert name not in [i.name for i in client.identities.list()]
