"""Which server a credential may be sent to (:mod:`sluiceway.sdk.server_address`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluiceway import MLClient
from sluiceway.errors import AuthenticationError
from sluiceway.home import WorkspaceHome
from sluiceway.identity import ClientSecretCredential, DefaultAzureCredential
from sluiceway.sdk.connection import locate_server, resolve_settings
from sluiceway.sdk.server_address import AddressSource, ServerAddress, origin, same_origin

HOME_URL = "http://127.0.0.1:8765"
OTHER_URL = "http://127.0.0.1:9"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose server recorded HOME_URL, an empty current folder, no env, no logins."""
    for name in ("SLUICEWAY_ENDPOINT", "SLUICEWAY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLUICEWAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLUICEWAY_CONFIG_DIR", str(tmp_path / "logins"))
    home = WorkspaceHome(tmp_path / "home")
    home.root.mkdir()
    home.server_file.write_text(json.dumps({"url": HOME_URL}))
    home.token.write_text("owner-token\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM", ("http", "example.com", 80)),
        ("http://example.com:80/x/", ("http", "example.com", 80)),
        ("https://example.com.", ("https", "example.com", 443)),
        ("http://[::1]:8080", ("http", "::1", 8080)),
        ("http://example.com:99999", None),
        ("ftp://example.com", None),
        ("not a url", None),
    ],
)
def test_origin_is_scheme_host_and_port(url: str, expected: object) -> None:
    assert origin(url) == expected


def test_same_origin_ignores_the_path_and_case_but_not_the_port() -> None:
    assert same_origin("http://Host:1/a", "http://host:1")
    assert not same_origin("http://host:1", "http://host:2")
    assert not same_origin("http://host:1", "https://host:1")
    assert not same_origin("http://host:1", None)


def test_a_found_config_file_is_not_the_callers_choice() -> None:
    found = ServerAddress(OTHER_URL, AddressSource.CONFIG_FILE, Path("config.json"))
    assert not found.chosen
    assert ServerAddress(OTHER_URL, AddressSource.CONFIG_FILE, named=True).chosen
    assert ServerAddress(OTHER_URL, AddressSource.CONFIG_FILE, home_server=OTHER_URL).chosen
    assert ServerAddress(OTHER_URL, AddressSource.ENVIRONMENT).chosen


def test_a_config_json_endpoint_gets_only_its_own_credentials(isolated: Path) -> None:
    (isolated / "config.json").write_text(json.dumps({"endpoint": OTHER_URL}))
    with pytest.raises(AuthenticationError) as info:
        resolve_settings()
    message = info.value.message
    assert OTHER_URL in message and str(isolated / "config.json") in message
    assert "home's token is for" in message and "owner-token" not in message
    with pytest.raises(AuthenticationError, match="Not sending the token you gave"):
        resolve_settings(token="typed")
    # Its own token goes to its own endpoint.
    (isolated / "config.json").write_text(json.dumps({"endpoint": OTHER_URL, "token": "own"}))
    assert resolve_settings().token == "own"


def test_a_config_json_token_is_not_sent_to_another_endpoint(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "config.json").write_text(json.dumps({"endpoint": OTHER_URL, "token": "own"}))
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", HOME_URL)
    assert resolve_settings().token == "owner-token"


def test_from_config_chooses_the_file(isolated: Path) -> None:
    (isolated / "config.json").write_text(json.dumps({"endpoint": OTHER_URL}))
    client = MLClient.from_config(token="typed")
    assert (client.endpoint, client.connection.token) == (OTHER_URL, "typed")
    # The home's token is still only for the home's server.
    with pytest.raises(AuthenticationError, match="home's token is for"):
        MLClient.from_config()


def test_credentials_respect_where_the_address_came_from(isolated: Path) -> None:
    (isolated / "config.json").write_text(json.dumps({"endpoint": OTHER_URL}))
    assert locate_server().source is AddressSource.CONFIG_FILE
    secret = ClientSecretCredential("tenant", "client", "secret")
    with pytest.raises(AuthenticationError, match="Not sending the credential"):
        secret.get_token()
    with pytest.raises(AuthenticationError, match="Not sending the credential"):
        MLClient(secret)
    with pytest.raises(AuthenticationError, match="No credential for"):
        DefaultAzureCredential().get_token()
    (isolated / "config.json").unlink()
    assert DefaultAzureCredential().get_token().token == "owner-token"
