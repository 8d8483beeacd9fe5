"""Finding the server and the token, in order, and what a failed request turns into."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluiceway import MLClient
from sluiceway.errors import (
    AuthenticationError,
    ConflictError,
    ResourceNotFoundError,
    ServerUnavailableError,
    SluicewayError,
    ValidationError,
)
from sluiceway.home import WorkspaceHome
from sluiceway.sdk.connection import Connection, resolve_connection, resolve_settings

BASE_URL = "http://sluice.test"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No env variables, an empty current folder, and an empty workspace home."""
    monkeypatch.delenv("SLUICEWAY_ENDPOINT", raising=False)
    monkeypatch.delenv("SLUICEWAY_TOKEN", raising=False)
    monkeypatch.setenv("SLUICEWAY_HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def write_home(root: Path, url: str = "http://home:1", token: str = "home-token") -> None:
    home = WorkspaceHome(root / "home")
    home.root.mkdir(parents=True, exist_ok=True)
    home.server_file.write_text(json.dumps({"url": url}))
    home.token.write_text(token + "\n")


def write_config(folder: Path, **values: Any) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return path


# -- resolution order --------------------------------------------------------------------


def test_the_workspace_home_is_the_last_resort(isolated: Path) -> None:
    write_home(isolated)
    settings = resolve_settings()
    assert (settings.endpoint, settings.token) == ("http://home:1", "home-token")


def test_config_json_wins_over_the_home(isolated: Path) -> None:
    write_home(isolated)
    write_config(
        Path.cwd(),
        endpoint="http://config:2",
        token="config-token",
        subscription_id="sub",
        resource_group="rg",
        workspace_name="ws",
    )
    settings = resolve_settings()
    assert (settings.endpoint, settings.token) == ("http://config:2", "config-token")
    assert (settings.config.subscription_id, settings.config.resource_group) == ("sub", "rg")
    assert settings.config.workspace_name == "ws"


def test_azure_only_config_json_falls_through_to_the_home(isolated: Path) -> None:
    write_home(isolated)
    azureml = Path.cwd() / ".azureml"
    azureml.mkdir()
    write_config(azureml, subscription_id="sub", resource_group="rg", workspace_name="ws")
    settings = resolve_settings()
    assert settings.endpoint == "http://home:1"
    assert settings.config.workspace_name == "ws"


def test_env_wins_over_config_json(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_home(isolated)
    write_config(Path.cwd(), endpoint="http://config:2", token="config-token")
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", "http://env:3")
    monkeypatch.setenv("SLUICEWAY_TOKEN", "env-token")
    settings = resolve_settings()
    assert (settings.endpoint, settings.token) == ("http://env:3", "env-token")


def test_arguments_win_over_everything(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_home(isolated)
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", "http://env:3")
    monkeypatch.setenv("SLUICEWAY_TOKEN", "env-token")
    connection = resolve_connection("http://arg:4/", "arg-token")
    assert (connection.endpoint, connection.token) == ("http://arg:4", "arg-token")


def test_the_home_token_goes_only_to_the_home_server(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_home(isolated)
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", "http://env:3")
    with pytest.raises(AuthenticationError, match=r"home's token is for http://home:1"):
        resolve_settings()
    # The same origin written another way is the home's server.
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", "HTTP://Home:1/")
    assert resolve_settings().token == "home-token"


def test_an_explicit_home_and_config_path(isolated: Path) -> None:
    write_home(isolated / "other", url="http://other:5", token="other-token")
    settings = resolve_settings(home=isolated / "other" / "home")
    assert settings.endpoint == "http://other:5"
    config = write_config(isolated, endpoint="http://cfg:6", token="t")
    assert resolve_settings(config_path=config).endpoint == "http://cfg:6"
    assert resolve_settings(config_path=isolated).endpoint == "http://cfg:6"


def test_no_server_says_how_to_start_one(isolated: Path) -> None:
    with pytest.raises(ServerUnavailableError) as info:
        resolve_connection()
    assert "sluice server start" in info.value.message
    assert "SLUICEWAY_ENDPOINT" in info.value.message


def test_no_token_says_where_tokens_come_from(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", "http://env:3")
    with pytest.raises(AuthenticationError, match="SLUICEWAY_TOKEN"):
        resolve_connection()


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ("[1]", "JSON object"), ('{"token": 5}', "must be a string")],
)
def test_a_broken_config_json_is_reported(isolated: Path, content: str, message: str) -> None:
    (Path.cwd() / "config.json").write_text(content)
    with pytest.raises(ValidationError, match=message):
        resolve_settings(endpoint="http://x", token="t")


def test_an_explicit_config_path_must_exist(isolated: Path) -> None:
    with pytest.raises(ValidationError, match=r"No config\.json found"):
        resolve_settings(config_path=isolated / "nowhere")


# -- MLClient and credentials ------------------------------------------------------------


class StaticCredential:
    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: tuple[str, ...] = ()

    def get_token(self, *scopes: str) -> Any:
        self.scopes = scopes
        return type("AccessToken", (), {"token": self.token})()


class AzureLikeCredential(StaticCredential):
    pass


AzureLikeCredential.__module__ = "azure.identity._credentials.default"


class FailingCredential:
    def get_token(self, *scopes: str) -> Any:
        raise RuntimeError("no Azure login")


FailingCredential.__module__ = "azure.identity._credentials.default"


def test_mlclient_with_a_token_string(isolated: Path) -> None:
    write_home(isolated)
    client = MLClient("string-token", "sub", "rg", "ws")
    assert client.connection.token == "string-token"
    assert client.endpoint == "http://home:1"
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == (
        "sub",
        "rg",
        "ws",
    )


def test_mlclient_asks_a_credential_object(isolated: Path) -> None:
    write_home(isolated)
    credential = StaticCredential("cred-token")
    client = MLClient(credential)
    assert client.connection.token == "cred-token"
    assert credential.scopes == ("https://ml.azure.com/.default",)


def test_an_azure_credential_is_asked_only_without_a_sluiceway_token(isolated: Path) -> None:
    write_home(isolated)
    # Code ported from Azure passes DefaultAzureCredential(); the local token is used.
    assert MLClient(FailingCredential()).connection.token == "home-token"
    (isolated / "home" / "token").unlink()
    assert MLClient(AzureLikeCredential("azure-token")).connection.token == "azure-token"
    with pytest.raises(AuthenticationError, match="could not get a token: no Azure login"):
        MLClient(FailingCredential())


def test_a_credential_of_another_kind_is_refused(isolated: Path) -> None:
    write_home(isolated)
    with pytest.raises(ValidationError, match="get_token"):
        MLClient(42)  # type: ignore[arg-type]


def test_from_config(isolated: Path) -> None:
    write_config(
        Path.cwd(), endpoint="http://cfg:7", token="t", subscription_id="s", workspace_name="w"
    )
    client = MLClient.from_config()
    assert client.endpoint == "http://cfg:7"
    assert (client.subscription_id, client.workspace_name) == ("s", "w")
    other = isolated / "other"
    other.mkdir()
    write_config(other, endpoint="http://other:8", token="t")
    assert MLClient.from_config(path=other).endpoint == "http://other:8"
    assert MLClient.from_config(path=other / "config.json").endpoint == "http://other:8"
    with pytest.raises(ValidationError):
        MLClient.from_config(path=isolated / "missing")


def test_from_config_without_a_file_uses_the_local_server(isolated: Path) -> None:
    write_home(isolated)
    assert MLClient.from_config(FailingCredential()).endpoint == "http://home:1"


# -- requests ----------------------------------------------------------------------------


def answering(status: int, **kwargs: Any) -> Connection:
    return Connection(
        BASE_URL, "t", transport=httpx.MockTransport(lambda r: httpx.Response(status, **kwargs))
    )


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "UserError", ValidationError),
        (401, "Unauthorized", AuthenticationError),
        (404, "NotFound", ResourceNotFoundError),
        (409, "Conflict", ConflictError),
    ],
)
def test_server_errors_become_sluiceway_errors(
    status: int, code: str, error: type[SluicewayError]
) -> None:
    connection = answering(
        status, json={"error": {"code": code, "message": "what went wrong", "target": "name"}}
    )
    with pytest.raises(error) as info:
        connection.request("GET", "/x")
    assert (info.value.message, info.value.target) == ("what went wrong", "name")


def test_a_non_json_error_keeps_its_text() -> None:
    with pytest.raises(SluicewayError, match="HTTP 502: bad gateway"):
        answering(502, text="bad gateway").request("GET", "/x")


def test_empty_answers_are_none_and_json_is_parsed() -> None:
    assert answering(204).request("DELETE", "/x") is None
    assert answering(200, json={"a": 1}).request("GET", "/x") == {"a": 1}


def test_a_refused_connection_names_the_url_and_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connection = Connection(f"http://127.0.0.1:{port}", "t")
    with pytest.raises(ServerUnavailableError) as info:
        connection.request("GET", "/healthz")
    assert f"http://127.0.0.1:{port}" in info.value.message
    assert "sluice server start" in info.value.message


def test_download_to_writes_the_whole_file_or_nothing(tmp_path: Path) -> None:
    connection = answering(200, content=b"abc" * 1000)
    dest = tmp_path / "deep" / "file.bin"
    assert connection.download_to("/f", dest) == 3000
    assert dest.read_bytes() == b"abc" * 1000
    missing = answering(404, json={"error": {"code": "NotFound", "message": "gone"}})
    with pytest.raises(ResourceNotFoundError, match="gone"):
        missing.download_to("/f", tmp_path / "other.bin")
    assert sorted(p.name for p in (tmp_path).iterdir()) == ["deep"]
