"""The ``sluice`` command tree: arguments, exit codes and error printing, with no server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.cli.arguments import parse_set_tokens
from sluiceway.cli.main import build_parser, main, package_version
from sluiceway.cli.server import missing_extra

COMMANDS = [
    ["server", "start"],
    ["server", "stop"],
    ["quickstart"],
    ["datastore", "show"],
    ["datastore", "list"],
    ["data", "create"],
    ["data", "show"],
    ["data", "list"],
    ["model", "create"],
    ["model", "show"],
    ["model", "list"],
    ["batch-endpoint", "create"],
    ["batch-endpoint", "update"],
    ["batch-endpoint", "show"],
    ["batch-endpoint", "list"],
    ["batch-endpoint", "delete"],
    ["batch-endpoint", "list-jobs"],
    ["batch-endpoint", "invoke"],
    ["batch-deployment", "create"],
    ["batch-deployment", "show"],
    ["batch-deployment", "list"],
    ["batch-deployment", "delete"],
    ["batch-deployment", "list-jobs"],
    ["job", "show"],
    ["job", "list"],
    ["job", "stream"],
    ["job", "download"],
    ["identity", "create"],
    ["identity", "list"],
    ["identity", "show"],
    ["identity", "delete"],
    ["identity", "rotate-secret"],
    ["role", "assign"],
    ["role", "list"],
    ["role", "remove"],
    ["token", "create"],
    ["login"],
    ["logout"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert f"sluice {' '.join(command)}" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sluice {package_version()}"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "batch-endpoint" in capsys.readouterr().out


def test_a_group_alone_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch-endpoint"]) == 0
    out = capsys.readouterr().out
    assert "invoke" in out and "list-jobs" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["nope"],
        ["data", "show"],  # -n is required
        ["data", "show", "-n", "x", "--version", "1", "--label", "latest"],
        ["data", "show", "-n", "x", "--label", "newest"],
        ["model", "create", "--type", "onnx"],
        ["batch-endpoint", "invoke", "-n", "e", "--input-type", "mltable"],
        ["batch-endpoint", "invoke", "-n", "e", "--mini-batch-size", "0"],
        ["batch-endpoint", "invoke", "-n", "e", "--instance-count", "two"],
        ["batch-deployment", "show", "-n", "d"],  # -e is required
        ["job", "show", "-n", "j", "--output", "table"],
        ["job", "list", "--status", "Sleeping"],
        ["job", "list", "--max-results", "0"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: sluice" in err
    assert "Traceback" not in err


def test_azure_workspace_options_are_accepted_anywhere() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "-g",
            "rg",
            "batch-endpoint",
            "invoke",
            "--name",
            "ep",
            "--resource-group",
            "rg",
            "--workspace-name",
            "ws",
            "--subscription",
            "sub",
            "--only-show-errors",
        ]
    )
    assert args.name == "ep"


def test_connection_options_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--endpoint", "http://a", "--token", "t", "job", "list"])
    assert (before.endpoint, before.token) == ("http://a", "t")
    after = parser.parse_args(["job", "list", "--endpoint", "http://b"])
    assert after.endpoint == "http://b"
    neither = parser.parse_args(["job", "list"])
    assert getattr(neither, "endpoint", None) is None


def test_invoke_arguments_as_on_the_reference_page() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "batch-endpoint",
            "invoke",
            "--name",
            "ep",
            "--set",
            "inputs.heart_dataset.type",
            "uri_folder",
            "inputs.heart_dataset.path",
            "/subscriptions/s/data/heart/versions/1",
            "--set",
            "outputs.score.path=azureml://datastores/ws/paths/out",
            "-d",
            "dep",
            "-m",
            "5",
            "-c",
            "2",
        ]
    )
    assert args.deployment_name == "dep"
    assert (args.mini_batch_size, args.instance_count) == (5, 2)
    assert parse_set_tokens(args.set) == [
        ("inputs.heart_dataset.type", "uri_folder"),
        ("inputs.heart_dataset.path", "/subscriptions/s/data/heart/versions/1"),
        ("outputs.score.path", "azureml://datastores/ws/paths/out"),
    ]


def test_invoke_short_form() -> None:
    args = build_parser().parse_args(
        ["batch-endpoint", "invoke", "-n", "ep", "--input", "data", "--input-type", "uri_file"]
    )
    assert (args.input, args.input_type, args.set, args.file) == ("data", "uri_file", None, None)


def test_missing_extra_names_what_to_install() -> None:
    error = missing_extra(ModuleNotFoundError("no uvicorn", name="uvicorn"))
    assert error is not None and "pip install 'sluiceway[server]'" in error.message
    error = missing_extra(ModuleNotFoundError("no mlflow", name="mlflow.sklearn"))
    assert error is not None and "sluiceway[mlflow]" in error.message
    assert missing_extra(ModuleNotFoundError("bug", name="sluiceway.server.nope")) is None


def test_help_imports_nothing_heavy() -> None:
    heavy = ("sluiceway.server", "fastapi", "uvicorn", "sqlalchemy", "pandas")
    code = (
        "import sys; from sluiceway.cli.main import main; rc = main(['--help']); "
        f"heavy = [m for m in {heavy!r} if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_server_stop_without_a_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "stop", "--home", str(tmp_path)]) == 1
    assert "No server is recorded" in capsys.readouterr().err


def test_server_stop_removes_a_stale_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 answers nothing, so the pid in the record is never signalled.
    (tmp_path / "server.json").write_text('{"url": "http://127.0.0.1:1", "pid": 1}\n')
    assert main(["server", "stop", "--home", str(tmp_path)]) == 0
    assert not (tmp_path / "server.json").exists()
    assert "stale record" in capsys.readouterr().err
