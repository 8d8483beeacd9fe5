"""What the ``sluice`` command sends where, and what it says about files it cannot read.

Each command runs as a real ``sluice`` process next to a real server, in a folder of its own.
A credential goes only to the server it belongs to: a ``config.json`` in the current folder
that names another address (a listener here that records the ``Authorization`` header it
gets) gets none of them, and the command says so in one line. A redirect is not followed.
A ``-f`` file that is not UTF-8, nested too deep or holds a huge number is a one-line error
that names the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sluiceway.sdk.login_store import LoginStore, StoredLogin
from tests.integration.conftest import RunningServer
from tests.integration.helpers import unique

# -- a listener that records what it is sent ------------------------------------------------


@dataclass
class Listener:
    """An HTTP server on a loopback port that records each request's ``Authorization``.

    With ``redirect_to`` it answers every request with a 307 to that address (same path).
    """

    redirect_to: str | None = None
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def authorizations(self) -> list[str]:
        return [auth for _, auth in self.seen if auth]

    def start(self) -> Listener:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                listener.seen.append((self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if listener.redirect_to is not None:
                    self.send_response(307)
                    self.send_header("Location", listener.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = {"name": "someone"} if self.path.startswith("/whoami") else []
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener().start()
    yield running
    running.stop()


# -- running sluice ---------------------------------------------------------------------------


@dataclass
class Sluice:
    """Runs the ``sluice`` console script in ``cwd`` with the server's workspace home."""

    cwd: Path
    env: dict[str, str]

    def run(self, *argv: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        sluice = Path(sys.executable).with_name("sluice")
        command = [str(sluice)] if sluice.exists() else [sys.executable, "-m", "sluiceway.cli.main"]
        return subprocess.run(
            [*command, *argv],
            capture_output=True, text=True, cwd=self.cwd, env={**self.env, **extra_env},
            timeout=120, check=False,
        )  # fmt: skip

    def fails(self, *argv: str, **extra_env: str) -> str:
        """The one-line error of a command that must fail as a user error."""
        return one_line_error(self.run(*argv, **extra_env))


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("ERROR: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


@pytest.fixture
def sluice(server: RunningServer, tmp_path: Path) -> Sluice:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEWAY_")}
    env["SLUICEWAY_HOME"] = str(server.home)  # the owner token and the address it belongs to
    env["SLUICEWAY_CONFIG_DIR"] = str(tmp_path / "logins")
    work = tmp_path / "work"
    work.mkdir()
    return Sluice(work, env)


def write_config(folder: Path, **values: str) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return path


# -- a credential goes only to its own server -------------------------------------------------


COMMANDS = [
    ("batch-endpoint", "list"),
    ("datastore", "show", "-n", "workspaceblobstore"),
    ("job", "list"),
    ("identity", "list"),
    ("login", "--identity", "someone"),
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv))
def test_a_config_json_naming_another_server_gets_no_owner_token(
    sluice: Sluice, server: RunningServer, listener: Listener, argv: tuple[str, ...]
) -> None:
    config = write_config(sluice.cwd, endpoint=listener.url)
    done = sluice.run(*argv)
    assert listener.authorizations() == []
    error = one_line_error(done)
    assert server.token not in error
    assert listener.url in error and str(config) in error
    assert f"sluice login --endpoint {listener.url}" in error


def test_an_ambient_sluiceway_token_is_not_sent_to_a_config_json_endpoint(
    sluice: Sluice, server: RunningServer, listener: Listener
) -> None:
    write_config(sluice.cwd, endpoint=listener.url)
    done = sluice.run("batch-endpoint", "list", SLUICEWAY_TOKEN=server.token)
    assert listener.authorizations() == []
    error = one_line_error(done)
    assert "SLUICEWAY_TOKEN" in error and listener.url in error
    done = sluice.run("login", "--token", server.token)
    assert listener.authorizations() == []
    error = one_line_error(done)
    assert listener.url in error


def test_a_config_json_naming_the_home_server_uses_the_owner_token(
    sluice: Sluice, server: RunningServer
) -> None:
    # The same origin written another way is still the home's server.
    write_config(sluice.cwd, endpoint=server.url.upper() + "/")
    done = sluice.run("datastore", "show", "-n", "workspaceblobstore")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "workspaceblobstore"


def test_a_login_goes_to_its_own_server_only(
    sluice: Sluice, server: RunningServer, listener: Listener
) -> None:
    write_config(sluice.cwd, endpoint=listener.url)
    logins = LoginStore(Path(sluice.env["SLUICEWAY_CONFIG_DIR"]))
    logins.save(StoredLogin(listener.url, "token", "listener-login"))
    logins.save(StoredLogin(server.url, "token", server.token))
    done = sluice.run("batch-endpoint", "list")
    assert done.returncode == 0, done.stderr
    assert listener.authorizations() == ["Bearer listener-login"]


def test_an_explicit_endpoint_and_token_are_the_users_choice(
    sluice: Sluice, listener: Listener
) -> None:
    done = sluice.run("batch-endpoint", "list", "--endpoint", listener.url, "--token", "chosen")
    assert done.returncode == 0, done.stderr
    assert listener.authorizations() == ["Bearer chosen"]


def test_a_redirect_does_not_take_the_token_to_another_server(
    sluice: Sluice, server: RunningServer, listener: Listener
) -> None:
    redirector = Listener(redirect_to=listener.url).start()
    try:
        error = sluice.fails(
            "batch-endpoint", "list", "--endpoint", redirector.url, "--token", server.token
        )
        assert redirector.authorizations() == [f"Bearer {server.token}"]
        assert listener.seen == []
        assert "redirect" in error and listener.url in error
        # The SDK's client, too, whatever the redirect's status.
        from sluiceway import MLClient
        from sluiceway.errors import ServerUnavailableError

        with MLClient(endpoint=redirector.url, token="sdk-token") as client:
            with pytest.raises(ServerUnavailableError, match="redirect"):
                client.batch_endpoints.list()
        assert listener.seen == []
    finally:
        redirector.stop()


# -- a -f file the loader cannot use ------------------------------------------------------------

F_COMMANDS = [
    ("data", "create", "-f"),
    ("model", "create", "-f"),
    ("batch-endpoint", "create", "-f"),
    ("batch-deployment", "create", "-f"),
    ("component", "create", "-f"),
    ("datastore", "create", "-f"),
    ("batch-endpoint", "invoke", "-n", "some-endpoint", "-f"),
]

BAD_FILES = {
    "not-utf8": (b"name: caf\xe9\n", "UTF-8"),
    "deep": (b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", "nested"),
    "huge-int": (b"name: x\nversion: " + b"9" * 5_000 + b"\n", "digits"),
    "self-referring": (b"name: &a [x, *a]\n", "contains itself"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
@pytest.mark.parametrize("argv", F_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_a_bad_yaml_file_is_a_one_line_error(
    sluice: Sluice, argv: tuple[str, ...], kind: str
) -> None:
    content, words = BAD_FILES[kind]
    path = sluice.cwd / f"{kind}-{unique('f')}.yml"
    path.write_bytes(content)
    error = sluice.fails(*argv, str(path))
    assert path.name in error and words in error, error


# -- a JSON body the server cannot read -------------------------------------------------------

BAD_BODIES = {
    "deep-list": ('{"name": "x", "tags": ' + "[" * 20_000 + "]" * 20_000 + "}", "nested"),
    "deep-object": ('{"name": "x", "tags": ' + '{"a": ' * 5_000 + "1" + "}" * 5_001, "nested"),
    "huge-int": ('{"name": "x", "description": ' + "9" * 4_301 + "}", "4300 digits"),
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/data"),
        ("PUT", "/batch-endpoints/some-endpoint"),
        ("PUT", "/datastores/some_store"),
        ("POST", "/identities"),
        ("POST", "/endpoints/some-endpoint/jobs"),
    ],
)
def test_an_unreadable_json_body_is_a_400_that_says_why(
    server: RunningServer, method: str, path: str, kind: str
) -> None:
    body, words = BAD_BODIES[kind]
    with server.client() as client:
        response = client.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert words in error["message"] and error["target"] == "body", error
        # The connection is kept and the server still answers.
        assert client.get("/whoami").status_code == 200


def test_azure_env_prints_no_owner_token_for_another_server(
    sluice: Sluice, server: RunningServer
) -> None:
    """`sluice azure env` prints the current identity's token as IDENTITY_HEADER: the home's
    owner token only for the home's server, refused before any request for another one."""
    done = sluice.run("azure", "env", "--endpoint", "https://127.0.0.1:9")
    assert server.token not in done.stdout + done.stderr
    error = one_line_error(done)
    assert "owner token" in error and "https://127.0.0.1:9" in error, error
