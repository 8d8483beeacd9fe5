"""What each ``sluice`` command asks of the SDK, with a recording client instead of a server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sluiceway import Input, Output
from sluiceway.cli.main import main
from sluiceway.errors import ResourceNotFoundError, SluicewayError

DATASTORE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sluiceway/providers/"
    "Microsoft.MachineLearningServices/workspaces/default/datastores/workspaceblobstore"
)


class Shown:
    """An entity as the SDK returns it: ``_to_dict()`` is the server's JSON."""

    def __init__(self, **data: Any) -> None:
        self.data = data

    def _to_dict(self) -> dict[str, Any]:
        return self.data


class Done:
    """A poller whose operation has finished."""

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


@dataclass
class Operations:
    """Records each call as (method, args, kwargs) and answers from ``answers``."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    answers: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("__"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((method, args, kwargs))
            answer = self.answers.get(method)
            return answer(*args, **kwargs) if answer is not None else None

        return call


@dataclass
class FakeClient:
    data: Operations = field(default_factory=Operations)
    models: Operations = field(default_factory=Operations)
    datastores: Operations = field(default_factory=Operations)
    batch_endpoints: Operations = field(default_factory=Operations)
    batch_deployments: Operations = field(default_factory=Operations)
    jobs: Operations = field(default_factory=Operations)
    connected_with: tuple[str | None, str | None] | None = None


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


def run(client: FakeClient, *argv: str) -> int:
    def factory(endpoint: str | None, token: str | None) -> Any:
        client.connected_with = (endpoint, token)
        return client

    return main(list(argv), client_factory=factory)


def printed(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


# -- show and list --------------------------------------------------------------------------


def test_datastore_show_prints_the_server_json(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.datastores.answers["get"] = lambda name: Shown(id=DATASTORE_ID, name=name)
    assert run(client, "datastore", "show", "-n", "workspaceblobstore") == 0
    out = capsys.readouterr().out
    assert out == json.dumps({"id": DATASTORE_ID, "name": "workspaceblobstore"}, indent=2) + "\n"
    assert client.connected_with == (None, None)


def test_endpoint_and_token_go_to_the_client(client: FakeClient) -> None:
    client.datastores.answers["list"] = lambda: []
    assert run(client, "--endpoint", "http://h:1", "datastore", "list", "--token", "t") == 0
    assert client.connected_with == ("http://h:1", "t")


def test_data_show_defaults_to_the_latest_label(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.data.answers["get"] = lambda name, **kw: Shown(id=f"/data/{name}/versions/3")
    assert run(client, "data", "show", "-n", "heart", "-g", "rg", "-w", "ws") == 0
    assert client.data.calls == [("get", ("heart",), {"version": None, "label": "latest"})]
    assert printed(capsys) == {"id": "/data/heart/versions/3"}


def test_data_show_by_version_and_query(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.data.answers["get"] = lambda name, **kw: Shown(id="the-id", version="2")
    assert run(client, "data", "show", "-n", "heart", "-v", "2", "--query", "id", "-o", "tsv") == 0
    assert client.data.calls == [("get", ("heart",), {"version": "2", "label": None})]
    assert capsys.readouterr().out == "the-id\n"


def test_lists_print_json_arrays(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.models.answers["list"] = lambda **kw: [Shown(name="a"), Shown(name="b")]
    assert run(client, "model", "list", "-n", "m") == 0
    assert client.models.calls == [("list", (), {"name": "m"})]
    assert printed(capsys) == [{"name": "a"}, {"name": "b"}]


def test_deployment_show_and_list(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.batch_deployments.answers["get"] = lambda name, endpoint_name: Shown(name=name)
    client.batch_deployments.answers["list"] = lambda endpoint_name: [Shown(name="d")]
    assert run(client, "batch-deployment", "show", "-n", "d", "-e", "ep") == 0
    assert run(client, "batch-deployment", "list", "--endpoint-name", "ep") == 0
    assert client.batch_deployments.calls == [
        ("get", ("d",), {"endpoint_name": "ep"}),
        ("list", (), {"endpoint_name": "ep"}),
    ]


# -- errors ---------------------------------------------------------------------------------


def test_sluiceway_errors_print_one_line_and_exit_1(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str) -> Any:
        raise ResourceNotFoundError(f"Batch endpoint {name!r} not found.")

    client.batch_endpoints.answers["get"] = missing
    assert run(client, "batch-endpoint", "show", "-n", "nope") == 1
    captured = capsys.readouterr()
    assert captured.err == "ERROR: Batch endpoint 'nope' not found.\n"
    assert captured.out == ""


def test_debug_shows_the_traceback(client: FakeClient) -> None:
    def fail(name: str) -> Any:
        raise SluicewayError("boom")

    client.jobs.answers["get"] = fail
    with pytest.raises(SluicewayError):
        run(client, "job", "show", "-n", "j", "--debug")


def test_a_missing_file_is_an_error_not_a_traceback(
    client: FakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(client, "batch-deployment", "create", "-f", str(tmp_path / "nope.yml")) == 1
    assert "ERROR: --file" in capsys.readouterr().err


def test_data_create_without_file_needs_name_and_path(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(client, "data", "create", "--name", "x") == 1
    assert "--path" in capsys.readouterr().err
    assert run(client, "model", "create", "--name", "x", "--path", "p") == 1
    assert "--type" in capsys.readouterr().err
    assert client.data.calls == [] and client.models.calls == []


# -- create ---------------------------------------------------------------------------------


def test_data_create_from_flags(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.data.answers["create_or_update"] = lambda data: Shown(name=data.name)
    argv = ["data", "create", "--name", "d", "--path", "azureml://datastores/ws/paths/x"]
    assert run(client, *argv, "--type", "uri_file", "--version", "4") == 0
    ((_, (data,), _),) = client.data.calls
    assert (data.name, data.version, data.type, data.path) == (
        "d",
        "4",
        "uri_file",
        "azureml://datastores/ws/paths/x",
    )
    assert printed(capsys) == {"name": "d"}


def test_data_create_from_a_file_with_a_name_override(client: FakeClient, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    spec = tmp_path / "heart-dataset-unlabeled.yml"
    spec.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/data.schema.json\n"
        "name: heart-dataset-unlabeled\ndescription: d\ntype: uri_folder\npath: data\n"
    )
    client.data.answers["create_or_update"] = lambda data: Shown(name=data.name)
    assert run(client, "data", "create", "-f", str(spec), "--name", "other") == 0
    ((_, (data,), _),) = client.data.calls
    assert data.name == "other"
    assert data.type == "uri_folder"


def test_model_create_from_flags(client: FakeClient, tmp_path: Path) -> None:
    client.models.answers["create_or_update"] = lambda model: Shown(name=model.name)
    argv = ["model", "create", "--name", "m", "--type", "mlflow_model", "--path", str(tmp_path)]
    assert run(client, *argv) == 0
    ((_, (model,), _),) = client.models.calls
    assert (model.name, model.type) == ("m", "mlflow_model")


def test_endpoint_create_from_a_file(client: FakeClient, tmp_path: Path) -> None:
    spec = tmp_path / "endpoint.yml"
    spec.write_text("name: heart-batch\ndescription: hi\nauth_mode: aad_token\n")
    client.batch_endpoints.answers["begin_create_or_update"] = lambda ep: Done(Shown(name=ep.name))
    assert run(client, "batch-endpoint", "create", "-f", str(spec)) == 0
    ((_, (endpoint,), _),) = client.batch_endpoints.calls
    assert (endpoint.name, endpoint.description) == ("heart-batch", "hi")


def test_endpoint_create_with_a_name_only(client: FakeClient) -> None:
    client.batch_endpoints.answers["begin_create_or_update"] = lambda ep: Done(Shown(name=ep.name))
    assert (
        run(client, "batch-endpoint", "create", "--name", "bare-ep", "--set", "description=x") == 0
    )
    ((_, (endpoint,), _),) = client.batch_endpoints.calls
    assert (endpoint.name, endpoint.description) == ("bare-ep", "x")


def test_endpoint_update_sets_the_default_deployment(client: FakeClient) -> None:
    current = {
        "id": "/subscriptions/s/batchEndpoints/ep",
        "name": "ep",
        "description": "kept",
        "tags": {"a": "b"},
        "auth_mode": "aad_token",
        "defaults": {"deployment_name": "old"},
        "properties": {},
        "scoring_uri": "http://h/endpoints/ep/jobs",
        "provisioning_state": "Succeeded",
    }
    client.batch_endpoints.answers["get"] = lambda name: Shown(**current)
    client.batch_endpoints.answers["begin_create_or_update"] = lambda ep: Done(Shown(name=ep.name))
    argv = ["batch-endpoint", "update", "-n", "ep", "--set", "defaults.deployment_name=new"]
    assert run(client, *argv) == 0
    (_, (endpoint,), _) = client.batch_endpoints.calls[-1]
    assert endpoint.name == "ep"
    assert endpoint.description == "kept"
    assert endpoint.defaults.deployment_name == "new"


def test_endpoint_update_refuses_unknown_keys(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.batch_endpoints.answers["get"] = lambda name: Shown(name=name)
    assert run(client, "batch-endpoint", "update", "-n", "ep", "--set", "scoring_uri=x") == 1
    err = capsys.readouterr().err
    assert "unknown key 'scoring_uri'" in err and "defaults" in err


def test_deployment_create_with_endpoint_and_set_default(
    client: FakeClient, tmp_path: Path
) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    spec = tmp_path / "deployment.yml"
    spec.write_text(
        "name: dep\nendpoint_name: from-file\ntype: model\nmodel: azureml:m@latest\n"
        "compute: azureml:batch-cluster\nsettings:\n  mini_batch_size: 2\n"
    )
    client.batch_deployments.answers["begin_create_or_update"] = lambda dep, **kw: Done(
        Shown(name=dep.name)
    )
    argv = ["batch-deployment", "create", "-f", str(spec), "-e", "other", "--set-default"]
    assert run(client, *argv) == 0
    ((_, (deployment,), kwargs),) = client.batch_deployments.calls
    assert (deployment.name, deployment.endpoint_name) == ("dep", "other")
    assert kwargs == {"set_default": True}


# -- delete ---------------------------------------------------------------------------------


def test_delete_asks_first_and_does_nothing_without_a_terminal(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(client, "batch-endpoint", "delete", "-n", "ep") == 1
    assert "--yes" in capsys.readouterr().err
    assert client.batch_endpoints.calls == []


def test_delete_with_yes(client: FakeClient) -> None:
    client.batch_endpoints.answers["begin_delete"] = lambda name: Done()
    client.batch_deployments.answers["begin_delete"] = lambda name, endpoint_name: Done()
    assert run(client, "batch-endpoint", "delete", "-n", "ep", "--yes") == 0
    assert run(client, "batch-deployment", "delete", "-n", "d", "-e", "ep", "-y") == 0
    assert client.batch_endpoints.calls == [("begin_delete", ("ep",), {})]
    assert client.batch_deployments.calls == [("begin_delete", ("d",), {"endpoint_name": "ep"})]


# -- invoke ---------------------------------------------------------------------------------


def invoked(client: FakeClient) -> dict[str, Any]:
    ((_, args, kwargs),) = [c for c in client.batch_endpoints.calls if c[0] == "invoke"]
    assert args == ()
    return kwargs


@pytest.fixture
def invoking(client: FakeClient) -> FakeClient:
    client.batch_endpoints.answers["invoke"] = lambda **kw: Shown(
        name="job-1", status="Queued", endpoint_name=kw["endpoint_name"]
    )
    return client


def test_invoke_with_input_prints_the_job(
    invoking: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(invoking, "batch-endpoint", "invoke", "--name", "ep", "--input", "azureml:d:1") == 0
    kwargs = invoked(invoking)
    assert kwargs["endpoint_name"] == "ep"
    assert kwargs["deployment_name"] is None
    # A data asset keeps its own type: the SDK looks it up.
    assert kwargs["input"] == Input(type=None, path="azureml:d:1")
    assert kwargs["inputs"] is None
    assert kwargs["outputs"] is None and kwargs["params_override"] is None
    assert printed(capsys) == {"name": "job-1", "status": "Queued", "endpoint_name": "ep"}


def test_invoke_with_set_pairs_and_a_deployment(invoking: FakeClient) -> None:
    dataset = "/subscriptions/s/resourceGroups/r/workspaces/w/data/heart/versions/1"
    argv = [
        "batch-endpoint",
        "invoke",
        "--name",
        "ep",
        "--deployment-name",
        "dep",
        "--set",
        "inputs.heart_dataset.type",
        "uri_folder",
        "inputs.heart_dataset.path",
        dataset,
        "--set",
        "outputs.score.path",
        f"{DATASTORE_ID}/paths/batch-jobs/x",
    ]
    assert run(invoking, *argv) == 0
    kwargs = invoked(invoking)
    assert kwargs["deployment_name"] == "dep"
    assert kwargs["inputs"] == {"heart_dataset": Input(type="uri_folder", path=dataset)}
    assert kwargs["outputs"] == {
        "score": Output(type="uri_folder", path=f"{DATASTORE_ID}/paths/batch-jobs/x")
    }


def test_invoke_with_a_literal_by_set(invoking: FakeClient) -> None:
    argv = ["batch-endpoint", "invoke", "-n", "ep", "--set", "inputs.score_mode.type", "string"]
    assert run(invoking, *argv, "inputs.score_mode.default", "append") == 0
    assert invoked(invoking)["inputs"] == {"score_mode": Input(type="string", default="append")}


def test_invoke_with_a_file(invoking: FakeClient, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    spec = tmp_path / "inputs.yml"
    spec.write_text(
        "inputs:\n  input_data: {type: uri_folder, path: data}\n"
        "  score_mode: {type: string, default: append}\n"
        "outputs:\n  scores: {type: uri_folder, mode: upload}\n"
    )
    assert run(invoking, "batch-endpoint", "invoke", "-n", "ep", "--file", str(spec)) == 0
    kwargs = invoked(invoking)
    assert kwargs["inputs"] == {
        "input_data": Input(type="uri_folder", path=str(tmp_path / "data")),
        "score_mode": Input(type="string", default="append"),
    }
    assert kwargs["outputs"] == {"scores": Output(type="uri_folder", mode="upload")}


def test_invoke_overrides_become_params_override(invoking: FakeClient) -> None:
    argv = [
        "batch-endpoint",
        "invoke",
        "-n",
        "ep",
        "--input",
        "https://acct.blob.core.windows.net/c/data",
        "--set",
        "retry_settings.max_retries=1",
        "--mini-batch-size",
        "20",
        "--instance-count",
        "2",
        "--output-file-name",
        "p.csv",
        "--output-path",
        "azureml://datastores/other/paths/out/x",
        "--job-name",
        "my-job",
        "--experiment-name",
        "exp",
    ]
    assert run(invoking, *argv) == 0
    kwargs = invoked(invoking)
    assert kwargs["input"] == Input(
        type="uri_folder", path="https://acct.blob.core.windows.net/c/data"
    )
    assert kwargs["params_override"] == [
        {"retry_settings.max_retries": 1},
        {"mini_batch_size": 20},
        {"compute.instance_count": 2},
        {"output_file_name": "p.csv"},
        {"output_dataset.datastore_id": "azureml:other"},
        {"output_dataset.path": "out/x"},
    ]
    assert (kwargs["job_name"], kwargs["experiment_name"]) == ("my-job", "exp")


def test_invoke_refuses_an_output_path_outside_a_datastore(
    invoking: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["batch-endpoint", "invoke", "-n", "ep", "--input", "azureml:d:1"]
    assert run(invoking, *argv, "--output-path", "/tmp/out") == 1
    assert "--output-path '/tmp/out' is not accepted" in capsys.readouterr().err
    assert [c for c in invoking.batch_endpoints.calls if c[0] == "invoke"] == []


def test_invoke_needs_an_endpoint(invoking: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(invoking, "batch-endpoint", "invoke", "--input", "azureml:d:1") == 1
    assert "needs --name" in capsys.readouterr().err


def test_invoke_stream_follows_the_job(invoking: FakeClient) -> None:
    invoking.jobs.answers["get"] = lambda name: Shown(name=name, status="Completed")
    argv = ["batch-endpoint", "invoke", "-n", "ep", "--input", "azureml:d:1", "--stream"]
    assert run(invoking, *argv) == 0
    assert invoking.jobs.calls[0] == ("stream", ("job-1",), {})


# -- jobs -----------------------------------------------------------------------------------


def test_job_stream_exit_code_follows_the_status(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.jobs.answers["get"] = lambda name: Shown(
        name=name, status="Failed", error={"code": "UserError", "message": "run() failed"}
    )
    assert run(client, "job", "stream", "-n", "j") == 1
    assert capsys.readouterr().err == "ERROR: Job j ended Failed: run() failed\n"
    client.jobs.answers["get"] = lambda name: Shown(name=name, status="Completed")
    assert run(client, "job", "stream", "-n", "j") == 0


def test_job_download(client: FakeClient, tmp_path: Path) -> None:
    argv = [
        "job",
        "download",
        "-n",
        "j",
        "--output-name",
        "score",
        "--download-path",
        str(tmp_path),
    ]
    assert run(client, *argv) == 0
    assert client.jobs.calls == [
        ("download", ("j",), {"download_path": str(tmp_path), "output_name": "score", "all": False})
    ]


def test_job_list_filters_on_the_server(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.jobs.answers["list"] = lambda **kw: [Shown(name="a"), Shown(name="b")]
    assert run(client, "job", "list", "--query", "[].name") == 0
    assert printed(capsys) == ["a", "b"]
    argv = ["job", "list", "-e", "ep", "-d", "dep", "--status", "failed", "--max-results", "5"]
    assert run(client, *argv) == 0
    assert client.jobs.calls == [
        (
            "list",
            (),
            {"endpoint_name": None, "deployment_name": None, "status": None, "limit": None},
        ),
        (
            "list",
            (),
            {"endpoint_name": "ep", "deployment_name": "dep", "status": "Failed", "limit": 5},
        ),
    ]


def test_list_jobs_of_an_endpoint_and_of_a_deployment(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.batch_endpoints.answers["list_jobs"] = lambda name: [Shown(name="a"), Shown(name="b")]
    client.batch_deployments.answers["list_jobs"] = lambda endpoint, name: [Shown(name="a")]
    assert run(client, "batch-endpoint", "list-jobs", "-n", "ep", "--query", "[].name") == 0
    assert printed(capsys) == ["a", "b"]
    assert run(client, "batch-deployment", "list-jobs", "-n", "d1", "-e", "ep") == 0
    assert printed(capsys) == [{"name": "a"}]
    assert client.batch_deployments.calls == [("list_jobs", ("ep",), {"name": "d1"})]


# -- server and quickstart ------------------------------------------------------------------


def test_server_start_passes_its_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sluiceway.server

    seen: dict[str, Any] = {}
    monkeypatch.setattr(sluiceway.server, "run", lambda **kwargs: seen.update(kwargs))
    argv = ["server", "start", "--host", "0.0.0.0", "--port", "0", "--home", str(tmp_path)]
    assert main(argv) == 0
    assert seen == {"host": "0.0.0.0", "port": 0, "home": tmp_path}
    assert main(["server", "start"]) == 0
    assert seen == {"host": None, "port": None, "home": None}


def test_quickstart_runs_the_example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sluiceway.quickstart

    seen: dict[str, Any] = {}

    def fake_run(console: Any, home: Path | None = None) -> int:
        seen["home"] = home
        return 3

    monkeypatch.setattr(sluiceway.quickstart, "run", fake_run)
    assert main(["quickstart", "--home", str(tmp_path)]) == 3
    assert seen == {"home": tmp_path}
