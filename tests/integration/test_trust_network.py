"""What a caller can make the server connect to, and how long it can keep it busy.

Real servers stand in for storage: a "storage" server on an allowed address that answers with
redirects, and a listener on a refused loopback address (``127.0.0.2``; the servers here allow
``127.0.0.1`` only) that records every request it gets. The listener must never hear from the
server.

DNS rebinding needs a name whose resolution changes while the server runs. There is no DNS
server here to control, so the server process gets a stand-in resolver: a ``sitecustomize``
module, on the test's ``PYTHONPATH`` only, that answers for names under ``.test`` (a reserved
top-level domain) from a zone file the test rewrites, and passes every other name to the
system's resolver. The server's code is unchanged and has no test branch; it sees what it
would see if a real DNS server changed its answer.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration import storage_services as svc
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    unique,
    upload_folder,
    write_numbered_files,
)

pytestmark = pytest.mark.slow

ACCOUNT_KEY = base64.b64encode(b"not-a-real-account-key").decode()
REFUSED_HOST = "127.0.0.2"

SITECUSTOMIZE = '''\
"""Test DNS: names under .test resolve from the zone file $TEST_DNS_ZONE (rewritten by tests)."""
import json, os, socket

_real = socket.getaddrinfo


def _getaddrinfo(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and name.rstrip(".").endswith(".test"):
        with open(os.environ["TEST_DNS_ZONE"]) as fh:
            address = json.load(fh).get(name.rstrip("."))
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return _real(address, port, *args, **kwargs)
    return _real(host, port, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
'''


@dataclass
class Listener:
    """An HTTP server that answers 200 to everything and records what it got."""

    host: str
    answer: int = 200
    location: str | None = None
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> Listener:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.requests.append((self.command, self.path, dict(self.headers)))
                self.send_response(owner.answer)
                if owner.location is not None:
                    self.send_header("Location", owner.location + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Where nothing may go: a loopback address the servers here do not allow."""
    running = Listener(REFUSED_HOST).start()
    yield running
    running.stop()


@dataclass
class World:
    server: RunningServer
    zone: Path

    def resolve(self, name: str, address: str | None) -> None:
        zone = json.loads(self.zone.read_text())
        if address is None:
            zone.pop(name, None)
        else:
            zone[name] = address
        self.zone.write_text(json.dumps(zone))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A server that may reach 127.0.0.1 (and not 127.0.0.2), with the test's DNS."""
    dns = tmp_path / "dns"
    dns.mkdir()
    (dns / "sitecustomize.py").write_text(SITECUSTOMIZE)
    zone = tmp_path / "zone.json"
    zone.write_text("{}")
    path = os.pathsep.join(p for p in (str(dns), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "127.0.0.1",
        "PYTHONPATH": path,
        "TEST_DNS_ZONE": str(zone),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    running = start_server(tmp_path / "home", extra_env=env)
    yield World(running, zone)
    stop_server(running)


def _blob_datastore(name: str, endpoint: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "azure_blob",
        "account_name": "acct",
        "container_name": "data",
        "endpoint": f"{endpoint}/acct",
        "credentials": {"account_key": ACCOUNT_KEY},
    }


def _s3_datastore(name: str, endpoint: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "s3",
        "bucket": "data",
        "endpoint_url": endpoint,
        "credentials": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "secret"},
    }


def _assert_refused(response: httpx.Response, address: str) -> None:
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert address in message and "SLUICEWAY_ALLOW_PRIVATE_NETWORK" in message, message
    assert "refused to connect" in message, message


@pytest.mark.parametrize("status", [302, 307])
def test_storage_redirects_to_refused_addresses_are_not_followed(
    world: World, listener: Listener, tmp_path: Path, status: int
) -> None:
    storage = Listener("127.0.0.1", answer=status, location=listener.url).start()
    try:
        with world.server.client() as client:
            name = unique("redirecting").replace("-", "_")
            r = client.put(f"/datastores/{name}", json=_blob_datastore(name, storage.url))
            assert r.status_code in (200, 201), r.text

            # Registering a data asset checks the path (adlfs, over aiohttp).
            path = f"azureml://datastores/{name}/paths/inputs/"
            r = client.post("/data", json={"name": unique("d"), "type": "uri_folder", "path": path})
            _assert_refused(r, REFUSED_HOST)

            # Invoking checks its inputs the same way.
            endpoint = unique("ep")
            create_script_deployment(client, tmp_path, endpoint, "blue")
            body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": path}})
            r = client.post(f"/endpoints/{endpoint}/jobs", json=body)
            _assert_refused(r, REFUSED_HOST)

            # Writing a file goes through azure-storage-blob's own client (requests), which
            # follows a 307 for a PUT (and no 302).
            r = client.put(f"/datastores/{name}/files/inputs/a.csv", content=b"x\n")
            if status == 307:
                _assert_refused(r, REFUSED_HOST)
            assert r.status_code == 400, r.text
        assert storage.requests, "the storage server was not asked at all"
        assert listener.requests == [], listener.requests
    finally:
        storage.stop()


@pytest.mark.parametrize("datastore", [_blob_datastore, _s3_datastore])
def test_a_name_that_resolves_to_a_refused_address_later_gets_no_request(
    world: World, listener: Listener, datastore: Any
) -> None:
    host = f"{unique('rebind')}.test"
    with world.server.client() as client:
        name = unique("rebinding").replace("-", "_")
        # The name does not resolve yet, so registering it is accepted (nothing to reach).
        r = client.put(
            f"/datastores/{name}", json=datastore(name, f"http://{host}:{listener.port}")
        )
        assert r.status_code in (200, 201), r.text
        path = f"azureml://datastores/{name}/paths/inputs/"
        body = {"name": unique("d"), "type": "uri_folder", "path": path}
        r = client.post("/data", json=body)  # opens (and keeps) the datastore's clients
        assert r.status_code == 400, r.text

        world.resolve(host, REFUSED_HOST)
        r = client.post("/data", json=body)
        _assert_refused(r, REFUSED_HOST)
        r = client.put(f"/datastores/{name}/files/inputs/a.csv", content=b"x\n")
        _assert_refused(r, REFUSED_HOST)
    assert listener.requests == [], [
        (m, p, h.get("Authorization")) for m, p, h in listener.requests
    ]


def test_names_that_resolve_to_allowed_addresses_still_work(world: World) -> None:
    """The connect-time check lets through what the policy allows (here, 127.0.0.1)."""
    storage = Listener("127.0.0.1", answer=404).start()
    host = f"{unique('allowed')}.test"
    world.resolve(host, "127.0.0.1")
    try:
        with world.server.client() as client:
            name = unique("allowed").replace("-", "_")
            r = client.put(
                f"/datastores/{name}", json=_blob_datastore(name, f"http://{host}:{storage.port}")
            )
            assert r.status_code in (200, 201), r.text
            path = f"azureml://datastores/{name}/paths/inputs/"
            r = client.post("/data", json={"name": unique("d"), "type": "uri_folder", "path": path})
            assert r.status_code == 400, r.text
            assert "does not exist" in r.json()["error"]["message"] or "cannot be read" in r.text
        assert storage.requests
    finally:
        storage.stop()
        world.resolve(host, None)


@pytest.mark.parametrize("kind", ["azure_blob", "azure_data_lake_gen2", "s3"])
def test_every_storage_client_connects_through_the_policy(kind: str) -> None:
    """Each remote backend's clients (reads and writes) check the addresses they connect to:
    opened with the default policy, which allows no loopback address, none reaches Azurite or
    moto on 127.0.0.1."""
    from sluiceway.errors import AddressNotAllowedError
    from sluiceway.services.datastores import storage_call
    from sluiceway.storage.datastores import open_backend

    if kind == "s3":
        config = dict(svc.s3_datastore_yaml("x", svc.make_bucket("refused")))
    else:
        maker = svc.blob_datastore_yaml if kind == "azure_blob" else svc.adls_datastore_yaml
        config = dict(maker("x", svc.make_container("refused")))
    credentials = config.pop("credentials")
    config.pop("type")
    config.pop("name")
    backend = open_backend(kind, config, credentials)
    for backend_of in (lambda: backend, lambda: backend.probing(2.0)):
        checked = backend_of()
        with pytest.raises(AddressNotAllowedError, match=r"127\.0\.0\.1"):
            storage_call("x", "x", lambda b=checked: b.fs.exists(b.full_path("a.csv")))
        with pytest.raises(AddressNotAllowedError, match=r"127\.0\.0\.1"):
            storage_call("x", "x", lambda b=checked: b.write_file("a.csv", [b"1"], overwrite=True))


# -- a caller cannot tie up the server --------------------------------------------------------


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)  # the kernel completes the handshakes; nothing ever reads
    yield int(sock.getsockname()[1])
    sock.close()


CONCURRENT = 45


def test_unreachable_storage_cannot_hold_the_server(tmp_path: Path, blackhole: int) -> None:
    emulator = f"http://127.0.0.1:{blackhole}"
    env = {
        "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "127.0.0.1",
        "SLUICEWAY_BLOB_EMULATOR_ENDPOINTS": emulator,
        "SLUICEWAY_STORAGE_CHECK_TIMEOUT_SECONDS": "2",
    }
    server = start_server(tmp_path / "home", extra_env=env)
    try:
        with server.client() as client:
            endpoint = unique("ep")
            create_script_deployment(client, tmp_path, endpoint, "blue")
        uri = f"{emulator}/devstoreaccount1/data/inputs/"
        body = invoke_body({"data": {"JobInputType": "UriFolder", "Uri": uri}})
        answers: list[tuple[int, float, str]] = []

        def invoke() -> None:
            start = time.monotonic()
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=300) as c:
                r = c.post(f"/endpoints/{endpoint}/jobs", json=body)
            answers.append((r.status_code, time.monotonic() - start, r.text))

        threads = [threading.Thread(target=invoke) for _ in range(CONCURRENT)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # every invoke is waiting on the store by now
        with server.client() as client:
            start = time.monotonic()
            assert client.get("/whoami", timeout=30).status_code == 200
            assert time.monotonic() - start < 5, time.monotonic() - start
        for thread in threads:
            thread.join(300)
        assert len(answers) == CONCURRENT
        for status, seconds, text in answers:
            assert status == 400, text
            assert uri in text or "data" in text, text
            assert seconds < 60, (seconds, text)
    finally:
        stop_server(server)


def test_an_instance_count_beyond_the_cap_is_refused(world: World, tmp_path: Path) -> None:
    with world.server.client() as client:
        endpoint = unique("ep")
        create_script_deployment(client, tmp_path, endpoint, "blue")
        upload = tmp_path / "in"
        write_numbered_files(upload, 2)
        uri = upload_folder(client, upload, unique("in"))
        body = invoke_body(
            {"data": {"JobInputType": "UriFolder", "Uri": uri}}, Compute={"InstanceCount": 100000}
        )
        r = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["target"] == "properties.Compute.InstanceCount", error
    assert "100000" in error["message"] and "SLUICEWAY_MAX_WORKERS_PER_JOB" in error["message"]


def test_a_deployment_beyond_the_cap_is_refused_and_not_created(
    world: World, tmp_path: Path
) -> None:
    with world.server.client() as client:
        endpoint = unique("ep")
        create_script_deployment(client, tmp_path, endpoint, "blue")
        shown = client.get(f"/batch-endpoints/{endpoint}/deployments/blue").json()
        body = {key: shown[key] for key in ("endpoint_name", "type", "model")}
        body.update(
            name="green",
            code_configuration=shown["code_configuration"],
            resources={"instance_count": 100000},
        )
        r = client.put(f"/batch-endpoints/{endpoint}/deployments/green", json=body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["target"] == "resources.instance_count", error
        assert "SLUICEWAY_MAX_WORKERS_PER_JOB" in error["message"], error
        assert client.get(f"/batch-endpoints/{endpoint}/deployments/green").status_code == 404


def _workers(process: psutil.Process) -> int:
    """Worker processes below the server (``python -m sluiceway.runtime.launch``)."""
    count = 0
    for child in process.children(recursive=True):
        try:
            if "sluiceway.runtime.launch" in child.cmdline():
                count += 1
        except psutil.Error:
            continue
    return count


def test_many_small_mini_batches_never_run_more_workers_than_the_cap(tmp_path: Path) -> None:
    env = {
        "SLUICEWAY_MAX_WORKERS_PER_JOB": "4",
        "SLUICEWAY_MAX_WORKERS": "4",
        "SLUICEWAY_MAX_CONCURRENT_JOBS": "2",
        "SLUICEWAY_SPARE_WORKERS": "0",
        "SLUICEWAY_WORKER_IDLE_SECONDS": "0",
    }
    server = start_server(tmp_path / "home", extra_env=env)
    try:
        with server.client() as client:
            endpoint = unique("ep")
            create_script_deployment(client, tmp_path, endpoint, "blue")
            upload = tmp_path / "in"
            write_numbered_files(upload, 200)
            uri = upload_folder(client, upload, unique("in"))
            body = invoke_body(
                {"data": {"JobInputType": "UriFolder", "Uri": uri}},
                MiniBatchSize=1,
                Compute={"InstanceCount": 4},
            )
            jobs = []
            for _ in range(2):  # two jobs at once, each asking for the per-job cap
                r = client.post(f"/endpoints/{endpoint}/jobs", json=body)
                assert r.status_code == 201, r.text
                jobs.append(r.json()["name"])
            process = psutil.Process(server.process.pid)
            most = 0
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                most = max(most, _workers(process))
                states = {client.get(f"/jobs/{j}").json()["status"] for j in jobs}
                if states <= {"Completed", "Failed", "Canceled"}:
                    break
                time.sleep(0.05)
            assert states == {"Completed"}, states
        assert 0 < most <= 4, most
    finally:
        stop_server(server)
