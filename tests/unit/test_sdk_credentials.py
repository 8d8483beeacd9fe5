"""Stored logins, the order in which a token is found, and duration arguments; no server."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from sluiceway.cli.main import main
from sluiceway.cli.token import parse_duration
from sluiceway.errors import AuthenticationError, ServerUnavailableError, ValidationError
from sluiceway.home import WorkspaceHome
from sluiceway.identity import AccessToken, ClientSecretCredential, DefaultAzureCredential
from sluiceway.sdk.connection import resolve_settings
from sluiceway.sdk.credentials import stored_login_provider, token_expiry
from sluiceway.sdk.login_store import LoginStore, StoredLogin, default_config_dir, server_key

SERVER = "http://home:1"


def fake_jwt(**claims: object) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2ln"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder, a workspace home with a server and token, no token in env."""
    monkeypatch.delenv("SLUICEWAY_ENDPOINT", raising=False)
    monkeypatch.delenv("SLUICEWAY_TOKEN", raising=False)
    home = WorkspaceHome(tmp_path / "home")
    home.root.mkdir()
    home.server_file.write_text(json.dumps({"url": SERVER}))
    home.token.write_text("home-token\n")
    monkeypatch.setenv("SLUICEWAY_HOME", str(home.root))
    monkeypatch.setenv("SLUICEWAY_CONFIG_DIR", str(tmp_path / "config"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_the_store_keeps_one_login_per_server_privately(isolated: Path) -> None:
    store = LoginStore()
    assert store.path == isolated / "config" / "credentials.json"
    assert store.get(SERVER) is None
    store.save(StoredLogin("HTTP://Home:1/", "token", "t1", 123, identity="ana"))
    found = store.get("http://home:1")
    assert found == StoredLogin("http://home:1", "token", "t1", 123, identity="ana")
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.path.parent.stat().st_mode & 0o777 == 0o700
    store.save(StoredLogin("http://other:2", "client_secret", client_id="c", client_secret="s"))
    assert store.servers() == ["http://home:1", "http://other:2"]
    assert store.remove(SERVER) and not store.remove(SERVER)
    assert store.servers() == ["http://other:2"]


def test_a_broken_credentials_file_says_what_to_do(isolated: Path) -> None:
    store = LoginStore()
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(ValidationError, match="sluice login"):
        store.get(SERVER)


def test_config_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SLUICEWAY_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_dir() == tmp_path / "xdg" / "sluiceway"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_dir() == tmp_path / ".config" / "sluiceway"
    assert server_key("http://A:1/x/") == "http://a:1/x"


def test_token_expiry_reads_exp_without_verifying() -> None:
    assert token_expiry(fake_jwt(exp=1234)) == 1234
    assert token_expiry(fake_jwt(sub="x")) is None
    assert token_expiry("not-a-jwt") is None


def test_precedence_flag_then_env_then_login_then_home(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_settings().token == "home-token"
    LoginStore().save(StoredLogin(SERVER, "token", "login-token", int(time.time()) + 600))
    assert resolve_settings().token == "login-token"
    monkeypatch.setenv("SLUICEWAY_TOKEN", "env-token")
    assert resolve_settings().token == "env-token"
    assert resolve_settings(token="flag-token").token == "flag-token"
    # The login is for one server, and the home's token for the home's server: another
    # server gets neither.
    monkeypatch.delenv("SLUICEWAY_TOKEN")
    with pytest.raises(AuthenticationError, match="home's token is for http://home:1"):
        resolve_settings(endpoint="http://elsewhere:9")


def test_default_azure_credential_follows_the_same_order(isolated: Path) -> None:
    assert DefaultAzureCredential().get_token("https://ml.azure.com/.default").token == (
        "home-token"
    )
    token = fake_jwt(exp=int(time.time()) + 600)
    LoginStore().save(StoredLogin(SERVER, "token", token, token_expiry(token)))
    found = DefaultAzureCredential().get_token()
    assert found == AccessToken(token, token_expiry(token))


def test_an_expired_login_says_to_log_in_again(isolated: Path) -> None:
    LoginStore().save(StoredLogin(SERVER, "token", "old", int(time.time()) - 10))
    with pytest.raises(AuthenticationError, match="sluice login"):
        resolve_settings()
    assert stored_login_provider("http://elsewhere:9") is None


def test_a_client_secret_credential_says_when_the_server_is_away(isolated: Path) -> None:
    # Nothing listens on port 9: the exchange fails with a server-unavailable error.
    credential = ClientSecretCredential("tenant", "cid", "secret", endpoint="http://127.0.0.1:9")
    assert "secret" not in repr(credential)
    with pytest.raises(ServerUnavailableError, match="token endpoint"):
        credential.get_token()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("45m", 2700), ("12h", 43200), ("7d", 604800), ("1M", 60), ("365d", 31536000)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1y", "10s", "366d", "-5m", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValidationError, match="--expires-in"):
        parse_duration(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["login"],
        ["login", "--token", "t", "--identity", "x"],
        ["login", "--client-id", "c"],
        ["login", "--token", "t", "--expires-in", "1h"],
    ],
)
def test_login_takes_one_way_at_a_time(
    isolated: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and "--" in err
    assert not LoginStore().path.exists()
