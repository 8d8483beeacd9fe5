"""The REST API with a real server, real worker processes and real files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningServer
from tests.integration.helpers import (
    DS,
    create_script_deployment,
    invoke_body,
    read_output,
    unique,
    upload_folder,
    wait_for_job,
    write_numbered_files,
)


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_healthz_needs_no_token(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/whoami"),
        ("GET", "/datastores"),
        ("GET", "/jobs"),
        ("POST", "/endpoints/x/jobs"),
        ("PUT", "/datastores/workspaceblobstore/files/a.txt"),
        ("GET", "/batch-endpoints"),
    ],
)
def test_routes_need_a_valid_token(
    server: RunningServer, headers: dict[str, str], method: str, path: str
) -> None:
    response = httpx.request(method, f"{server.url}{path}", headers=headers, json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"


def test_a_token_from_another_workspace_is_refused(server: RunningServer, tmp_path: Path) -> None:
    from sluiceway.auth.tokens import TokenIssuer

    forged = TokenIssuer(b"0" * 32, issuer="sluiceway:default").issue("someone")
    response = httpx.get(f"{server.url}/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_token_file_is_private(server: RunningServer) -> None:
    assert (server.home / "token").stat().st_mode & 0o777 == 0o600


def test_paths_cannot_leave_the_datastore(server: RunningServer, client: httpx.Client) -> None:
    for path in ("..%2F..%2Fescape.txt", "a/..%2F..%2F..%2Fescape.txt"):
        response = client.put(f"/datastores/workspaceblobstore/files/{path}", content=b"x")
        assert response.status_code == 400, response.text
    assert not (server.home / "escape.txt").exists()
    assert not (server.home.parent / "escape.txt").exists()


def test_custom_script_runs_in_mini_batches_in_input_order(
    client: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("echo")
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "echo-dpl",
        settings={"mini_batch_size": 2, "max_concurrency_per_instance": 2},
    )
    names = write_numbered_files(tmp_path / "data", 10)
    data_uri = upload_folder(client, tmp_path / "data", f"data/{endpoint}")

    response = client.post(
        f"/endpoints/{endpoint}/jobs",
        json=invoke_body({"my_data": {"JobInputType": "UriFolder", "Uri": data_uri}}),
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["properties"]["status"] in {"Queued", "Preparing", "Running"}
    assert job["name"]
    assert job["properties"]["InputData"]["my_data"]["Uri"] == data_uri

    done = wait_for_job(client, job["name"])
    assert done["status"] == "Completed", done
    progress = done["progress"]
    assert progress["mini_batches_total"] == 5
    assert progress["mini_batches_succeeded"] == 5
    assert progress["items_succeeded"] == 10

    files = read_output(client, job["name"])
    assert list(files) == ["predictions.csv"]
    lines = files["predictions.csv"].splitlines()
    assert [line.split(" ")[0] for line in lines] == names
    # Files 0-1, 2-3, ... went together: five mini-batches of two, in order.
    batches = [line.split(" ")[2] for line in lines]
    assert batches == [f"batch-of-{names[i - i % 2]}" for i in range(10)]
    assert all(line.endswith(" 2") for line in lines)

    logs = {f["path"] for f in client.get(f"/jobs/{job['name']}/logs").json()}
    assert "job_progress_overview.txt" in logs
    overview = client.get(f"/jobs/{job['name']}/logs/job_progress_overview.txt").text
    assert "5 mini-batches" in overview


def test_uri_file_output_and_overrides(client: httpx.Client, tmp_path: Path) -> None:
    endpoint = unique("echo")
    create_script_deployment(client, tmp_path, endpoint, "echo-dpl")
    write_numbered_files(tmp_path / "data", 3)
    data_uri = upload_folder(client, tmp_path / "data", f"data/{endpoint}")
    target = f"{DS}/results/{endpoint}/scores.txt"
    body = invoke_body(
        {"heart_dataset": {"JobInputType": "UriFolder", "Uri": data_uri}},
        {"score": {"JobOutputType": "UriFile", "Uri": target}},
        MiniBatchSize=1,
    )
    job = client.post(f"/endpoints/{endpoint}/jobs", json=body).raise_for_status().json()
    done = wait_for_job(client, job["name"])
    assert done["status"] == "Completed", done
    assert done["progress"]["mini_batches_total"] == 3
    assert done["outputs"]["score"]["path"] == target
    text = client.get(f"/datastores/workspaceblobstore/files/results/{endpoint}/scores.txt").text
    assert len(text.splitlines()) == 3

    # The same output again: outputs are never overwritten, and no job is queued.
    before = len(client.get("/jobs").json())
    again = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert again.status_code == 409
    assert "already exists" in again.json()["error"]["message"]
    assert len(client.get("/jobs").json()) == before


def test_camel_case_body_and_single_file_input(client: httpx.Client, tmp_path: Path) -> None:
    endpoint = unique("echo")
    create_script_deployment(client, tmp_path, endpoint, "echo-dpl")
    write_numbered_files(tmp_path / "data", 2)
    upload_folder(client, tmp_path / "data", f"data/{endpoint}")
    body = {
        "properties": {
            "inputData": {
                "one": {"jobInputType": "UriFile", "uri": f"{DS}/data/{endpoint}/file-01.txt"}
            }
        }
    }
    job = (
        client.post(
            f"/endpoints/{endpoint}/jobs",
            json=body,
            headers={"azureml-model-deployment": "echo-dpl"},
        )
        .raise_for_status()
        .json()
    )
    done = wait_for_job(client, job["name"])
    assert done["status"] == "Completed", done
    assert read_output(client, job["name"])["predictions.csv"].startswith("file-01.txt value-1")


def test_failing_script_fails_the_job_with_the_contract_message(
    client: httpx.Client, tmp_path: Path
) -> None:
    endpoint = unique("bad")
    create_script_deployment(
        client,
        tmp_path,
        endpoint,
        "bad-dpl",
        script="def init():\n    pass\n\ndef run(mini_batch):\n    return None\n",
        settings={"retry_settings": {"max_retries": 1, "timeout": 30}},
    )
    write_numbered_files(tmp_path / "data", 2)
    data_uri = upload_folder(client, tmp_path / "data", f"data/{endpoint}")
    job = (
        client.post(
            f"/endpoints/{endpoint}/jobs",
            json=invoke_body({"d": {"JobInputType": "UriFolder", "Uri": data_uri}}),
        )
        .raise_for_status()
        .json()
    )
    done = wait_for_job(client, job["name"])
    assert done["status"] == "Failed"
    assert done["error"]["message"].startswith("No succeeded mini batch item returned from run()")
    assert done["progress"]["mini_batches_retried"] == 1
    errors = client.get(f"/jobs/{job['name']}/logs/user/error.txt").text
    assert "should return a list or a pandas DataFrame" in errors


@pytest.fixture(scope="module")
def endpoint(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("bad")
    name = unique("checks")
    with server.client() as client:
        create_script_deployment(client, tmp, name, "only")
        write_numbered_files(tmp / "data", 2)
        upload_folder(client, tmp / "data", f"data/{name}")
        table = tmp / "table"
        table.mkdir()
        (table / "MLTable").write_text("paths:\n  - pattern: ./*.csv\n")
        table_uri = upload_folder(client, table, f"tables/{name}")
        client.post(
            "/data", json={"name": f"{name}-table", "type": "mltable", "path": table_uri}
        ).raise_for_status()
    return name


class TestBadInvocations:
    """Each answers a 4xx naming the problem, and leaves no job behind."""

    @pytest.mark.parametrize(
        ("case", "status", "words"),
        [
            ("unknown endpoint", 404, "does not exist"),
            ("unknown deployment", 404, "not found for endpoint"),
            ("missing input", 400, "exactly one data input"),
            ("unsupported form", 400, "accepted"),
            ("local path", 400, "local path"),
            ("mltable asset", 400, "MLTable"),
            ("missing folder", 400, "does not exist"),
            ("unknown data asset", 404, "does not exist"),
            ("bad input type", 400, "JobInputType"),
            ("literal input", 400, "literal"),
            ("bad override", 400, "MiniBatchSize"),
            ("bad job name", 400, "Job name"),
            ("https output", 400, "datastore path"),
        ],
    )
    def test_bad_invocation(
        self, client: httpx.Client, endpoint: str, case: str, status: int, words: str
    ) -> None:
        good = {"d": {"JobInputType": "UriFolder", "Uri": f"{DS}/data/{endpoint}/"}}
        url = f"/endpoints/{endpoint}/jobs"
        headers: dict[str, str] = {}
        body = invoke_body(good)
        if case == "unknown endpoint":
            url = "/endpoints/no-such-endpoint/jobs"
        elif case == "unknown deployment":
            headers = {"azureml-model-deployment": "nope"}
        elif case == "missing input":
            body = invoke_body({})
        elif case == "unsupported form":
            body = invoke_body({"d": {"JobInputType": "UriFolder", "Uri": "ftp://host/data"}})
        elif case == "local path":
            body = invoke_body({"d": {"JobInputType": "UriFolder", "Uri": "/etc"}})
        elif case == "mltable asset":
            body = invoke_body(
                {"d": {"JobInputType": "UriFolder", "Uri": f"azureml:{endpoint}-table@latest"}}
            )
        elif case == "missing folder":
            body = invoke_body({"d": {"JobInputType": "UriFolder", "Uri": f"{DS}/nothing/here/"}})
        elif case == "unknown data asset":
            body = invoke_body({"d": {"JobInputType": "UriFolder", "Uri": "azureml:ghost:3"}})
        elif case == "bad input type":
            body = invoke_body({"d": {"JobInputType": "Folder", "Uri": f"{DS}/data/"}})
        elif case == "literal input":
            body = invoke_body({**good, "n": {"JobInputType": "Literal", "Value": 3}})
        elif case == "bad override":
            body = invoke_body(good, MiniBatchSize="many")
        elif case == "bad job name":
            body = {**invoke_body(good), "name": "no spaces allowed"}
        elif case == "https output":
            body = invoke_body(
                good, {"score": {"JobOutputType": "UriFile", "Uri": "https://example.com/x.csv"}}
            )
        before = client.get("/jobs").json()
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == status, response.text
        message = response.json()["error"]["message"]
        assert words.lower() in message.lower(), message
        assert client.get("/jobs").json() == before

    def test_no_default_deployment(self, client: httpx.Client) -> None:
        name = unique("empty")
        client.put(f"/batch-endpoints/{name}", json={"name": name}).raise_for_status()
        response = client.post(f"/endpoints/{name}/jobs", json=invoke_body({}))
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("No valid deployments to route to.")

    def test_duplicate_job_name(self, client: httpx.Client, endpoint: str) -> None:
        body = {
            **invoke_body({"d": {"JobInputType": "UriFolder", "Uri": f"{DS}/data/{endpoint}/"}}),
            "name": unique("named"),
        }
        assert client.post(f"/endpoints/{endpoint}/jobs", json=body).status_code == 201
        again = client.post(f"/endpoints/{endpoint}/jobs", json=body)
        assert again.status_code == 409
        assert "already exists" in again.json()["error"]["message"]

    def test_a_job_name_longer_than_the_table_holds_is_400(
        self, client: httpx.Client, endpoint: str
    ) -> None:
        body = {
            **invoke_body({"d": {"JobInputType": "UriFolder", "Uri": f"{DS}/data/{endpoint}/"}}),
            "name": "j" * 65,
        }
        response = client.post(f"/endpoints/{endpoint}/jobs", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["target"] == "name" and "up to 64" in error["message"]
        assert (
            client.post(f"/endpoints/{endpoint}/jobs", json={**body, "name": "j" * 64}).status_code
            == 201
        )


def test_resources_show_and_validation(client: httpx.Client) -> None:
    bad = client.put("/batch-endpoints/x", json={"name": "x"})
    assert bad.status_code == 400
    assert "3-32" in bad.json()["error"]["message"]
    missing = client.get("/batch-endpoints/never-made")
    assert missing.status_code == 404
    assert client.get("/data/ghost/labels/latest").status_code == 404
    typo = client.put("/batch-endpoints/good-name", json={"name": "good-name", "nmae": "x"})
    assert typo.status_code == 400
    assert "nmae" in typo.json()["error"]["message"]
    assert client.get("/batch-endpoints/good-name").status_code == 404
