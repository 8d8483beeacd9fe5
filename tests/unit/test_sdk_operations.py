"""The SDK's public surface, and what ``MLClient`` refuses before it sends anything.

The operations against a server are tested with a real one in
tests/integration/test_sdk_operations.py. Here the client points at a port nobody listens on,
so a check that sent a request would fail with ``ServerUnavailableError`` instead.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import sluiceway
import sluiceway.sdk
from sluiceway import (
    BatchDeployment,
    BatchEndpoint,
    CodeConfiguration,
    Data,
    Input,
    MLClient,
)
from sluiceway.constants import AssetTypes
from sluiceway.errors import ServerUnavailableError, ValidationError
from sluiceway.sdk import JobFailedError
from sluiceway.sdk.job_operations import _safe_relative

DS = "azureml://datastores/workspaceblobstore/paths"


@pytest.fixture
def offline() -> Iterator[MLClient]:
    """A client of a server that is not there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with MLClient(endpoint=f"http://127.0.0.1:{port}", token="t") as client:
        with pytest.raises(ServerUnavailableError):
            client.datastores.list()
        yield client


# -- the public surface ------------------------------------------------------------------


def test_public_names() -> None:
    assert set(sluiceway.__all__) >= {
        "MLClient", "Input", "Output", "Data", "Model", "BatchEndpoint", "BatchDeployment",
        "ModelBatchDeployment", "ModelBatchDeploymentSettings", "CodeConfiguration",
        "BatchRetrySettings", "Datastore", "BatchJob", "load_data", "load_model",
        "load_batch_endpoint", "load_batch_deployment",
    }  # fmt: skip
    for name in sluiceway.__all__:
        assert getattr(sluiceway, name) is not None
    assert sluiceway.sdk.JobFailedError is JobFailedError
    assert str(AssetTypes.URI_FOLDER) == "uri_folder"


def test_importing_the_sdk_leaves_the_server_dependencies_alone() -> None:
    code = (
        "import sys, sluiceway, sluiceway.sdk, sluiceway.constants;"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'pandas', 'uvicorn', 'starlette') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# -- refused before sending -------------------------------------------------------------


def test_data_create_checks_the_shape_before_sending(offline: MLClient) -> None:
    with pytest.raises(ValidationError, match="needs a name"):
        offline.data.create_or_update(Data(path=f"{DS}/x/"))
    with pytest.raises(ValidationError, match="name 'bad name' is not valid"):
        offline.data.create_or_update(Data(name="bad name", path=f"{DS}/x/"))


def test_get_takes_a_version_or_the_latest_label(offline: MLClient) -> None:
    with pytest.raises(ValidationError, match="not both"):
        offline.data.get("d", version="1", label="latest")
    with pytest.raises(ValidationError, match="label 'prod' is not supported"):
        offline.models.get("d", label="prod")


def test_endpoint_names_are_checked_before_sending(offline: MLClient) -> None:
    with pytest.raises(ValidationError, match="3-32 letters"):
        offline.batch_endpoints.begin_create_or_update(BatchEndpoint(name="x_"))


def make_code(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch_driver.py").write_text(script)
    return folder


def test_scoring_script_is_compiled_before_anything_is_sent(
    offline: MLClient, tmp_path: Path
) -> None:
    deployment = BatchDeployment(
        name="dpl",
        endpoint_name="heart",
        model="azureml:m:1",
        code_configuration=CodeConfiguration(
            code=make_code(tmp_path / "code", "def run(b:\n"), scoring_script="batch_driver.py"
        ),
    )
    with pytest.raises(ValidationError, match="Failed to validate scoring script"):
        offline.batch_deployments.begin_create_or_update(deployment)


def test_missing_code_folder_or_script(offline: MLClient, tmp_path: Path) -> None:
    missing_folder = BatchDeployment(
        name="dpl",
        endpoint_name="heart",
        code_configuration=CodeConfiguration(code=tmp_path / "nope", scoring_script="s.py"),
    )
    with pytest.raises(ValidationError, match="is not a local folder"):
        offline.batch_deployments.begin_create_or_update(missing_folder)
    missing_script = BatchDeployment(
        name="dpl",
        endpoint_name="heart",
        code_configuration=CodeConfiguration(
            code=make_code(tmp_path / "c", "def run(b):\n    return b\n"), scoring_script="x.py"
        ),
    )
    with pytest.raises(ValidationError, match=r"'x\.py' is not in the code folder"):
        offline.batch_deployments.begin_create_or_update(missing_script)


def test_deployment_needs_name_and_endpoint(offline: MLClient) -> None:
    with pytest.raises(ValidationError, match="needs a name"):
        offline.batch_deployments.begin_create_or_update(BatchDeployment(endpoint_name="e"))
    with pytest.raises(ValidationError, match="needs endpoint_name"):
        offline.batch_deployments.begin_create_or_update(BatchDeployment(name="dpl"))


def test_invoke_checks_a_local_path_against_its_type(offline: MLClient, tmp_path: Path) -> None:
    (tmp_path / "heart.csv").write_text("a\n")
    with pytest.raises(ValidationError, match="There is no folder on target path"):
        offline.batch_endpoints.invoke(
            endpoint_name="heart",
            input=Input(type=AssetTypes.URI_FOLDER, path=str(tmp_path / "heart.csv")),
        )
    with pytest.raises(ValidationError, match="There is no file on target path"):
        offline.batch_endpoints.invoke(
            endpoint_name="heart", input=Input(type=AssetTypes.URI_FILE, path=str(tmp_path))
        )


def test_instance_count_and_resources_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="Can't set instance_count when resources"):
        BatchDeployment(name="d", resources={"instance_count": 1}, instance_count=2)


def test_flat_settings_win_over_settings_and_share_one_object() -> None:
    deployment = BatchDeployment(
        name="d", settings={"mini_batch_size": 3, "logging_level": "debug"}, mini_batch_size=7
    )
    assert deployment.settings.mini_batch_size == 7
    deployment.settings.error_threshold = 5
    assert deployment.error_threshold == 5
    deployment.output_file_name = "p.csv"
    assert deployment.model_deployment_settings.output_file_name == "p.csv"


# -- download ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b", "/etc/passwd", ""])
def test_download_refuses_paths_that_leave_the_folder(path: str) -> None:
    # A real server never lists such a path; the client refuses one all the same.
    with pytest.raises(ValidationError, match="outside the output folder"):
        _safe_relative(path)


def test_download_keeps_nested_paths() -> None:
    assert _safe_relative("sub/x.txt").parts == ("sub", "x.txt")
