"""The README's first command, as a new user runs it: `sluice quickstart`, twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.home import WorkspaceHome
from sluiceway.server.run import stop_server


@pytest.mark.slow
def test_quickstart_prints_predictions_and_runs_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "SLUICEWAY_HOME": str(home), "COLUMNS": "200"}
    env.pop("SLUICEWAY_ENDPOINT", None)
    env.pop("SLUICEWAY_TOKEN", None)
    sluice = [sys.executable, "-m", "sluiceway.cli.main"]
    try:
        for attempt in (1, 2):
            done = subprocess.run(
                [*sluice, "quickstart"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"run {attempt}:\n{done.stdout}\n{done.stderr}"
            assert "Predictions:" in done.stdout, done.stdout
            assert "predictions.csv" in done.stdout
        outputs = list((home / "quickstart-output").glob("*/named-outputs/score/predictions.csv"))
        assert len(outputs) == 2
        for path in outputs:
            lines = path.read_text().splitlines()
            assert len(lines) == 300  # 10 files of 30 rows
            row, prediction, file_name = lines[0].split(" ")
            assert row == "0" and prediction in {"0", "1"} and file_name.endswith(".csv")
    finally:
        stop_server(WorkspaceHome(home))
