"""``sluice`` commands that refuse their arguments before they reach any server.

What the commands do against a server is tested with a real one in
tests/integration/test_cli_commands.py. Here the environment names a server that is not there,
so a command that tried to reach it would print a connection error instead of its own.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from sluiceway.cli.main import main


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No server: the environment names a port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SLUICEWAY_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SLUICEWAY_TOKEN", "t")
    monkeypatch.setenv("SLUICEWAY_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def failure(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail with a one-line error; that line."""
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ERROR: ") and captured.err.count("\n") == 1
    return captured.err


def test_the_offline_server_is_not_there(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "sluice server start" in failure(capsys, "datastore", "list")


def test_a_missing_file_is_an_error_not_a_traceback(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = failure(capsys, "batch-deployment", "create", "-f", str(offline / "nope.yml"))
    assert "ERROR: --file" in err


def test_data_create_without_file_needs_name_and_path(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--path" in failure(capsys, "data", "create", "--name", "x")
    assert "--type" in failure(capsys, "model", "create", "--name", "x", "--path", "p")


def test_invoke_refuses_an_output_path_outside_a_datastore(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["batch-endpoint", "invoke", "-n", "ep", "--input", "azureml:d:1"]
    err = failure(capsys, *argv, "--output-path", "/tmp/out")
    assert "--output-path '/tmp/out' is not accepted" in err


def test_invoke_needs_an_endpoint(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "needs --name" in failure(capsys, "batch-endpoint", "invoke", "--input", "azureml:d:1")


def test_quickstart_passes_its_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The real quickstart trains a model and runs a job: tests/acceptance/test_quickstart.py.
    import sluiceway.quickstart

    seen: dict[str, Any] = {}

    def record(console: Any, home: Path | None = None) -> int:
        seen["home"] = home
        return 3

    monkeypatch.setattr(sluiceway.quickstart, "run", record)
    assert main(["quickstart", "--home", str(tmp_path)]) == 3
    assert seen == {"home": tmp_path}
