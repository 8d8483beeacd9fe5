"""``sluice quickstart``: the bundled heart-disease example, end to end, on the embedded default.

It starts a server for the workspace home if none is running (it keeps running afterwards, so
``sluice job show`` and the API work on what the quickstart made), writes the example (a
synthetic UCI heart data set, an MLflow classifier trained on it, and Azure-style YAML),
registers the model and the data, creates the endpoint and its deployment, invokes it, follows
the job, downloads the predictions and prints their first rows. Running it again reuses what is
there and runs a new job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from sluiceway.errors import ServerUnavailableError
from sluiceway.home import WorkspaceHome, default_home

if TYPE_CHECKING:
    from sluiceway.entities import Data, Model
    from sluiceway.sdk import MLClient

SERVER_START_SECONDS = 60.0


def run(console: Console, home: str | Path | None = None) -> int:
    """Run the example; returns the process exit code."""
    from sluiceway import Input, MLClient, load_batch_deployment, load_batch_endpoint
    from sluiceway.examples import heart

    workspace = WorkspaceHome(Path(home).expanduser().resolve() if home else default_home())
    url = ensure_server(workspace, console)
    token = workspace.read_token()
    client = MLClient(endpoint=url, token=token)

    example_dir = workspace.root / "examples" / "heart-classifier-mlflow"
    with console.status("Writing the example (training the model the first time)..."):
        layout = heart.write_example(example_dir)
    console.print(f"Example files: [bold]{layout.root}[/]")

    model = _register_model(client, layout.model_dir, heart.MODEL_NAME)
    console.print(f"Model [bold]{model.name}[/] version {model.version} ({model.type})")
    data = _register_data(client, layout.data_asset_file)
    console.print(f"Data asset [bold]{data.name}[/] version {data.version}: {data.path}")

    endpoint = load_batch_endpoint(layout.endpoint_file)
    endpoint = client.batch_endpoints.begin_create_or_update(endpoint).result()
    deployment = load_batch_deployment(layout.deployment_file)
    deployment = client.batch_deployments.begin_create_or_update(deployment).result()
    endpoint_name = endpoint.name or heart.ENDPOINT_NAME
    endpoint = client.batch_endpoints.get(endpoint_name)
    console.print(
        f"Endpoint [bold]{endpoint.name}[/] -> deployment [bold]{deployment.name}[/]; "
        f"REST: POST {endpoint.scoring_uri}"
    )

    job = client.batch_endpoints.invoke(
        endpoint_name=endpoint_name,
        input=Input(type="uri_folder", path=f"azureml:{data.name}:{data.version}"),
    )
    console.print(f"Job [bold]{job.name}[/] queued; following it:")
    client.jobs.stream(job.name)
    job = client.jobs.get(job.name)
    if job.status != "Completed":
        console.print(f"[red]Job {job.name} ended {job.status}[/]")
        return 1

    target = workspace.root / "quickstart-output" / job.name
    client.jobs.download(job.name, download_path=target, output_name="score")
    predictions = target / "named-outputs" / "score" / "predictions.csv"
    _show_predictions(console, predictions)
    console.print(
        f"\nNext: [bold]sluice job show -n {job.name}[/], "
        f"[bold]sluice batch-endpoint list-jobs -n {endpoint.name}[/], "
        f"or the API docs at {url}/docs (token in {workspace.token})."
    )
    return 0


def _register_model(client: MLClient, model_dir: Path, name: str) -> Model:
    """The latest version when it holds this very folder's content; a new version otherwise."""
    from sluiceway import Model

    model = Model(
        name=name,
        path=model_dir,
        type="mlflow_model",
        description="Heart disease classifier (quickstart).",
    )
    return client.models.register_inline(model)


def _register_data(client: MLClient, data_file: Path) -> Data:
    from sluiceway import load_data

    return client.data.create_or_update(load_data(data_file))


def _show_predictions(console: Console, path: Path, rows: int = 5) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    console.print(f"\nPredictions: [bold]{path}[/] ({len(lines)} rows: row prediction file_name)")
    for line in lines[:rows]:
        console.print(f"  {line}", highlight=False, markup=False)


def ensure_server(workspace: WorkspaceHome, console: Console) -> str:
    """The URL of the home's running server; starts one in the background when there is none."""
    from sluiceway.server.run import running_server

    url = running_server(workspace)
    if url is not None:
        console.print(f"Using the server at {url}")
        return url
    workspace.root.mkdir(parents=True, exist_ok=True)
    log_path = workspace.root / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sluiceway.server",
                "--home",
                str(workspace.root),
                "--port",
                os.environ.get("SLUICEWAY_PORT", "0"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + SERVER_START_SECONDS
    with console.status("Starting a server..."):
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerUnavailableError(
                    f"The server exited with code {process.returncode}; see {log_path}."
                )
            url = running_server(workspace)
            if url is not None:
                console.print(
                    f"Started a server at {url} (pid {process.pid}, log {log_path}); it keeps "
                    f"running: stop it with [bold]sluice server stop --home {workspace.root}[/]"
                )
                return url
            time.sleep(0.2)
    process.kill()
    raise ServerUnavailableError(f"The server did not start in time; see {log_path}.")
