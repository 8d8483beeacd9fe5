"""``sluice`` commands against a real server: flags, printing, errors and what reaches the server.

tests/integration/test_cli.py runs the reference page's commands end to end; this file covers
the rest of each command. Commands run in-process through ``main()``, with the server found
from ``SLUICEWAY_ENDPOINT`` and ``SLUICEWAY_TOKEN``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluiceway.cli.main import main
from sluiceway.errors import ResourceNotFoundError
from tests.integration.conftest import RunningServer
from tests.integration.helpers import (
    DS,
    create_script_deployment,
    unique,
    upload_folder,
    wait_for_job,
    write_numbered_files,
)
from tests.integration.test_cli import Cli, write_example

FAILING_SCRIPT = (
    "def init():\n    pass\n\ndef run(mini_batch):\n    raise ZeroDivisionError('no luck')\n"
)


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


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# -- connecting and printing ----------------------------------------------------------------


def test_show_prints_the_server_json_as_is(cli: Cli, http: httpx.Client) -> None:
    out = cli.ok("datastore", "show", "-n", "workspaceblobstore")
    expected = http.get("/datastores/workspaceblobstore").json()
    assert out == json.dumps(expected, indent=2) + "\n"


def test_endpoint_and_token_flags_find_the_server(
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SLUICEWAY_ENDPOINT", raising=False)
    monkeypatch.delenv("SLUICEWAY_TOKEN", raising=False)
    monkeypatch.setenv("SLUICEWAY_HOME", str(tmp_path / "empty-home"))
    monkeypatch.chdir(tmp_path)
    # Without the flags there is no server to find ...
    assert main(["datastore", "list"]) == 1
    assert capsys.readouterr().err.startswith("ERROR: ")
    # ... with them (before and after the command) there is.
    argv = ["--endpoint", server.url, "datastore", "list", "--token", server.token]
    assert main([*argv, "--query", "[].name"]) == 0
    assert "workspaceblobstore" in json.loads(capsys.readouterr().out)


def test_errors_print_one_line_and_nothing_on_stdout(cli: Cli) -> None:
    missing = unique("nope")
    code, out, err = cli.run("batch-endpoint", "show", "-n", missing)
    assert code == 1
    assert out == ""
    assert err == f"ERROR: Batch endpoint {missing!r} does not exist.\n"


def test_debug_shows_the_traceback(cli: Cli) -> None:
    missing = unique("nojob")
    with pytest.raises(ResourceNotFoundError, match=missing):
        main(["job", "show", "-n", missing, "--debug"])


# -- data and models ------------------------------------------------------------------------


def test_data_create_from_flags_and_show_defaults_to_the_latest(
    cli: Cli, http: httpx.Client, tmp_path: Path
) -> None:
    write_numbered_files(tmp_path / "remote", 1)
    folder = upload_folder(http, tmp_path / "remote", unique("remote"))
    path = f"{folder}file-00.txt"
    name = unique("d")
    made = cli.json(
        "data", "create", "--name", name, "--path", path, "--type", "uri_file", "--version", "4"
    )
    assert (made["name"], made["version"], made["type"], made["path"]) == (
        name,
        "4",
        "uri_file",
        path,
    )
    assert made == http.get(f"/data/{name}/versions/4").json()
    cli.ok("data", "create", "--name", name, "--path", path, "--type", "uri_file")
    # No --version or --label: the latest; Azure's workspace options are accepted and unused.
    shown = cli.json("data", "show", "-n", name, "-g", "rg", "-w", "ws")
    assert shown["version"] == "5"
    assert cli.ok("data", "show", "-n", name, "-v", "4", "--query", "id", "-o", "tsv") == (
        f"{made['id']}\n"
    )


def test_data_create_from_a_file_with_a_name_override(cli: Cli, tmp_path: Path) -> None:
    write_numbered_files(tmp_path / "data", 2)
    in_file, given = unique("heart-dataset-unlabeled"), unique("other")
    spec = tmp_path / "heart-dataset-unlabeled.yml"
    spec.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\n"
        f"name: {in_file}\ndescription: d\ntype: uri_folder\npath: data\n"
    )
    made = cli.json("data", "create", "-f", str(spec), "--name", given)
    assert (made["name"], made["type"], made["description"]) == (given, "uri_folder", "d")
    assert made["path"].startswith(f"{DS}/LocalUpload/")
    assert cli.json("data", "show", "-n", given)["id"] == made["id"]
    assert in_file in cli.fails("data", "show", "-n", in_file)


def test_model_list_by_name_prints_every_version(cli: Cli, tmp_path: Path) -> None:
    name = unique("model")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text("flavors: {}\n")
    for _ in range(2):
        cli.ok(
            "model", "create", "--name", name, "--type", "mlflow_model",
            "--path", str(tmp_path / "m"),
        )  # fmt: skip
    listed = cli.json("model", "list", "-n", name)
    assert [(m["name"], m["version"], m["type"]) for m in listed] == [
        (name, "2", "mlflow_model"),
        (name, "1", "mlflow_model"),
    ]


# -- endpoints and deployments --------------------------------------------------------------


def test_endpoint_update_refuses_unknown_keys(cli: Cli) -> None:
    name = unique("ep")
    cli.ok("batch-endpoint", "create", "--name", name, "--set", "description=kept")
    err = cli.fails("batch-endpoint", "update", "-n", name, "--set", "scoring_uri=x")
    assert "unknown key 'scoring_uri'" in err and "defaults" in err
    err = cli.fails("batch-endpoint", "update", "-n", name)
    assert "nothing to change" in err
    shown = cli.json("batch-endpoint", "show", "-n", name)
    assert shown["description"] == "kept"
    assert shown["scoring_uri"].endswith(f"/endpoints/{name}/jobs")


def test_delete_asks_first_and_does_nothing_without_a_terminal(cli: Cli) -> None:
    name = unique("ep")
    cli.ok("batch-endpoint", "create", "--name", name)
    code, _, err = cli.run("batch-endpoint", "delete", "-n", name)
    assert code == 1
    assert "--yes" in err
    assert cli.json("batch-endpoint", "show", "-n", name)["name"] == name
    cli.ok("batch-endpoint", "delete", "-n", name, "-y")
    assert name in cli.fails("batch-endpoint", "show", "-n", name)


def test_deployment_create_with_endpoint_override_and_set_default(cli: Cli, tmp_path: Path) -> None:
    example = write_example(tmp_path / "example")
    spec = str(example.root / "deployment.yml")
    cli.ok(
        "model", "create", "--name", example.model, "--type", "custom_model",
        "--path", str(example.root / "model"),
    )  # fmt: skip
    other = unique("other")
    cli.ok("batch-endpoint", "create", "--name", other)
    first = cli.json("batch-deployment", "create", "-f", spec, "-e", other, "--name", "first")
    assert (first["name"], first["endpoint_name"]) == ("first", other)
    assert cli.json("batch-endpoint", "show", "-n", other)["defaults"]["deployment_name"] == (
        "first"
    )
    made = cli.json("batch-deployment", "create", "-f", spec, "-e", other, "--set-default")
    assert (made["name"], made["endpoint_name"]) == (example.deployment, other)
    assert made["model"] == f"azureml:{example.model}:1"
    assert cli.json("batch-endpoint", "show", "-n", other)["defaults"]["deployment_name"] == (
        example.deployment
    )
    # The endpoint the file names was never touched.
    assert example.endpoint in cli.fails("batch-endpoint", "show", "-n", example.endpoint)


# -- invoke and jobs ------------------------------------------------------------------------


@pytest.fixture
def echo(server: RunningServer, http: httpx.Client, tmp_path: Path) -> tuple[str, str, str]:
    """An endpoint whose deployment echoes its files, and an uploaded folder of 4 files."""
    endpoint, deployment = unique("cli-ops"), "echo"
    create_script_deployment(http, tmp_path, endpoint, deployment)
    write_numbered_files(tmp_path / "data", 4)
    return endpoint, deployment, upload_folder(http, tmp_path / "data", unique("cli-ops-data"))


def test_invoke_sends_literal_inputs_which_a_model_deployment_refuses(
    cli: Cli, echo: tuple[str, str, str]
) -> None:
    endpoint, _, data = echo
    err = cli.fails(
        "batch-endpoint", "invoke", "-n", endpoint,
        "--set", f"inputs.heart.path={data}",
        "--set", "inputs.score_mode.type", "string", "inputs.score_mode.default", "append",
    )  # fmt: skip
    assert "literal input(s) score_mode" in err
    assert cli.json("batch-endpoint", "list-jobs", "-n", endpoint) == []


def test_invoke_overrides_reach_the_job(
    cli: Cli, http: httpx.Client, echo: tuple[str, str, str]
) -> None:
    endpoint, deployment, data = echo
    name = unique("job")
    job = cli.json(
        "batch-endpoint", "invoke", "-n", endpoint, "--input", data,
        "--set", "retry_settings.max_retries=1", "--set", "logging_level=debug",
        "--instance-count", "2", "--mini-batch-size", "1",
        "--job-name", name, "--experiment-name", "exp",
    )  # fmt: skip
    assert (job["name"], job["experiment_name"], job["deployment_name"]) == (
        name,
        "exp",
        deployment,
    )
    settings = job["settings"]
    assert (settings["instance_count"], settings["mini_batch_size"]) == (2, 1)
    assert (settings["max_retries"], settings["logging_level"]) == (1, "debug")
    finished = wait_for_job(http, name)
    assert finished["status"] == "Completed"
    assert finished["progress"]["mini_batches_total"] == 4


def test_failed_jobs_stream_with_exit_1_and_list_by_status(
    cli: Cli, server: RunningServer, http: httpx.Client, tmp_path: Path
) -> None:
    endpoint, deployment = unique("cli-fail"), "failing"
    settings = {"retry_settings": {"max_retries": 0, "timeout": 30}, "error_threshold": 0}
    create_script_deployment(
        http, tmp_path, endpoint, deployment, script=FAILING_SCRIPT, settings=settings
    )
    write_numbered_files(tmp_path / "data", 2)
    data = upload_folder(http, tmp_path / "data", unique("cli-fail-data"))
    names = [
        cli.json("batch-endpoint", "invoke", "-n", endpoint, "--input", data)["name"]
        for _ in range(2)
    ]
    for name in names:
        assert wait_for_job(http, name)["status"] == "Failed"
    newest = names[-1]
    message = http.get(f"/jobs/{newest}").json()["error"]["message"]
    code, out, err = cli.run("job", "stream", "-n", newest)
    assert code == 1
    # The SDK's JobFailedError, printed as any Sluiceway error
    assert err == f"ERROR: Job {newest} failed: {message}\n"
    assert out.splitlines()[-2:] == ["Status: Failed", f"Error: {message}"]

    listed = cli.json(
        "job", "list", "-e", endpoint, "-d", deployment, "--status", "failed", "--query", "[].name"
    )
    assert listed == list(reversed(names))
    assert cli.json("job", "list", "-e", endpoint, "--max-results", "1", "--query", "[].name") == [
        newest
    ]
    assert cli.json("job", "list", "-e", endpoint, "--status", "completed") == []
