"""The Sluiceway contender: a real server with a fresh home, driven over REST.

:func:`running_server` starts ``python -m sluiceway.server`` on port 0 with a new home and
stops it afterwards (like the integration tests' fixture). :class:`Bench` registers the data
folder as a ``local`` datastore and the model as an MLflow model, creates an endpoint and a
deployment of it with ``max_concurrency_per_instance`` = the worker count, invokes it and polls
the job until it ends.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DATASTORE = "bench"
MODEL = "heart-gb"
ENDPOINT = "bench"
DEPLOYMENT = "gradient-boosting"
OUTPUT = "score"
ROWS_FILE = "predictions.csv"
TERMINAL = frozenset({"Completed", "Failed", "Canceled"})


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    home: Path
    process: subprocess.Popen[bytes]

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
        )


def server_environment(data_root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``SLUICEWAY_*`` setting but the one that lets
    local datastores lie in ``data_root``: the server runs on its defaults, with nothing of a
    user's own configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEWAY_")}
    env["SLUICEWAY_LOCAL_DATASTORE_ROOTS"] = str(data_root)
    return {**env, **(extra or {})}


@contextmanager
def running_server(
    home: Path,
    log: Path,
    data_root: Path,
    start_timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """A server on a free port with ``home`` (created, must be new) as its workspace home, that
    accepts local datastores in ``data_root``; ``env``: more environment variables."""
    home.mkdir(parents=True)
    argv = [sys.executable, "-m", "sluiceway.server", "--home", str(home), "--port", "0"]
    environment = server_environment(data_root, env)
    with logged_process(argv, log, signal.SIGTERM, env=environment) as process:
        yield _wait_for_server(home, process, log, start_timeout)


@contextmanager
def logged_process(
    argv: list[str],
    log: Path,
    stop: signal.Signals,
    *,
    env: dict[str, str] | None = None,
    wait: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running with its output appended to ``log``; sent ``stop`` when the block ends,
    and killed if it has not exited ``wait`` seconds later."""
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(stop)
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_for_server(
    home: Path, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> Server:
    deadline = time.monotonic() + timeout
    server_file = home / "server.json"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {log.read_text()}")
        if server_file.exists():
            try:
                url = json.loads(server_file.read_text())["url"]
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    token = (home / "token").read_text().strip()
                    return Server(url, token, home, process)
            except (ValueError, KeyError, OSError, httpx.HTTPError):
                pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not come up in {timeout:.0f} s: {log.read_text()}")


@dataclass(frozen=True)
class JobRun:
    """A job from invoke to its end, as the client saw it."""

    name: str
    seconds: float  # from just before the invoke POST to the job's end (see Bench.wait)
    job: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.job["status"])

    @property
    def progress(self) -> dict[str, Any]:
        return dict(self.job.get("progress") or {})


class Bench:
    """The benchmark's resources on one server.

    Args:
        client: a client of the server.
        data_root: the folder registered as the ``bench`` datastore; inputs, the model and the
            outputs are under it.
    """

    def __init__(self, client: httpx.Client, data_root: Path) -> None:
        self.client = client
        self.data_root = data_root

    def uri(self, path: Path) -> str:
        """The ``azureml://`` URI of a folder under the data root."""
        relative = path.relative_to(self.data_root).as_posix()
        return f"azureml://datastores/{DATASTORE}/paths/{relative}/"

    def deploy(
        self,
        model_dir: Path,
        *,
        workers: int,
        mini_batch_size: int,
        compute: str | None = None,
    ) -> dict[str, Any]:
        """Register the datastore and model, create the endpoint and its deployment: on this
        server's workers (one instance of ``workers``), or on the registered Ray ``compute``
        (``workers`` instances of one actor each).

        Returns:
            The deployment's settings, as the server reports them.
        """
        datastore = {"name": DATASTORE, "type": "local", "root": str(self.data_root)}
        _check(self.client.put(f"/datastores/{DATASTORE}", json=datastore))
        model = {"name": MODEL, "type": "mlflow_model", "path": self.uri(model_dir)}
        _check(self.client.post("/models", json=model))
        _check(self.client.put(f"/batch-endpoints/{ENDPOINT}", json={"name": ENDPOINT}))
        deployment = {
            "name": DEPLOYMENT,
            "endpoint_name": ENDPOINT,
            "type": "model",
            "model": f"azureml:{MODEL}:1",
            "resources": {"instance_count": 1 if compute is None else workers},
            "settings": {
                "max_concurrency_per_instance": workers if compute is None else 1,
                "mini_batch_size": mini_batch_size,
                "output_action": "append_row",
                "output_file_name": ROWS_FILE,
                # Long enough for a mini-batch of large files on a busy machine; a retry would
                # show in the report's notes.
                "retry_settings": {"max_retries": 3, "timeout": 3600},
                "error_threshold": 0,
            },
        }
        if compute is not None:
            deployment["compute"] = f"azureml:{compute}"
        path = f"/batch-endpoints/{ENDPOINT}/deployments/{DEPLOYMENT}"
        created: dict[str, Any] = _check(self.client.put(path, json=deployment)).json()
        return created

    def invoke_body(
        self, input_dir: Path, output_dir: Path | None, **properties: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "InputData": {"heart": {"JobInputType": "UriFolder", "Uri": self.uri(input_dir)}},
            **properties,
        }
        if output_dir is not None:
            body["OutputData"] = {
                OUTPUT: {"JobOutputType": "UriFolder", "Uri": self.uri(output_dir)}
            }
        return {"properties": body}

    def invoke(self, input_dir: Path, output_dir: Path | None, **properties: Any) -> str:
        """Invoke the endpoint over ``input_dir``; the job's name."""
        response = self.client.post(
            f"/endpoints/{ENDPOINT}/jobs",
            json=self.invoke_body(input_dir, output_dir, **properties),
        )
        return str(_check(response).json()["name"])

    def job(self, name: str) -> dict[str, Any]:
        value: dict[str, Any] = _check(self.client.get(f"/jobs/{name}")).json()
        return value

    def wait(
        self, name: str, started: float, interval: float, timeout: float, wall: float | None = None
    ) -> JobRun:
        """Poll job ``name`` every ``interval`` seconds until it ends.

        Args:
            started: ``time.perf_counter()`` just before the invoke.
            timeout: seconds from ``started`` after which waiting fails.
            wall: ``time.time()`` just before the invoke: the job's time is then until the
                ``end_time`` the server recorded (same machine, same clock), so that it does
                not depend on how often the job is polled. Without it, or without an end
                time, until the poll that saw the job end.
        """
        while True:
            job = self.job(name)
            now = time.perf_counter()
            if job["status"] in TERMINAL:
                ended = _end_time(job)
                if wall is not None and ended is not None:
                    return JobRun(name, ended - wall, job)
                return JobRun(name, now - started, job)
            if now - started > timeout:
                raise TimeoutError(f"job {name} did not end in {timeout:.0f} s: {job['status']}")
            time.sleep(interval)

    def run(
        self,
        input_dir: Path,
        output_dir: Path | None,
        *,
        interval: float,
        timeout: float,
        **properties: Any,
    ) -> JobRun:
        """Invoke over ``input_dir`` (with more invoke ``properties``) and wait for the job's
        end."""
        wall, started = time.time(), time.perf_counter()
        name = self.invoke(input_dir, output_dir, **properties)
        return self.wait(name, started, interval, timeout, wall=wall)


def _end_time(job: dict[str, Any]) -> float | None:
    """The job's ``end_time`` (as ``time.time()`` counts), if the server gives one."""
    value = job.get("end_time") or (job.get("properties") or {}).get("end_time")
    if not isinstance(value, str):
        return None
    try:
        ended = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ended.tzinfo is None:
        ended = ended.replace(tzinfo=datetime.UTC)
    return ended.timestamp()


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} "
            f"{response.text}"
        )
    return response


@contextmanager
def ray_cluster(folder: Path) -> Iterator[dict[str, str]]:
    """A two-node Ray cluster on this machine (``scripts/ray.sh``: a head and one more node,
    one CPU each), stopped at the end; the environment variables that reach it."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "ray.sh"
    done = subprocess.run(
        ["bash", str(script), "start", str(folder)], capture_output=True, text=True, check=False
    )
    try:
        if done.returncode != 0:
            raise RuntimeError(f"the Ray cluster did not start: {done.stderr}")
        yield dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], check=False)


@contextmanager
def profiled(pid: int, output: Path, log: Path) -> Iterator[None]:
    """Record a py-spy profile (speedscope JSON) of ``pid`` and its subprocesses while inside."""
    py_spy = Path(sys.executable).with_name("py-spy")
    argv = [str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--rate", "100"]
    argv += ["--format", "speedscope", "--output", str(output)]
    # py-spy writes the profile on SIGINT, which takes a while after a long run.
    with logged_process(argv, log, signal.SIGINT, wait=120.0):
        yield


__all__ = [
    "DEPLOYMENT",
    "ENDPOINT",
    "OUTPUT",
    "ROWS_FILE",
    "Bench",
    "JobRun",
    "Server",
    "logged_process",
    "profiled",
    "ray_cluster",
    "running_server",
]
