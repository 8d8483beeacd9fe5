"""Peak memory of a job over CSV files in S3: the server's and each worker's.

Starts moto's S3 server and a Sluiceway server (both on loopback, in a temporary folder),
writes ``--files`` CSV files of ``--file-mb`` MB each (heart-disease rows) to a bucket,
registers the bucket as an ``s3`` datastore and runs the bundled MLflow heart classifier over
it. Every ``--interval`` seconds it samples, with psutil, the resident set size (RSS) of the
server process and of each of its worker processes, and reports each one's peak.

Acceptance: every peak stays under ``--limit-mb`` (500 MB), whatever the size of the input,
because remote inputs stream through a bounded on-disk cache and workers read one mini-batch
at a time::

    .venv/bin/python benchmarks/storage_memory.py                      # 100 x 10 MB = 1 GB
    .venv/bin/python benchmarks/storage_memory.py --files 8 --file-mb 1   # a quick check

Exit status 0 when every peak is under the limit and the job completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from sluiceway.examples.heart import generate_heart_frame, train_heart_model

KEY = SECRET = "benchmark"
MB = 1 << 20


@dataclass
class Peaks:
    server: int = 0
    workers: dict[int, int] = field(default_factory=dict)  # pid -> peak RSS
    samples: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up in {timeout} s")


@contextmanager
def process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def csv_bodies(file_mb: float, distinct: int) -> list[bytes]:
    """``distinct`` CSV files of about ``file_mb`` MB each (different rows in each)."""
    sample = generate_heart_frame(2000, seed=0, labeled=False).to_csv(index=False)
    rows = max(int(file_mb * MB / (len(sample.encode()) / 2000)), 1)
    bodies = []
    for seed in range(distinct):
        buffer = io.StringIO()
        generate_heart_frame(rows, seed=seed + 1, labeled=False).to_csv(buffer, index=False)
        bodies.append(buffer.getvalue().encode())
    return bodies


def sample(server: psutil.Process, peaks: Peaks, stop: threading.Event, interval: float) -> None:
    while not stop.is_set():
        try:
            peaks.server = max(peaks.server, server.memory_info().rss)
            for child in server.children(recursive=True):
                try:
                    if "resource_tracker" in " ".join(child.cmdline()):
                        continue
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                peaks.workers[child.pid] = max(peaks.workers.get(child.pid, 0), rss)
            peaks.samples += 1
        except psutil.Error:
            return
        stop.wait(interval)


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="sluiceway-memory-"))
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SLUICEWAY_SCHEDULER_POLL_SECONDS": "0.2",
    }
    try:
        s3_port = free_port()
        moto = [str(venv_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)]
        with process(moto, work / "moto.log", env):
            s3_url = f"http://127.0.0.1:{s3_port}"
            wait_until(lambda: httpx.get(s3_url, timeout=2).status_code < 500, 30, "moto")
            return measure(args, work, env, s3_url, venv_bin)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def measure(
    args: argparse.Namespace, work: Path, env: dict[str, str], s3_url: str, venv_bin: Path
) -> int:
    import s3fs

    fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, endpoint_url=s3_url, skip_instance_cache=True)
    fs.mkdir("benchmark-input")
    started = time.monotonic()
    bodies = csv_bodies(args.file_mb, min(args.files, 10))
    total = 0
    for i in range(args.files):
        body = bodies[i % len(bodies)]
        fs.pipe(f"benchmark-input/csv/part-{i:04d}.csv", body)
        total += len(body)
    took = time.monotonic() - started
    print(f"input: {args.files} CSV files, {total / MB:.0f} MB in S3 ({took:.0f} s)")
    model = train_heart_model(work / "model")

    home = work / "home"
    server_env = {
        **env,
        "SLUICEWAY_STAGING_CACHE_BYTES": str(int(args.cache_mb * MB)),
        "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "127.0.0.1",  # the S3 datastore is moto on loopback
    }
    argv = [sys.executable, "-m", "sluiceway.server", "--home", str(home), "--port", "0"]
    home.mkdir()
    with process(argv, work / "server.log", server_env) as server:
        wait_until(lambda: (home / "server.json").exists(), 60, "the server")
        url = json.loads((home / "server.json").read_text())["url"]
        wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, 60, "the server")
        token = (home / "token").read_text().strip()
        client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        job = submit(client, args, s3_url, model)
        peaks = Peaks()
        stop = threading.Event()
        sampler = threading.Thread(
            target=sample, args=(psutil.Process(server.pid), peaks, stop, args.interval)
        )
        sampler.start()
        started = time.monotonic()
        try:
            status = wait(client, job)
        finally:
            stop.set()
            sampler.join()
        elapsed = time.monotonic() - started
    return report(args, status, peaks, elapsed, total)


def submit(client: httpx.Client, args: argparse.Namespace, s3_url: str, model: Path) -> str:
    store = {
        "name": "bench_s3",
        "type": "s3",
        "bucket": "benchmark-input",
        "endpoint_url": s3_url,
        "credentials": {"access_key_id": KEY, "secret_access_key": SECRET},
    }
    client.put("/datastores/bench_s3", json=store).raise_for_status()
    for path in sorted(p for p in model.rglob("*") if p.is_file()):
        relative = path.relative_to(model).as_posix()
        client.put(f"/datastores/workspaceblobstore/files/models/heart/{relative}",
                   content=path.read_bytes()).raise_for_status()  # fmt: skip
    client.post(
        "/models",
        json={
            "name": "heart",
            "type": "mlflow_model",
            "path": "azureml://datastores/workspaceblobstore/paths/models/heart/",
        },
    ).raise_for_status()
    client.put("/batch-endpoints/memory", json={"name": "memory"}).raise_for_status()
    deployment = {
        "name": "mlflow",
        "endpoint_name": "memory",
        "type": "model",
        "model": "azureml:heart:1",
        "resources": {"instance_count": args.instances},
        "settings": {"mini_batch_size": args.mini_batch_size, "retry_settings": {"timeout": 600}},
    }
    client.put("/batch-endpoints/memory/deployments/mlflow", json=deployment).raise_for_status()
    body = {
        "properties": {
            "InputData": {
                "csv": {
                    "JobInputType": "UriFolder",
                    "Uri": "azureml://datastores/bench_s3/paths/csv/",
                }
            }
        }
    }
    response = client.post("/endpoints/memory/jobs", json=body)
    response.raise_for_status()
    return str(response.json()["name"])


def wait(client: httpx.Client, job: str) -> dict[str, Any]:
    last = ""
    while True:
        value: dict[str, Any] = client.get(f"/jobs/{job}").raise_for_status().json()
        progress = value.get("progress") or {}
        line = (
            f"{value['status']}: {progress.get('mini_batches_succeeded', 0)}"
            f"/{progress.get('mini_batches_total', 0)} mini-batches"
        )
        if line != last:
            print(line, flush=True)
            last = line
        if value["status"] in ("Completed", "Failed", "Canceled"):
            return value
        time.sleep(1)


def report(
    args: argparse.Namespace, job: dict[str, Any], peaks: Peaks, elapsed: float, total: int
) -> int:
    limit = args.limit_mb * MB
    progress = job.get("progress") or {}
    print(
        f"job {job['status']} in {elapsed:.0f} s: {progress.get('items_succeeded')} rows from "
        f"{total / MB:.0f} MB; {peaks.samples} samples every {args.interval} s"
    )
    if job.get("error"):
        print(f"error: {job['error'].get('message')}")
    print(f"server peak RSS: {peaks.server / MB:.0f} MB")
    for pid, rss in sorted(peaks.workers.items()):
        print(f"worker {pid} peak RSS: {rss / MB:.0f} MB")
    over = peaks.server > limit or any(rss > limit for rss in peaks.workers.values())
    ok = job["status"] == "Completed" and not over and bool(peaks.workers)
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: job {job['status']}, peaks against the {args.limit_mb} MB limit")
    return 0 if ok else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--file-mb", type=float, default=10.0)
    parser.add_argument("--mini-batch-size", type=int, default=10)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--cache-mb", type=float, default=400.0, help="the staging cache's bound")
    parser.add_argument("--limit-mb", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(parse()))
