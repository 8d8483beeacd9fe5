"""The ``servers`` workload: invoke throughput of 1 and 2 API processes on one PostgreSQL.

For each API-process count, a new database and a new S3 bucket (the default datastore) are
made, the API processes (``--role api``: no scheduler, so every job stays queued and only
accepting is measured) started on ephemeral ports with one key file, and one custom-model
deployment registered. Then, at each offered rate, invoke ``POST`` s are sent **open loop**:
request ``i`` is due at ``start + i / rate``, whatever the answers before it; ``--clients``
threads with keep-alive connections send them round-robin to the API processes. A request's
latency runs from when it was due (so a server that falls behind shows its queue), not from when
a thread got to send it. Afterwards every accepted job must be found by ``GET /jobs/{name}``;
one not found, or a ``POST`` not answered 201, is counted.

    python -m benchmarks.servers --database-url postgresql+psycopg://postgres@host:5432/postgres \\
        --s3-url http://127.0.0.1:5555 --rates 25,50,100,200 --seconds 10 --apis 1,2

Before the open-loop rates, ``--one-client N`` POSTs (default 50) are sent by one client, each
after the answer to the one before (closed loop): the latency of one invocation on an otherwise
idle server, which a busy machine disturbs less than the open-loop figures.

``--profile DIR`` records a py-spy profile (collapsed stacks) of the first API process for the
whole run of each API-process count.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

S3_KEY = S3_SECRET = "testing"
SCRIPT = "def init():\n    pass\n\ndef run(mini_batch):\n    return list(mini_batch)\n"


@dataclass
class Rate:
    apis: int
    offered: float
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # from when each POST was due
    errors: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    lost: int = 0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def database(admin_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def bucket(s3_url: str) -> str:
    import s3fs

    fs = s3fs.S3FileSystem(key=S3_KEY, secret=S3_SECRET, endpoint_url=s3_url)
    name = f"bench-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    return name


@contextmanager
def api_processes(
    count: int, env: dict[str, str], work: Path
) -> Iterator[list[tuple[str, str, int]]]:
    """``count`` API processes; their (url, token, pid)."""
    processes = []
    for i in range(count):
        home = work / f"api-{i}"
        home.mkdir(parents=True)
        log = open(home / "server.log", "wb")
        command = [sys.executable, "-m", "sluiceway.server", "--home", str(home), "--port", "0"]
        processes.append(
            (
                home,
                subprocess.Popen(
                    [*command, "--role", "api"], env=env, stdout=log, stderr=subprocess.STDOUT
                ),
            )
        )
    found = []
    try:
        for home, process in processes:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError((home / "server.log").read_text())
                try:
                    url = json.loads((home / "server.json").read_text())["url"]
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except (OSError, ValueError, KeyError, httpx.HTTPError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("an API process did not start")
                time.sleep(0.1)
            found.append((url, (home / "token").read_text().strip(), process.pid))
        yield found
    finally:
        for _, process in processes:
            process.terminate()
        for _, process in processes:
            process.wait(30)


def deploy(url: str, token: str) -> dict[str, object]:
    """A custom-model deployment, and the invoke body of a one-file input."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        ds = "azureml://datastores/workspaceblobstore/paths"
        for path, content in (
            ("bench/model/weights.txt", b"1\n"),
            ("bench/code/score.py", SCRIPT.encode()),
            ("bench/data/one.txt", b"1\n"),
        ):
            client.put(
                f"/datastores/workspaceblobstore/files/{path}", content=content
            ).raise_for_status()
        client.post(
            "/models", json={"name": "m", "type": "custom_model", "path": f"{ds}/bench/model/"}
        ).raise_for_status()
        client.put("/batch-endpoints/bench", json={"name": "bench"}).raise_for_status()
        deployed = client.put(
            "/batch-endpoints/bench/deployments/echo",
            json={
                "name": "echo",
                "endpoint_name": "bench",
                "type": "model",
                "model": "azureml:m:1",
                "code_configuration": {"code": f"{ds}/bench/code/", "scoring_script": "score.py"},
            },
        )
        if deployed.status_code != 201:
            raise RuntimeError(deployed.text)
        client.patch(
            "/batch-endpoints/bench", json={"defaults": {"deployment_name": "echo"}}
        ).raise_for_status()
    return {
        "properties": {
            "InputData": {"data": {"JobInputType": "UriFolder", "Uri": f"{ds}/bench/data/"}}
        }
    }


def closed_loop(url: str, token: str, body: dict[str, object], count: int) -> Rate:
    """``count`` POSTs from one client, one after another (after five not counted)."""
    result = Rate(1, 0.0, sent=count)
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for _ in range(5):
            client.post("/endpoints/bench/jobs", json=body).raise_for_status()
        start = time.perf_counter()
        for _ in range(count):
            sent = time.perf_counter()
            response = client.post("/endpoints/bench/jobs", json=body)
            if response.status_code == 201:
                result.latencies.append(time.perf_counter() - sent)
                result.names.append(str(response.json()["name"]))
            else:
                result.errors.append(f"{response.status_code}")
        result.elapsed = time.perf_counter() - start
        result.lost = len(result.errors)
        result.lost += sum(1 for n in result.names if client.get(f"/jobs/{n}").status_code != 200)
    return result


def open_loop(
    urls: list[str], token: str, body: dict[str, object], rate: float, seconds: float, clients: int
) -> Rate:
    result = Rate(len(urls), rate)
    total = int(rate * seconds)
    result.sent = total
    lock = threading.Lock()
    counter = iter(range(total))
    ends: list[float] = []
    start = 0.0

    def set_start() -> None:  # once every client is connected: its set-up is not timed
        nonlocal start
        start = time.perf_counter() + 0.2

    ready = threading.Barrier(clients, action=set_start)

    def client_thread() -> None:
        sessions = [
            httpx.Client(base_url=u, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            for u in urls
        ]
        for s in sessions:
            s.get("/healthz")
        ready.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                response = sessions[i % len(sessions)].post("/endpoints/bench/jobs", json=body)
            except httpx.HTTPError as exc:
                with lock:
                    result.errors.append(type(exc).__name__)
                continue
            answered = time.perf_counter()
            with lock:
                ends.append(answered)
                if response.status_code == 201:
                    result.latencies.append(answered - due)
                    result.names.append(str(response.json()["name"]))
                else:
                    result.errors.append(f"{response.status_code}")
        for s in sessions:
            s.close()

    threads = [threading.Thread(target=client_thread) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed = max(ends) - start if ends else float("nan")
    with httpx.Client(
        base_url=urls[-1], headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        result.lost = sum(1 for n in result.names if client.get(f"/jobs/{n}").status_code != 200)
    result.lost += len(result.errors)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    parser.add_argument("--database-url", default=os.environ.get("SLUICEWAY_TEST_POSTGRES_URL"))
    parser.add_argument("--s3-url", default=os.environ.get("SLUICEWAY_TEST_S3_URL"))
    parser.add_argument("--rates", default="25,50,100,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--apis", default="1,2")
    parser.add_argument("--one-client", type=int, default=50)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    if not args.database_url or not args.s3_url:
        parser.error("give --database-url (an admin URL of PostgreSQL) and --s3-url")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        key = work / "workspace.key"
        key.write_text(secrets.token_hex(32))
        for count in [int(n) for n in args.apis.split(",")]:
            with database(args.database_url) as url:
                default = {
                    "type": "s3",
                    "bucket": bucket(args.s3_url),
                    "endpoint_url": args.s3_url,
                    "credentials": {"access_key_id": S3_KEY, "secret_access_key": S3_SECRET},
                }
                env = {
                    **{k: v for k, v in os.environ.items() if not k.startswith("SLUICEWAY_")},
                    "SLUICEWAY_DATABASE_URL": url,
                    "SLUICEWAY_SECRET_KEY_FILE": str(key),
                    "SLUICEWAY_DEFAULT_DATASTORE": json.dumps(default),
                    "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "127.0.0.1",
                    "SLUICEWAY_SPARE_WORKERS": "0",
                    "SLUICEWAY_LOG_LEVEL": "WARNING",
                }
                with api_processes(count, env, work / f"apis-{count}") as apis:
                    urls = [u for u, _, _ in apis]
                    token = apis[0][1]
                    body = deploy(urls[0], token)
                    profiler = None
                    if args.profile is not None:
                        args.profile.mkdir(parents=True, exist_ok=True)
                        profiler = subprocess.Popen(
                            [
                                str(Path(sys.executable).with_name("py-spy")),
                                "record",
                                "--format",
                                "raw",
                                "-r",
                                "50",
                                "-o",
                                str(args.profile / f"servers-{count}api.txt"),
                                "-p",
                                str(apis[0][2]),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    for url in urls:  # each process's first requests are not measured
                        closed_loop(url, token, body, 0)
                    if args.one_client and count == 1:
                        result = closed_loop(urls[0], token, body, args.one_client)
                        rows.append(result)
                        print_row(result, flush=True)
                    for rate in [float(r) for r in args.rates.split(",")]:
                        result = open_loop(urls, token, body, rate, args.seconds, args.clients)
                        rows.append(result)
                        print_row(result, flush=True)
                    if profiler is not None:
                        profiler.send_signal(2)
                        profiler.wait(30)
    return 1 if any(r.lost for r in rows) else 0


def print_row(r: Rate, *, flush: bool = False) -> None:
    accepted = len(r.latencies)
    offered = f"{r.offered:g}" if r.offered else "one client, closed loop"
    print(
        f"| servers | {r.apis} API | {offered} | {r.sent} | {accepted} | "
        f"{accepted / r.elapsed:.1f} | {1000 * r.percentile(0.5):.0f} ms | "
        f"{1000 * r.percentile(0.99):.0f} ms | {r.lost} |",
        flush=flush,
    )


if __name__ == "__main__":
    raise SystemExit(main())
