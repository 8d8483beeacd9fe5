"""Environments on a real server: built with uv (offline, from wheels the tests make), shared by
content, deployments Failed with the cause when a build cannot succeed, and pipeline steps run
in their component's environment."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluiceway import (
    BatchDeployment,
    BatchEndpoint,
    CodeConfiguration,
    CommandComponent,
    Environment,
    Input,
    MLClient,
    Model,
    PipelineComponentBatchDeployment,
    load_component,
    load_environment,
)
from sluiceway.constants import AssetTypes
from sluiceway.errors import ConflictError
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    DS,
    invoke_body,
    read_output,
    unique,
    upload_folder,
    wait_for_job,
    write_numbered_files,
)
from tests.unit.test_environment_cache import make_wheel

PACKAGE = "sluiceway_env_probe"  # in no environment but the ones these tests build
SCRIPT = f"""\
import sys
import {PACKAGE}

def init():
    pass

def run(mini_batch):
    return [f"{{{PACKAGE}.VALUE}} {{sys.prefix}}" for _ in mini_batch]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server that builds offline: local wheels only, no package index."""
    running = start_server(
        tmp_path_factory.mktemp("env-home"),
        extra_env={"SLUICEWAY_ENVIRONMENT_BUILD_OFFLINE": "true"},
    )
    yield running
    stop_server(running)


@pytest.fixture
def ml_client(server: RunningServer) -> Iterator[MLClient]:
    with MLClient(endpoint=server.url, token=server.token) as client:
        client.jobs._out = lambda line: None
        yield client


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_wheel(tmp_path_factory.mktemp("wheels"), PACKAGE, body="VALUE = 'probe-1'\n")


def _project(root: Path, wheel: Path, python: str = "3.11") -> Path:
    """An environment YAML, Azure's shape, whose conda file installs the wheel."""
    (root / "environment" / "wheels").mkdir(parents=True)
    (root / "environment" / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    (root / "environment" / "requirements.txt").write_text(f"./wheels/{wheel.name}\n")
    (root / "environment" / "conda.yaml").write_text(
        textwrap.dedent(
            f"""
            name: probe-env
            channels: [conda-forge]
            dependencies:
              - python={python}
              - pip
              - pip:
                - -r requirements.txt
            """
        )
    )
    (root / "env.yml").write_text(
        textwrap.dedent(
            """
            name: probe-env
            image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
            conda_file: environment/conda.yaml
            description: the probe package, from a local wheel
            """
        )
    )
    return root / "env.yml"


def _deployment(
    ml_client: MLClient, root: Path, endpoint: str, name: str, environment: Any
) -> BatchDeployment:
    code = root / f"code-{name}"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    model = root / f"model-{name}"
    model.mkdir()
    (model / "weights.txt").write_text("1\n")
    return ml_client.batch_deployments.begin_create_or_update(
        BatchDeployment(
            name=name,
            endpoint_name=endpoint,
            model=Model(name=f"{endpoint}-{name}", path=model),
            code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
            environment=environment,
            mini_batch_size=5,
            retry_settings={"max_retries": 0, "timeout": 60},
        )
    ).result(timeout=300)


def _invoke(ml_client: MLClient, endpoint: str, deployment: str, data: Path) -> str:
    job = ml_client.batch_endpoints.invoke(
        endpoint_name=endpoint,
        deployment_name=deployment,
        input=Input(type=AssetTypes.URI_FOLDER, path=str(data)),
    )
    assert job.name is not None
    return job.name


def test_a_script_runs_with_a_package_only_its_environment_has(
    server: RunningServer, ml_client: MLClient, wheel: Path, tmp_path: Path
) -> None:
    env_file = _project(tmp_path, wheel)
    # As a user: sluice environment create -f env.yml, then show it.
    done = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli.main", "environment", "create", "-f", str(env_file)],
        env=server.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["name"] == "probe-env" and created["build"]["status"] == "NotStarted"
    (pip,) = [d for d in created["conda_file"]["dependencies"] if isinstance(d, dict)]
    assert pip["pip"][0].startswith(f"{DS}/azureml-registry/")  # the wheel, uploaded and pinned
    assert created["image"].startswith("mcr.microsoft.com/")

    endpoint = unique("env")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    shared = _deployment(ml_client, tmp_path, endpoint, "shared", "azureml:probe-env@latest")
    assert shared.provisioning_state == "Succeeded"
    assert shared.environment == f"azureml:probe-env:{created['version']}"
    data = tmp_path / "data"
    write_numbered_files(data, 3)
    with server.client() as http:
        job = wait_for_job(http, _invoke(ml_client, endpoint, "shared", data))
        assert job["status"] == "Completed", job
        (rows,) = read_output(http, job["name"]).values()
    # Rows of the probe package, from a worker whose interpreter is the environment's.
    assert rows.count("probe-1 ") == 3
    assert f"/environments/{shared.environment_build['content_hash']}/venv" in rows

    # The same content inline: the same build, not a second one.
    inline = _deployment(
        ml_client,
        tmp_path,
        endpoint,
        "inline",
        Environment(conda_file=tmp_path / "environment" / "conda.yaml"),
    )
    with server.client() as http:
        one = http.get(f"/batch-endpoints/{endpoint}/deployments/shared").json()
        two = http.get(f"/batch-endpoints/{endpoint}/deployments/inline").json()
        assert one["environment_build"]["content_hash"] == two["environment_build"]["content_hash"]
        log = http.get(f"/environments/probe-env/versions/{created['version']}/build-log").text
    assert log.count("Build succeeded") == 1
    assert "is recorded and not run" in log
    assert inline.provisioning_state == "Succeeded"
    assert inline.environment_build is not None
    by_hash = ml_client.environments.get_build_log(
        content_hash=inline.environment_build["content_hash"]
    )
    assert by_hash == log

    # Without the environment, the same script cannot import the package.
    _deployment(ml_client, tmp_path, endpoint, "bare", None)
    with server.client() as http:
        bare = wait_for_job(http, _invoke(ml_client, endpoint, "bare", data))
        assert bare["status"] == "Failed"
        logs = http.get(f"/jobs/{bare['name']}/logs").json()
        errors = json.dumps(bare) + "".join(
            http.get(f"/jobs/{bare['name']}/logs/{f['path']}").text for f in logs
        )
    assert f"No module named '{PACKAGE}'" in errors


@pytest.mark.parametrize(
    ("dependencies", "cause"),
    [
        (["python=3.11", "numpy=1.26", "gdal-for-nowhere=3.8"], "'gdal-for-nowhere'"),
        (["python=3.7"], "python=3.7 is asked for"),
        (["python=3.11", {"pip": ["no-such-package-for-sluiceway==1.0"]}], "no-such-package"),
    ],
    ids=["unknown-conda-package", "wrong-python", "broken-pip-requirement"],
)
def test_a_build_that_cannot_succeed_leaves_the_deployment_failed(
    server: RunningServer,
    ml_client: MLClient,
    tmp_path: Path,
    dependencies: list[Any],
    cause: str,
) -> None:
    endpoint = unique("envfail")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    deployment = _deployment(
        ml_client, tmp_path, endpoint, "broken", {"conda_file": {"dependencies": dependencies}}
    )
    assert deployment.provisioning_state == "Failed"
    with server.client() as http:
        shown = http.get(f"/batch-endpoints/{endpoint}/deployments/broken").json()
    assert cause in shown["environment_build"]["log_tail"]
    data = tmp_path / "data"
    write_numbered_files(data, 1)
    with pytest.raises(ConflictError, match="the build of its environment failed"):
        _invoke(ml_client, endpoint, "broken", data)


def test_a_pipeline_step_runs_in_its_components_environment(
    server: RunningServer, ml_client: MLClient, wheel: Path, tmp_path: Path
) -> None:
    name = unique("step-env")
    environment = load_environment(_project(tmp_path / "p", wheel))
    environment.name = name
    ml_client.environments.create_or_update(environment)
    code = tmp_path / "code"
    code.mkdir()
    (code / "step.py").write_text(
        f"import pathlib, sys, {PACKAGE}\n"
        f"pathlib.Path(sys.argv[1], 'probe.txt').write_text({PACKAGE}.VALUE)\n"
    )
    with server.client() as http:
        code_uri = upload_folder(http, code, f"code/{name}")
        pipeline = {
            "name": name,
            "type": "pipeline",
            "outputs": {"result": {"type": "uri_folder"}},
            "jobs": {
                "probe": {
                    "component": {
                        "type": "command",
                        "code": code_uri,
                        "command": "python step.py ${{outputs.out}}",
                        "environment": f"azureml:{name}@latest",
                        "outputs": {"out": {"type": "uri_folder"}},
                    },
                    "outputs": {"out": "${{parent.outputs.result}}"},
                }
            },
        }
        endpoint = unique("plenv")
        http.put(f"/batch-endpoints/{endpoint}", json={"name": endpoint}).raise_for_status()
        body = {
            "name": "pipe",
            "endpoint_name": endpoint,
            "type": "pipeline",
            "component": pipeline,
        }
        r = http.put(f"/batch-endpoints/{endpoint}/deployments/pipe", json=body)
        assert r.status_code == 201, r.text
        r = http.post(f"/endpoints/{endpoint}/jobs", json=invoke_body({}))
        assert r.status_code in (200, 201, 202), r.text
        job = wait_for_job(http, r.json()["name"], timeout=300)
        assert job["status"] == "Completed", job
        listing = http.get(f"/jobs/{job['name']}/outputs/result").raise_for_status().json()
        files = {f["path"] for f in listing["files"]}
        assert "probe.txt" in files
        text = http.get(f"/jobs/{job['name']}/outputs/result/files/probe.txt").text
    assert text == "probe-1"


def test_a_components_inline_environment_has_its_local_wheels_uploaded(
    server: RunningServer,
    ml_client: MLClient,
    wheel: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command component's inline environment names a local conda file whose pip list has a
    local wheel: component create and pipeline deployment create upload the wheel (paths
    relative to the component's file, from another folder), and the step runs with it."""
    project = tmp_path / "project"
    _project(project, wheel)
    (project / "code").mkdir()
    (project / "code" / "step.py").write_text(
        f"import pathlib, sys, {PACKAGE}\n"
        f"pathlib.Path(sys.argv[1], 'probe.txt').write_text({PACKAGE}.VALUE)\n"
    )
    name = unique("inline-wheel")
    (project / "component.yml").write_text(
        textwrap.dedent(
            f"""
            name: {name}
            type: command
            code: ./code
            command: python step.py ${{{{outputs.out}}}}
            environment:
              conda_file: ./environment/conda.yaml
            outputs:
              out: {{type: uri_folder}}
            """
        )
    )
    (project / "pipeline.yml").write_text(
        textwrap.dedent(
            f"""
            name: {name}-pipeline
            type: pipeline
            outputs:
              result: {{type: uri_folder}}
            jobs:
              probe:
                component: ./component.yml
                outputs:
                  out: ${{{{parent.outputs.result}}}}
            """
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    registered = ml_client.components.create_or_update(load_component(project / "component.yml"))
    assert isinstance(registered, CommandComponent)
    assert isinstance(registered.environment, dict)
    (pip,) = [
        d for d in registered.environment["conda_file"]["dependencies"] if isinstance(d, dict)
    ]
    assert pip["pip"][0].startswith(f"{DS}/") and pip["pip"][0].endswith(wheel.name), pip

    endpoint = unique("inline-wheel-ep")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    ml_client.batch_deployments.begin_create_or_update(
        PipelineComponentBatchDeployment(
            name="pipe", endpoint_name=endpoint, component=str(project / "pipeline.yml")
        )
    ).result(timeout=300)
    with server.client() as http:
        r = http.post(f"/endpoints/{endpoint}/jobs", json=invoke_body({}))
        assert r.status_code in (200, 201, 202), r.text
        job = wait_for_job(http, r.json()["name"], timeout=300)
        assert job["status"] == "Completed", job
        text = http.get(f"/jobs/{job['name']}/outputs/result/files/probe.txt").text
    assert text == "probe-1"


def test_an_mlflow_deployment_can_build_from_its_models_requirements(
    server: RunningServer, ml_client: MLClient, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: x\n")
    (model_dir / "requirements.txt").write_text("mlflow-for-nowhere==9.9\n")
    endpoint = unique("envml")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    model = Model(name=f"{endpoint}-model", path=model_dir, type=AssetTypes.MLFLOW_MODEL)
    deployment = ml_client.batch_deployments.begin_create_or_update(
        BatchDeployment(
            name="from-model",
            endpoint_name=endpoint,
            model=model,
            properties={"mlflow_environment": "model"},
        )
    ).result(timeout=300)
    # The model's requirements, shown as the deployment's environment, built (here, offline,
    # that fails and says which package).
    assert deployment.environment is not None and not isinstance(deployment.environment, str)
    assert dict(deployment.environment)["requirements"] == ["mlflow-for-nowhere==9.9"]
    assert deployment.provisioning_state == "Failed"
    assert deployment.environment_build is not None
    assert "mlflow-for-nowhere" in deployment.environment_build["log_tail"]
    with server.client() as http:
        r = http.put(
            f"/batch-endpoints/{endpoint}/deployments/bad",
            json={
                "name": "bad",
                "endpoint_name": endpoint,
                "model": f"azureml:{endpoint}-model:1",
                "properties": {"mlflow_environment": "conda"},
            },
        )
    assert r.status_code == 400
    assert "accepted: server" in r.json()["error"]["message"]


def _scoring_pins() -> list[str]:
    """What the MLflow scorer and a pickled scikit-learn model need, pinned to this test's
    versions (so the offline build finds them in uv's cache)."""
    from importlib.metadata import version

    names = ("numpy", "pandas", "scikit-learn", "scipy", "pyyaml")
    return [f"{name}=={version(name)}" for name in names]


def _index_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _index_reachable(), reason="the package index is not reachable")
def test_a_package_from_the_index(tmp_path: Path) -> None:
    """Built with the package index (this server is not offline): inflection, a small
    pure-Python package the server does not have."""
    online = start_server(tmp_path / "home")
    try:
        with MLClient(endpoint=online.url, token=online.token) as client:
            client.jobs._out = lambda line: None
            endpoint = unique("envnet")
            client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
            script = "import inflection\n\ndef init():\n    pass\n\ndef run(mini_batch):\n"
            script += "    return [inflection.camelize('batch_row') for _ in mini_batch]\n"
            code = tmp_path / "code"
            code.mkdir()
            (code / "score.py").write_text(script)
            (tmp_path / "model").mkdir()
            (tmp_path / "model" / "w.txt").write_text("1\n")
            deployment = client.batch_deployments.begin_create_or_update(
                BatchDeployment(
                    name="net",
                    endpoint_name=endpoint,
                    model=Model(name=f"{endpoint}-model", path=tmp_path / "model"),
                    code_configuration=CodeConfiguration(code=code, scoring_script="score.py"),
                    environment={"requirements": ["inflection==0.5.1"]},
                )
            ).result(timeout=300)
            assert deployment.provisioning_state == "Succeeded", deployment.environment_build
            data = tmp_path / "data"
            write_numbered_files(data, 2)
            with online.client() as http:
                job = wait_for_job(http, _invoke(client, endpoint, "net", data))
                assert job["status"] == "Completed", job
                (rows,) = read_output(http, job["name"]).values()
            assert rows.count("BatchRow") == 2
    finally:
        stop_server(online)


@pytest.mark.skipif(not _index_reachable(), reason="the package index is not reachable")
def test_an_mlflow_deployment_scores_in_its_environment(tmp_path: Path) -> None:
    """An MLflow deployment that names an environment, and one whose environment is built
    from the model's own requirements.txt (mlflow_environment: model), score with the built
    environment's interpreter (one build: the same content), as the deployment in the
    server's environment does, row for row. Built with the package index: uv's cache alone
    cannot resolve NumPy, pandas and scikit-learn offline."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.0, 1.5, 1.0]})
    model_dir = tmp_path / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's hints about type hints and pickles
        import mlflow.sklearn

        mlflow.sklearn.save_model(
            LinearRegression().fit(frame, frame["a"] * 2 + frame["b"]),
            str(model_dir),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
        )
    pins = _scoring_pins()
    (model_dir / "requirements.txt").write_text("\n".join(pins) + "\n")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        frame.iloc[2 * i : 2 * i + 2].to_csv(data / f"part-{i}.csv", index=False)

    server = start_server(tmp_path / "home")
    try:
        with MLClient(endpoint=server.url, token=server.token) as ml_client:
            ml_client.jobs._out = lambda line: None
            _score_in_environments(server, ml_client, model_dir, data, pins)
    finally:
        stop_server(server)


def _score_in_environments(
    server: RunningServer, ml_client: MLClient, model_dir: Path, data: Path, pins: list[str]
) -> None:
    endpoint = unique("envmlflow")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    model = ml_client.models.create_or_update(
        Model(name=f"{endpoint}-model", path=model_dir, type=AssetTypes.MLFLOW_MODEL)
    )

    def deploy(name: str, **fields: Any) -> Any:
        return ml_client.batch_deployments.begin_create_or_update(
            BatchDeployment(
                name=name,
                endpoint_name=endpoint,
                model=f"azureml:{model.name}:{model.version}",
                retry_settings={"max_retries": 0, "timeout": 120},
                **fields,
            )
        ).result(timeout=600)

    named = deploy("named", environment={"requirements": pins})
    from_model = deploy("frommodel", properties={"mlflow_environment": "model"})
    deploy("server")
    assert named.provisioning_state == from_model.provisioning_state == "Succeeded"
    assert dict(from_model.environment)["requirements"] == pins
    content_hash = named.environment_build["content_hash"]
    assert from_model.environment_build["content_hash"] == content_hash
    interpreter = f"environments/{content_hash}/venv/bin/python"

    outputs = {}
    with server.client() as http:
        for name in ("named", "frommodel", "server"):
            job = wait_for_job(http, _invoke(ml_client, endpoint, name, data))
            assert job["status"] == "Completed", job
            outputs[name] = read_output(http, job["name"])
            logs = http.get(f"/jobs/{job['name']}/logs").json()
            stdout = "".join(
                http.get(f"/jobs/{job['name']}/logs/{f['path']}").text
                for f in logs
                if "user/stdout/" in f["path"]
            )
            assert (interpreter in stdout) == (name != "server"), (name, stdout)
    assert outputs["named"] == outputs["frommodel"] == outputs["server"]
    (rows,) = outputs["server"].values()
    assert len(rows.splitlines()) == 4


def test_archive_restore_and_delete(server: RunningServer, ml_client: MLClient) -> None:
    name = unique("lifecycle")
    ops = ml_client.environments
    first = ops.create_or_update(Environment(name=name, requirements=["numpy"]))
    again = ops.create_or_update(Environment(name=name, requirements=["numpy"]))
    second = ops.create_or_update(Environment(name=name, requirements=["numpy", "six"]))
    assert (first.version, again.version, second.version) == ("1", "1", "2")
    with pytest.raises(ConflictError, match="versions do not change"):
        ops.create_or_update(Environment(name=name, version="1", requirements=["six"]))
    ops.archive(name, version="2")
    assert ops.get(name).version == "1"
    assert name not in {e.name for e in ops.list() if e.version == "2"}
    ops.restore(name, version="2")
    assert ops.get(name, label="latest").version == "2"

    endpoint = unique("envuse")
    ml_client.batch_endpoints.begin_create_or_update(BatchEndpoint(name=endpoint)).result()
    with server.client() as http:
        model = unique("m")
        folder = f"{DS}/{model}/"
        http.put(f"/datastores/workspaceblobstore/files/{model}/w.txt", content=b"1")
        http.post("/models", json={"name": model, "path": folder}).raise_for_status()
        http.put(f"/datastores/workspaceblobstore/files/{model}-code/s.py", content=b"x = 1\n")
        body = {
            "name": "uses",
            "endpoint_name": endpoint,
            "model": f"azureml:{model}:1",
            "code_configuration": {"code": f"{DS}/{model}-code/", "scoring_script": "s.py"},
            "environment": f"azureml:{name}:1",
        }
        r = http.put(f"/batch-endpoints/{endpoint}/deployments/uses", json=body)
        assert r.status_code == 201, r.text
        bad = http.post("/environments", json={"name": name, "requirements": ["-e ."]})
        assert bad.status_code == 400 and "'-e .' is not accepted" in bad.text
    with pytest.raises(ConflictError, match=f"{endpoint}/uses"):
        ops.delete(name)
    ops.delete(name, version="2")
    assert [e.version for e in ops.list(name=name)] == ["1"]
