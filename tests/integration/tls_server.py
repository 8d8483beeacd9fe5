"""A real Sluiceway server serving HTTPS with its self-signed certificate, for the tests that
drive it with the unmodified azure-ai-ml SDK and azure-storage-blob."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.conftest import RunningServer


def start_tls_server(home: Path) -> RunningServer:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLUICEWAY_SCHEDULER_POLL_SECONDS": "0.2", "SLUICEWAY_SPARE_WORKERS": "0"}
    with open(home / "server.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sluiceway.server", "--home", str(home), "--port", "0", "--tls"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(home / 'server.log').read_text()}")
        try:
            url = json.loads((home / "server.json").read_text())["url"]
            bundle = ca_bundle(home)
            verify = ssl.create_default_context(cafile=str(bundle))
            if httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                return RunningServer(url, (home / "token").read_text().strip(), home, process)
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    process.kill()
    process.wait(5)
    raise RuntimeError(f"server did not start: {(home / 'server.log').read_text()}")


def ca_bundle(home: Path) -> Path:
    return home / "tls" / "ca-bundle.pem"


def tls_client(server: RunningServer, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token or server.token}"},
        verify=ssl.create_default_context(cafile=str(ca_bundle(server.home))),
        timeout=30.0,
    )


def workspace_path(server: RunningServer) -> str:
    with tls_client(server) as client:
        found: str = client.get("/azureml/discovery").json()["workspaceId"]
    return found
