"""A real Sluiceway server serving HTTPS with its self-signed certificate, for the tests that
drive it with the unmodified azure-ai-ml SDK and azure-storage-blob."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.integration.conftest import RunningServer


def start_tls_server(home: Path, extra_env: dict[str, str] | None = None) -> RunningServer:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SLUICEWAY_SCHEDULER_POLL_SECONDS": "0.2",
        "SLUICEWAY_SPARE_WORKERS": "0",
        **(extra_env or {}),
    }
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


class TlsFront:
    """HTTPS in front of a plain-http service on loopback (an Azurite run without ``--cert``),
    with a self-signed certificate for 127.0.0.1: what a TLS-terminating proxy or Azurite's own
    ``--cert``/``--key`` give. Bytes are passed through unchanged."""

    def __init__(self, backend: str, folder: Path) -> None:
        from cryptography.hazmat.primitives import serialization

        from sluiceway.server.tls import _make

        parts = urlsplit(backend)
        self._backend = (parts.hostname or "127.0.0.1", parts.port or 80)
        cert, key = _make(["127.0.0.1"])
        folder.mkdir(parents=True, exist_ok=True)
        self.cert = folder / "front-cert.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = folder / "front-key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self._writers: set[asyncio.StreamWriter] = set()
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(self.cert, key_file)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        self.url = f"https://127.0.0.1:{self._port}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._context)
        )
        self._port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        for writer in self._writers:  # an SSL close may still wait for its peer: end it now
            writer.transport.abort()
        self._loop.run_until_complete(asyncio.sleep(0.1))  # the closed transports let go
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._backend)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def bundle(self, folder: Path, *more: Path) -> Path:
        """certifi's roots with this front's certificate (and ``more``) appended."""
        import certifi

        parts = [Path(certifi.where()).read_text(), self.cert.read_text()]
        parts += [p.read_text() for p in more]
        path = folder / f"bundle-{len(more)}.pem"
        path.write_text("\n".join(parts))
        return path

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
