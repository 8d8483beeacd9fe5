"""A real Sluiceway server for integration tests: a subprocess on an ephemeral port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sluiceway.store.db import Database, upgrade
from tests.integration.databases import DATABASES, empty_database


@dataclass(frozen=True)
class RunningServer:
    url: str
    token: str
    home: Path
    process: subprocess.Popen[bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, token: str | None = None) -> httpx.Client:
        """A client of the server with the owner's token, or with ``token``."""
        headers = self.headers if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def shared_folder(self) -> Path:
        """A folder the server's workers can read and write, for flag and rendezvous files: a
        server running as root runs them as another user that sees nothing of the test's own
        temporary folders."""
        folder = self.home / "staging" / "tests" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        folder.chmod(0o777)
        return folder

    def env(self) -> dict[str, str]:
        """Environment for a CLI or SDK process that talks to this server."""
        return {**os.environ, "SLUICEWAY_ENDPOINT": self.url, "SLUICEWAY_TOKEN": self.token}


def start_server(
    home: Path, *, extra_env: dict[str, str] | None = None, role: str | None = None
) -> RunningServer:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLUICEWAY_SCHEDULER_POLL_SECONDS": "0.2", **(extra_env or {})}
    command = [sys.executable, "-m", "sluiceway.server", "--home", str(home), "--port", "0"]
    if role is not None:
        command += ["--role", role]
    with open(home / "server.log", "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    server_file = home / "server.json"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(home / 'server.log').read_text()}")
        if server_file.exists():
            try:
                url = json.loads(server_file.read_text())["url"]
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    token = (home / "token").read_text().strip()
                    return RunningServer(url, token, home, process)
            except (ValueError, KeyError, httpx.HTTPError):
                pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {(home / 'server.log').read_text()}")


def stop_server(server: RunningServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the session; tests use unique resource names."""
    running = start_server(tmp_path_factory.mktemp("server-home"))
    yield running
    stop_server(running)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of its own, for tests that restart it or need an empty workspace."""
    running = start_server(tmp_path / "home")
    yield running
    stop_server(running)


@pytest.fixture(params=DATABASES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A workspace database at the newest schema: each test runs on SQLite and PostgreSQL."""
    with empty_database(request.param, tmp_path) as database:
        upgrade(database.engine)
        yield database
