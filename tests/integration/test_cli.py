"""The reference page's ``az ml`` lines, run as ``sluice`` against a real server.

Each command runs in-process through ``main()`` (so failures show their cause), with the server
found from ``SLUICEWAY_ENDPOINT`` and ``SLUICEWAY_TOKEN`` as a user's shell would; one test runs
the installed console script in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluiceway.cli.main import main
from tests.integration.conftest import RunningServer
from tests.integration.helpers import ECHO_SCRIPT, unique, upload_folder, write_numbered_files

FILES = 6


@dataclass
class Cli:
    """Runs ``sluice`` commands and keeps what they printed."""

    capsys: pytest.CaptureFixture[str]

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(argv))
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def ok(self, *argv: str) -> str:
        code, out, err = self.run(*argv)
        assert code == 0, f"sluice {' '.join(argv)} exited {code}: {err}"
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self.ok(*argv))

    def fails(self, *argv: str) -> str:
        code, out, err = self.run(*argv)
        assert code == 1, f"sluice {' '.join(argv)} exited {code}: {out}{err}"
        assert err.startswith("ERROR: "), err
        assert "Traceback" not in err
        return err


@pytest.fixture
def cli(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", server.url)
    monkeypatch.setenv("SLUICEWAY_TOKEN", server.token)
    monkeypatch.chdir(tmp_path)
    return Cli(capsys)


@dataclass(frozen=True)
class Example:
    """An endpoint with a scoring-script deployment, and a data asset of numbered files."""

    root: Path
    endpoint: str
    deployment: str
    model: str
    data: str


def write_example(root: Path) -> Example:
    """The files of the example, laid out like Azure's samples, with YAML next to them."""
    example = Example(
        root=root,
        endpoint=unique("ep"),
        deployment=unique("dep"),
        model=unique("model"),
        data=unique("data"),
    )
    (root / "model").mkdir(parents=True)
    (root / "model" / "weights.txt").write_text("1\n")
    (root / "code").mkdir()
    (root / "code" / "score.py").write_text(ECHO_SCRIPT)
    write_numbered_files(root / "data", FILES)
    (root / "data.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\n"
        f"name: {example.data}\n"
        "description: Numbered files.\n"
        "type: uri_folder\n"
        "path: data\n"
    )
    (root / "endpoint.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\n"
        f"name: {example.endpoint}\n"
        "description: An echo endpoint.\n"
        "auth_mode: aad_token\n"
    )
    (root / "deployment.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json\n"
        f"name: {example.deployment}\n"
        f"endpoint_name: {example.endpoint}\n"
        "type: model\n"
        f"model: azureml:{example.model}@latest\n"
        "code_configuration:\n"
        "  code: code\n"
        "  scoring_script: score.py\n"
        "compute: azureml:batch-cluster\n"
        "resources:\n"
        "  instance_count: 1\n"
        "settings:\n"
        "  mini_batch_size: 2\n"
        "  output_action: append_row\n"
        "  output_file_name: predictions.csv\n"
    )
    return example


@pytest.fixture
def example(cli: Cli, tmp_path: Path) -> Example:
    """The example, registered and deployed through the CLI."""
    made = write_example(tmp_path / "example")
    root = made.root
    model = cli.json(
        "model", "create", "--name", made.model, "--type", "custom_model",
        "--path", str(root / "model"),
    )  # fmt: skip
    assert (model["name"], model["version"], model["type"]) == (made.model, "1", "custom_model")
    endpoint = cli.json("batch-endpoint", "create", "-f", str(root / "endpoint.yml"))
    assert endpoint["name"] == made.endpoint
    assert endpoint["scoring_uri"].endswith(f"/endpoints/{made.endpoint}/jobs")
    deployment = cli.json("batch-deployment", "create", "-f", str(root / "deployment.yml"))
    assert (deployment["name"], deployment["endpoint_name"]) == (made.deployment, made.endpoint)
    data = cli.json("data", "create", "-f", str(root / "data.yml"))
    assert (data["name"], data["version"]) == (made.data, "1")
    return made


def wait_and_download(cli: Cli, job: str, folder: Path) -> list[str]:
    """Stream the job to its end, download ``score``, and return the prediction lines."""
    cli.ok("job", "stream", "-n", job)
    assert cli.ok("job", "show", "-n", job, "--query", "status", "-o", "tsv").strip() == "Completed"
    cli.ok("job", "download", "-n", job, "--output-name", "score", "--download-path", str(folder))
    predictions = folder / "named-outputs" / "score" / "predictions.csv"
    return predictions.read_text().splitlines()


def expect_all_files(lines: list[str]) -> None:
    assert len(lines) == FILES
    assert [line.split()[0] for line in lines] == [f"file-{i:02d}.txt" for i in range(FILES)]


# -- datastores and assets ------------------------------------------------------------------


def test_datastore_show_and_list(cli: Cli) -> None:
    store = cli.json("datastore", "show", "-n", "workspaceblobstore")
    assert store["name"] == "workspaceblobstore"
    assert store["id"].endswith("/datastores/workspaceblobstore")
    names = cli.json("datastore", "list", "--query", "[].name")
    assert "workspaceblobstore" in names


def test_data_versions_and_latest(cli: Cli, tmp_path: Path) -> None:
    name = unique("data")
    write_numbered_files(tmp_path / "files", 2)
    first = cli.json("data", "create", "--name", name, "--path", str(tmp_path / "files"))
    second = cli.json("data", "create", "--name", name, "--path", str(tmp_path / "files"))
    assert (first["version"], second["version"]) == ("1", "2")
    assert first["type"] == "uri_folder"
    assert first["path"].startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    assert cli.json("data", "show", "-n", name, "--label", "latest")["version"] == "2"
    assert cli.json("data", "show", "-n", name, "--version", "1")["id"] == first["id"]
    assert cli.json("data", "list", "-n", name, "--query", "[].version") == ["2", "1"]
    assert name in cli.json("data", "list", "--query", "[].name")
    err = cli.fails("data", "show", "-n", name, "--version", "9")
    assert name in err


def test_model_list_and_show(cli: Cli, tmp_path: Path) -> None:
    name = unique("model")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "weights.txt").write_text("1\n")
    cli.ok(
        "model", "create", "--name", name, "--type", "custom_model", "--path", str(tmp_path / "m")
    )
    assert cli.json("model", "show", "-n", name)["version"] == "1"
    assert name in cli.json("model", "list", "--query", "[].name")


# -- invoke, in every form of the reference page --------------------------------------------


def test_invoke_a_data_asset_with_set_pairs(cli: Cli, example: Example, tmp_path: Path) -> None:
    dataset_id = cli.ok(
        "data", "show", "-n", example.data, "--label", "latest", "--query", "id", "-o", "tsv"
    ).strip()
    job = cli.json(
        "batch-endpoint", "invoke", "--name", example.endpoint,
        "--set", "inputs.heart_dataset.type", "uri_folder", "inputs.heart_dataset.path", dataset_id,
    )  # fmt: skip
    assert job["endpoint_name"] == example.endpoint
    assert job["deployment_name"] == example.deployment
    lines = wait_and_download(cli, job["name"], tmp_path / "out")
    expect_all_files(lines)
    # mini_batch_size 2 over 6 files: 3 mini-batches of 2, in input order.
    assert [line.split()[2] for line in lines] == [
        "batch-of-file-00.txt", "batch-of-file-00.txt",
        "batch-of-file-02.txt", "batch-of-file-02.txt",
        "batch-of-file-04.txt", "batch-of-file-04.txt",
    ]  # fmt: skip


def test_invoke_a_data_asset_with_input(cli: Cli, example: Example, tmp_path: Path) -> None:
    dataset_id = cli.json("data", "show", "-n", example.data, "--label", "latest")["id"]
    job = cli.json("batch-endpoint", "invoke", "--name", example.endpoint, "--input", dataset_id)
    expect_all_files(wait_and_download(cli, job["name"], tmp_path / "out"))


def test_invoke_a_data_asset_from_an_inputs_file(
    cli: Cli, example: Example, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs.yml"
    inputs.write_text(f"inputs:\n  heart_dataset: azureml:/{example.data}@latest\n")
    job = cli.json("batch-endpoint", "invoke", "--name", example.endpoint, "--file", str(inputs))
    expect_all_files(wait_and_download(cli, job["name"], tmp_path / "out"))


def test_invoke_a_datastore_path_in_three_forms(
    cli: Cli, server: RunningServer, example: Example, tmp_path: Path
) -> None:
    folder = unique("heart-disease-uci-unlabeled")
    write_numbered_files(tmp_path / "upload", FILES)
    with server.client() as client:
        upload_folder(client, tmp_path / "upload", folder)
    datastore_id = cli.json("datastore", "show", "-n", "workspaceblobstore")["id"]
    input_path = f"{datastore_id}/paths/{folder}"

    by_set = cli.json(
        "batch-endpoint", "invoke", "--name", example.endpoint,
        "--set", "inputs.heart_dataset.type", "uri_folder", "inputs.heart_dataset.path", input_path,
    )  # fmt: skip
    by_input = cli.json(
        "batch-endpoint", "invoke", "--name", example.endpoint,
        "--input", input_path, "--input-type", "uri_folder",
    )  # fmt: skip
    inputs = tmp_path / "inputs.yml"
    inputs.write_text(
        "inputs:\n  heart_dataset:\n    type: uri_folder\n"
        f"    path: azureml://datastores/workspaceblobstore/paths/{folder}\n"
    )
    by_file = cli.json(
        "batch-endpoint", "invoke", "--name", example.endpoint, "--file", str(inputs)
    )
    for index, job in enumerate((by_set, by_input, by_file)):
        expect_all_files(wait_and_download(cli, job["name"], tmp_path / f"out-{index}"))


def test_invoke_a_local_folder_uploads_it(cli: Cli, example: Example, tmp_path: Path) -> None:
    write_numbered_files(tmp_path / "local", FILES)
    job = cli.json(
        "batch-endpoint", "invoke", "-n", example.endpoint, "--input", str(tmp_path / "local")
    )
    (given,) = job["inputs"].values()
    assert "LocalUpload/" in given["path"]
    expect_all_files(wait_and_download(cli, job["name"], tmp_path / "out"))


def test_invoke_with_an_output_path_and_overrides(
    cli: Cli, server: RunningServer, example: Example, tmp_path: Path
) -> None:
    datastore_id = cli.json("datastore", "show", "-n", "workspaceblobstore")["id"]
    output_path = f"{datastore_id}/paths/batch-jobs/{unique('out')}"
    job = cli.json(
        "batch-endpoint", "invoke", "--name", example.endpoint,
        "--deployment-name", example.deployment,
        "--set", f"inputs.heart_dataset.path=azureml:{example.data}:1",
        "--set", "outputs.score.path", output_path,
        "--mini-batch-size", "3", "--job-name", unique("job"),
    )  # fmt: skip
    assert job["settings"]["mini_batch_size"] == 3
    assert job["outputs"]["score"]["path"].rstrip("/").endswith(output_path.split("/paths/")[1])
    lines = wait_and_download(cli, job["name"], tmp_path / "out")
    expect_all_files(lines)
    assert {line.split()[3] for line in lines} == {"3"}

    other = f"azureml://datastores/workspaceblobstore/paths/batch-jobs/{unique('out')}"
    job = cli.json(
        "batch-endpoint", "invoke", "--name", example.endpoint,
        "--input", f"azureml:{example.data}:1", "--output-path", other,
        "--output-file-name", "rows.txt", "--stream",
    )  # fmt: skip
    assert job["settings"]["output_file_name"] == "rows.txt"
    assert cli.ok("job", "show", "-n", job["name"], "--query", "status", "-o", "tsv").strip() == (
        "Completed"
    )


# -- endpoints and deployments --------------------------------------------------------------


def test_endpoint_and_deployment_lifecycle(cli: Cli, example: Example, tmp_path: Path) -> None:
    shown = cli.json("batch-endpoint", "show", "-n", example.endpoint)
    assert shown["defaults"]["deployment_name"] == example.deployment
    assert example.endpoint in cli.json("batch-endpoint", "list", "--query", "[].name")

    second = unique("dep")
    cli.ok(
        "batch-deployment", "create", "-f", str(example.root / "deployment.yml"),
        "--name", second, "--endpoint-name", example.endpoint,
    )  # fmt: skip
    names = cli.json("batch-deployment", "list", "-e", example.endpoint, "--query", "[].name")
    assert sorted(names) == sorted([example.deployment, second])
    updated = cli.json(
        "batch-endpoint", "update", "-n", example.endpoint,
        "--set", f"defaults.deployment_name={second}",
    )  # fmt: skip
    assert updated["defaults"]["deployment_name"] == second
    assert updated["description"] == "An echo endpoint."
    shown = cli.json("batch-deployment", "show", "-n", second, "-e", example.endpoint)
    assert shown["settings"]["mini_batch_size"] == 2

    job = cli.json(
        "batch-endpoint", "invoke", "-n", example.endpoint, "--input", f"azureml:{example.data}:1"
    )
    assert job["deployment_name"] == second
    assert job["name"] in cli.json(
        "batch-endpoint", "list-jobs", "-n", example.endpoint, "--query", "[].name"
    )
    assert job["name"] in cli.json(
        "batch-deployment", "list-jobs", "-n", second, "-e", example.endpoint, "--query", "[].name"
    )
    assert job["name"] not in cli.json(
        "batch-deployment", "list-jobs", "-n", example.deployment, "-e", example.endpoint,
        "--query", "[].name",
    )  # fmt: skip
    assert job["name"] in cli.json(
        "job", "list", "--endpoint-name", example.endpoint, "--query", "[].name"
    )
    cli.ok("job", "stream", "-n", job["name"])

    cli.ok("batch-deployment", "delete", "-n", example.deployment, "-e", example.endpoint, "--yes")
    names = cli.json("batch-deployment", "list", "-e", example.endpoint, "--query", "[].name")
    assert names == [second]
    cli.ok("batch-endpoint", "delete", "-n", example.endpoint, "--yes")
    assert example.endpoint in cli.fails("batch-endpoint", "show", "-n", example.endpoint)
    # Jobs and their outputs outlive the endpoint.
    assert cli.json("job", "show", "-n", job["name"])["status"] == "Completed"


def test_endpoint_create_by_name_and_set(cli: Cli) -> None:
    name = unique("ep")
    made = cli.json("batch-endpoint", "create", "--name", name, "--set", "description=bare")
    assert (made["name"], made["description"]) == (name, "bare")
    cli.ok("batch-endpoint", "delete", "-n", name, "--yes")


# -- mistakes -------------------------------------------------------------------------------


def test_mistakes_print_an_error_and_leave_no_job(
    cli: Cli, example: Example, tmp_path: Path
) -> None:
    before = cli.json("batch-endpoint", "list-jobs", "-n", example.endpoint, "--query", "[].name")
    assert "nope-endpoint" in cli.fails("batch-endpoint", "show", "-n", "nope-endpoint")
    err = cli.fails(
        "batch-endpoint", "invoke", "-n", example.endpoint, "-d", "nope-dep",
        "--input", f"azureml:{example.data}:1",
    )  # fmt: skip
    assert "nope-dep" in err
    cli.fails(
        "batch-endpoint", "invoke", "-n", "nope-endpoint", "--input", f"azureml:{example.data}:1"
    )
    cli.fails("batch-endpoint", "invoke", "-n", example.endpoint, "--input", "azureml:nope-data:1")
    mltable = unique("table")
    (tmp_path / "table").mkdir()
    (tmp_path / "table" / "MLTable").write_text("paths: []\n")
    cli.ok(
        "data", "create", "--name", mltable, "--type", "mltable", "--path", str(tmp_path / "table")
    )
    err = cli.fails(
        "batch-endpoint", "invoke", "-n", example.endpoint, "--input", f"azureml:{mltable}:1"
    )
    assert "mltable" in err.lower()
    after = cli.json("batch-endpoint", "list-jobs", "-n", example.endpoint, "--query", "[].name")
    assert after == before


def test_a_wrong_token_is_an_error(cli: Cli) -> None:
    err = cli.fails("datastore", "list", "--token", "not-a-token")
    assert "ERROR" in err


# -- the console script ---------------------------------------------------------------------


def test_the_console_script_against_the_server(server: RunningServer, tmp_path: Path) -> None:
    sluice = Path(sys.executable).with_name("sluice")
    command = [str(sluice)] if sluice.exists() else [sys.executable, "-m", "sluiceway.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEWAY_")}
    env["SLUICEWAY_HOME"] = str(server.home)  # the token and address the server recorded
    done = subprocess.run(
        [*command, "datastore", "show", "-n", "workspaceblobstore"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "workspaceblobstore"
    done = subprocess.run(
        [*command, "batch-endpoint", "show", "-n", "nope-endpoint"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: ") and "Traceback" not in done.stderr


def test_server_start_and_stop(tmp_path: Path) -> None:
    """``sluice server start`` serves until ``sluice server stop`` ends it."""
    home = tmp_path / "home"
    sluice = Path(sys.executable).with_name("sluice")
    command = [str(sluice)] if sluice.exists() else [sys.executable, "-m", "sluiceway.cli.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEWAY_")}
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [
                *command, "server", "start",
                "--home", str(home), "--host", "localhost", "--port", "0",
            ],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not (home / "server.json").exists():
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            url = json.loads((home / "server.json").read_text())["url"]
            assert url.startswith("http://localhost:"), url
            while httpx.get(f"{url}/healthz", timeout=2).status_code != 200:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
            assert main(["server", "stop", "--home", str(home)]) == 0
            assert process.wait(30) is not None
            assert not (home / "server.json").exists()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
