"""Environments: the time of a first build and of a cached one, and the first-result latency of
a job in a built environment against one in the server's environment.

``python -m benchmarks.environments [--runs N] [--online PACKAGE==VERSION]``

One server (its own scratch home, ``SLUICEWAY_WORKER_IDLE_SECONDS=0`` so that every job starts
its workers: the cold case, which is where an environment's interpreter differs). By default
builds are offline, from a wheel this script writes (no network); ``--online`` adds a package
from the index to the environment.

first build
    ``begin_create_or_update(...).result()`` of a deployment whose environment content is new:
    the request, the background ``uv venv`` + ``uv pip install``, and the polling until the
    deployment is ``Succeeded``.
cached build
    The same for another deployment with the same content: it finds the build done.
first result
    From just before the invoke ``POST`` until the job's first mini-batch has succeeded
    (``GET /jobs/{name}`` polled every 20 ms), one file per mini-batch, one worker, for a
    deployment in the built environment and for the same scoring script in the server's.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import signal
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import httpx

from benchmarks.sluiceway_server import _wait_for_server, logged_process, server_environment
from sluiceway import BatchDeployment, BatchEndpoint, CodeConfiguration, Input, MLClient, Model
from sluiceway.constants import AssetTypes

SCRIPT = """\
import {module}

def init():
    pass

def run(mini_batch):
    return [{value} for _ in mini_batch]
"""


def write_wheel(folder: Path, name: str) -> Path:
    """A pure-Python wheel of one module (no build backend, no network)."""
    dist = f"{name}-0.1.dist-info"
    files = {
        f"{name}.py": "VALUE = 'scored'\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def deploy(
    client: MLClient, root: Path, endpoint: str, name: str, module: str, environment: object
) -> float:
    code = root / f"code-{name}"
    code.mkdir()
    value = f"{module}.VALUE" if environment is not None else "'scored'"
    (code / "score.py").write_text(SCRIPT.format(module=module, value=value))
    started = time.perf_counter()
    deployment = client.batch_deployments.begin_create_or_update(
        BatchDeployment(
            name=name,
            endpoint_name=endpoint,
            model=Model(name=f"{endpoint}-model", path=root / "model"),
            code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
            environment=environment,  # type: ignore[arg-type]
            mini_batch_size=1,
            max_concurrency_per_instance=1,
        )
    ).result(timeout=1800)
    took = time.perf_counter() - started
    if deployment.provisioning_state != "Succeeded":
        raise SystemExit(f"deployment {name}: {deployment.environment_build}")
    return took


def first_result(
    client: MLClient, http: httpx.Client, endpoint: str, name: str, data: Path
) -> float:
    started = time.perf_counter()
    job = client.batch_endpoints.invoke(
        endpoint_name=endpoint,
        deployment_name=name,
        input=Input(type=AssetTypes.URI_FOLDER, path=str(data)),
    )
    while True:
        body = http.get(f"/jobs/{job.name}").json()
        progress = body.get("progress") or {}
        if progress.get("mini_batches_succeeded", 0) > 0:
            return time.perf_counter() - started
        if body["status"] in ("Failed", "Canceled"):
            raise SystemExit(f"job {job.name} {body['status']}: {body.get('error')}")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="jobs per contender")
    parser.add_argument("--online", help="a requirement from the index to add, e.g. six==1.16.0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-env-") as scratch:
        root = Path(scratch)
        module = f"bench_env_{uuid.uuid4().hex[:8]}"  # a new content: a first build
        wheel = write_wheel(root, module)
        (root / "model").mkdir()
        (root / "model" / "w.txt").write_text("1\n")
        data = root / "data"
        data.mkdir()
        for i in range(2):
            (data / f"{i}.txt").write_text(f"{i}\n")
        requirements = [f"./{wheel.name}"] + ([args.online] if args.online else [])
        (root / "requirements.txt").write_text("\n".join(requirements) + "\n")
        env = {
            "SLUICEWAY_WORKER_IDLE_SECONDS": "0",
            "SLUICEWAY_ENVIRONMENT_BUILD_OFFLINE": "false" if args.online else "true",
        }
        home = root / "home"
        home.mkdir()
        argv = [sys.executable, "-m", "sluiceway.server", "--home", str(home), "--port", "0"]
        log = root / "server.log"
        with logged_process(
            argv, log, signal.SIGTERM, env={**server_environment(root), **env}
        ) as process:
            server = _wait_for_server(home, process, log, 120.0)
            with (
                MLClient(endpoint=server.url, token=server.token) as client,
                server.client() as http,
            ):
                client.jobs._out = lambda line: None
                endpoint = "bench-env"
                client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
                environment = {"requirements": str(root / "requirements.txt")}
                first = deploy(client, root, endpoint, "built", module, environment)
                cached = deploy(client, root, endpoint, "cached", module, environment)
                # The server's environment lacks the module: a copy of it beside the script.
                deploy(client, root, endpoint, "server", "json", None)
                latency: dict[str, list[float]] = {"built": [], "server": []}
                for _ in range(args.runs):
                    for name in latency:
                        latency[name].append(first_result(client, http, endpoint, name, data))
        print("| measure | seconds |")
        print("|---|---|")
        print(f"| first build (deployment create until Succeeded) | {first:.2f} |")
        print(f"| cached build (same content, another deployment) | {cached:.2f} |")
        for name, label in (("built", "built environment"), ("server", "server's environment")):
            values = latency[name]
            print(
                f"| first result, {label} (median of {len(values)}; min-max) | "
                f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |"
            )


if __name__ == "__main__":
    main()
