"""The API's contract, against a real server: ``/openapi.json`` says which status codes each
route answers, with the server's one error shape; a method a path does not take is a 405 that
says which it does (``Allow``); and Schemathesis, following the document's links from one
route's answer to the next (create an endpoint, then read, change and delete it; invoke, then
read and cancel the job), finds no server error and no answer the document does not describe.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sluiceway.server.openapi import LINKS
from tests.acceptance.test_access import AZURE_ROUTES, FILTERED_LISTS, OPEN_TO_ANY_TOKEN, PUBLIC
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    create_script_deployment,
    invoke_body,
    upload_folder,
    write_numbered_files,
)

ERROR_REF = "#/components/schemas/ErrorResponse"
# The Azure ML dialect's routes answer errors in Azure's shape.
AZURE_ERROR_REF = "#/components/schemas/AzureErrorResponse"
BEARER = {"HTTPBearer": []}
WORKSPACE = (
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.MachineLearningServices/workspaces/{workspace}"
)
METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # A throwaway workspace whose scheduler runs nothing: jobs stay queued.
    home = tmp_path_factory.mktemp("contract") / "home"
    running = start_server(home, extra_env={"SLUICEWAY_SCHEDULER_ENABLED": "false"})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def document(contract_server: RunningServer) -> dict[str, Any]:
    answer = httpx.get(f"{contract_server.url}/openapi.json").raise_for_status()
    spec: dict[str, Any] = answer.json()
    return spec


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                yield method.upper(), path, operation


def test_every_route_documents_its_error_answers(document: dict[str, Any]) -> None:
    open_to_any = {(m, p) for m, p in OPEN_TO_ANY_TOKEN} | FILTERED_LISTS
    checked = 0
    for method, path, operation in _operations(document):
        where = f"{method} {path}"
        responses = operation["responses"]
        codes = set(responses)
        assert "422" not in codes, where  # the server answers 400, never 422
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        public = (method, path) in PUBLIC
        if not public:
            assert operation.get("security") == [BEARER], where
            assert "401" in codes, where
            # A 403 wherever a role is checked: everywhere but the routes open to any token.
            assert ("403" in codes) is ((method, path) not in open_to_any), where
        elif "security" in operation:
            # A public route with a credential of its own (an identity header, a signature).
            assert BEARER not in operation["security"], where
            assert "401" in codes, where
        if any(p["in"] == "path" for p in parameters):
            assert "404" in codes, where
        if has_body:
            assert {"400", "413", "415"} <= codes, where
        if parameters:
            assert "400" in codes, where
        if method != "GET" and not public:
            assert "409" in codes, where
        assert any(code.startswith("2") for code in codes), where
        ref = AZURE_ERROR_REF if path.startswith(AZURE_ROUTES) else ERROR_REF
        for code, response in responses.items():
            if code.startswith("4") and path != "/oauth2/token":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ref}, (where, code)
        checked += 1
    assert checked > 80
    schemas = document["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    detail = schemas["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "target"}
    # Azure's: what azure-core reads, error.code and error.message, is required.
    assert schemas["AzureErrorResponse"]["required"] == ["error"]
    azure = schemas["AzureErrorDetail"]
    assert azure["required"] == ["code", "message"]
    assert {"code", "message", "target", "details"} <= set(azure["properties"])
    token = document["paths"]["/oauth2/token"]["post"]["responses"]
    assert set(token["401"]["content"]["application/json"]["schema"]["required"]) == {
        "error",
        "error_description",
    }


def test_error_answers_have_the_documented_shape(
    contract_server: RunningServer, document: dict[str, Any]
) -> None:
    # One of each kind, checked against the document's own schema: the REST face's, and the
    # Azure ML dialect's.
    schemas = json.dumps(document["components"]["schemas"])
    defs = json.loads(schemas.replace("#/components/schemas/", "#/$defs/"))
    validators = {
        name: jsonschema_rs.validator_for({"$ref": f"#/$defs/{name}", "$defs": defs})
        for name in ("ErrorResponse", "AzureErrorResponse")
    }
    url = contract_server.url
    with contract_server.client() as owner:
        ws = owner.get("/azureml/discovery").json()["workspaceId"]
        version = {"api-version": "2024-10-01"}
        answers = [
            owner.get("/datastores/nope"),  # 404
            owner.get("/jobs", params={"limit": "abc"}),  # 400
            httpx.get(f"{url}/whoami"),  # 401
            owner.delete("/identities/owner"),  # 409: the last owner
            owner.put("/datastores/x", content=b"x", headers={"Content-Type": "text/plain"}),
            owner.post("/datastores/x"),  # 405
        ]
        azure = [
            owner.get(f"{ws}/datastores/nope", params=version),  # 404
            owner.get(ws.replace("/workspaces/", "/workspaces/x"), params=version),  # 404
            owner.get(f"{ws}/batchEndpoints", params={"api-version": "v1.0"}),  # 400
            owner.get(f"{ws}/batchEndpoints"),  # 400: no api-version
            owner.get(f"{ws}/computes/cpu", params=version),  # 400: not supported
            owner.patch(f"{ws}/computes/cpu", params=version),  # 400: not supported
            httpx.get(f"{url}{ws}", params=version),  # 401
            httpx.get(f"{url}/msi/token", params={"api-version": "2019-08-01"}),  # 401
            httpx.get(f"{url}/azureml/logs/job/x.txt"),  # 401: not signed
            owner.put(f"{ws}/batchEndpoints/x", params=version, content=b"x"),  # 415
            owner.post(f"{ws}/datastores/x", params=version),  # 405
            owner.post(f"{url}/azureml/operations/x"),  # 405
        ]
    assert sorted(r.status_code for r in answers) == [400, 401, 404, 405, 409, 415]
    assert [r.status_code for r in azure] == [*[404] * 2, *[400] * 4, *[401] * 3, 415, 405, 405]
    assert azure[3].json()["error"]["target"] == "query.api-version"
    for shape, responses in (("ErrorResponse", answers), ("AzureErrorResponse", azure)):
        for response in responses:
            body = response.json()
            errors = [e.message for e in validators[shape].iter_errors(body)]
            assert not errors, (response.status_code, body, errors)
    assert azure[-2].headers["allow"] == "GET, PUT"


def _fill(path: str, operations: dict[str, Any]) -> str:
    """The path with each parameter filled: a value of its enum if it has one (the Azure ML
    dialect's asset type), else any."""
    enums = {
        p["name"]: p["schema"]["enum"]
        for operation in operations.values()
        for p in operation.get("parameters", [])
        if p["in"] == "path" and "enum" in p.get("schema", {})
    }

    def value(name: str) -> str:
        return "a/b" if name == "path" else str(enums.get(name, ["x"])[0])

    return re.sub(r"{(\w+)}", lambda m: value(m.group(1)), path)


def test_a_method_a_path_does_not_take_is_a_405_with_allow(
    contract_server: RunningServer, document: dict[str, Any]
) -> None:
    anonymous = httpx.Client(base_url=contract_server.url, timeout=30)
    with contract_server.client() as owner, anonymous:
        for path, operations in document["paths"].items():
            documented = {m.upper() for m in operations if m in METHODS}
            for method in sorted({m.upper() for m in METHODS} - documented)[:2]:
                for client in (owner, anonymous):
                    r = client.request(method, _fill(path, operations))
                    assert r.status_code == 405, (method, path, r.text)
                    allow = {m.strip() for m in r.headers["allow"].split(",")}
                    assert allow == documented, (method, path, allow)
                    error = r.json()["error"]
                    assert error["code"] == "MethodNotAllowed", error
                    assert method in error["message"] and "accepted" in error["message"]


# -- stateful fuzzing ----------------------------------------------------------------------------

SCENARIOS = 100  # per group, of up to STEPS linked calls; about 80 s on a small machine
STEPS = 10
BUDGET_SECONDS = 80
RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Known:
    """What exists on the fuzzed server, for requests whose body must agree with their URL."""

    model: str  # azureml:<name>:1
    code: str  # a folder with score.py
    data: str  # a folder of two files
    root: str  # a folder local datastores may be in
    mlflow_model: str  # azureml:<name>:1, which a deployment takes without code
    workspace: dict[str, str]  # the Azure ML dialect's subscription, group and workspace


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Known]]:
    root = tmp_path_factory.mktemp("stateful")
    (root / "local").mkdir()
    env = {"SLUICEWAY_SCHEDULER_ENABLED": "false", "SLUICEWAY_LOCAL_DATASTORE_ROOTS": str(root)}
    server = start_server(root / "home", extra_env=env)
    try:
        with server.client() as owner:
            create_script_deployment(owner, root, "seeded", "blue")
            deployment = owner.get("/batch-endpoints/seeded/deployments/blue").json()
            write_numbered_files(root / "data", 2)
            data = upload_folder(owner, root / "data", "stateful/data")
            (root / "mlmodel").mkdir()
            (root / "mlmodel" / "MLmodel").write_text("flavors:\n  python_function: {}\n")
            mlmodel = upload_folder(owner, root / "mlmodel", "stateful/mlmodel")
            r = owner.post("/models", json={"name": "mlm", "type": "mlflow_model", "path": mlmodel})
            assert r.status_code == 201, r.text
            ws = owner.get("/azureml/discovery").raise_for_status().json()["workspaceId"]
        _, _, subscription, _, group, *_, workspace = ws.split("/")
        coordinates = {"subscription": subscription, "group": group, "workspace": workspace}
        code = deployment["code_configuration"]["code"]
        known = Known(
            deployment["model"], code, data, str(root / "local"), "azureml:mlm:1", coordinates
        )
        yield server, known
    finally:
        stop_server(server)


ROLES = ("owner", "contributor", "invoker", "reader")
# Routes that create what their body (and URL) name.
NAMED_BY_BODY = {"POST /identities", "POST /data", "POST /models"}
NAMED_BY_URL = {
    "PUT /batch-endpoints/{name}": "name",
    "PUT /datastores/{name}": "name",
    "PUT /batch-endpoints/{endpoint}/deployments/{name}": "name",
}


def _valid(value: object) -> str:
    """A name every name rule accepts, the same for the same generated value."""
    return "n" + hashlib.sha1(repr(value).encode()).hexdigest()[:10]


def _agree(case: schemathesis.Case, known: Known) -> None:
    """Make a generated creation request valid where the document cannot say what is valid
    (names, a body that agrees with its URL, what exists), so that scenarios get past the
    first call and follow the links; every other request goes as generated."""
    label, body = case.operation.label, case.body
    if label == "POST /endpoints/{endpoint}/jobs":
        case.path_parameters = {**(case.path_parameters or {}), "endpoint": "seeded"}
        if not isinstance(body, dict) or "properties" not in body:
            case.body = invoke_body({"d": {"JobInputType": "UriFolder", "Uri": known.data}})
        return
    path = case.path_parameters
    if "{workspace}" in label:
        _agree_azure(case, known)
        return
    if label == "PUT /datastores/{name}/files/{path}" and path is not None:
        path["name"] = "workspaceblobstore"
    if not isinstance(body, dict):
        return
    if label in NAMED_BY_URL and path is not None:
        path[NAMED_BY_URL[label]] = body["name"] = _valid(path[NAMED_BY_URL[label]])
    if label in NAMED_BY_BODY:
        body["name"] = _valid(body.get("name"))
    if label == "PUT /datastores/{name}":
        case.body = {"name": body["name"], "type": "local", "root": known.root}
    elif label in ("POST /data", "POST /models"):
        body["path"] = known.data
        body.pop("version", None)
    elif label == "POST /roles":
        body.update(role=ROLES[len(str(body.get("role"))) % len(ROLES)], scope="workspace")
    elif label == "PUT /batch-endpoints/{endpoint}/deployments/{name}" and path is not None:
        body.update(endpoint_name=path["endpoint"], model=known.model)
        body["code_configuration"] = {"code": known.code, "scoring_script": "score.py"}


def _agree_azure(case: schemathesis.Case, known: Known) -> None:
    """The same for the Azure ML dialect: the workspace's own path and an api-version it takes
    (which a link carries on), and ARM bodies of what exists."""
    path = case.path_parameters = {**(case.path_parameters or {}), **known.workspace}
    if "api-version" in (case.query or {}) or case.method == "PUT":
        case.query = {**(case.query or {}), "api-version": "2024-10-01"}
    if case.method != "PUT":
        return
    generated = case.body if isinstance(case.body, dict) else {}
    tags = generated.get("tags") if isinstance(generated.get("tags"), dict) else {}
    path["name"] = _valid(path.get("name"))
    props: dict[str, Any]
    if case.operation.path.endswith("/deployments/{name}"):
        props = {"model": {"assetId": known.mlflow_model}, "compute": "cpu"}
    elif case.operation.path.endswith("/versions/{version}"):
        path["version"] = "1"
        kind = path.get("kind")
        props = {"dataUri": known.data} if kind == "data" else {"modelUri": known.data}
    else:
        props = {"description": str(generated.get("description"))[:100]}
    case.body = {"tags": tags, "properties": props}


# Schemathesis starts scenarios at POSTs and at GETs without path parameters, and at other
# linked operations only when there are none: so the links are followed in three groups.
GROUPS = {
    "assets and identities": [
        "create_data", "get_data", "data_versions", "create_model", "get_model",
        "model_versions", "create_component", "get_component", "component_versions",
        "create_identity", "get_identity", "create_token", "rotate_secret", "delete_identity",
        "assign_role", "list_roles", "remove_role",
    ],
    "endpoints and datastores": [
        "put_endpoint", "get_endpoint", "patch_endpoint", "endpoint_jobs", "delete_endpoint",
        "list_deployments", "put_deployment", "get_deployment", "deployment_jobs",
        "delete_deployment", "invoked_jobs", "put_datastore", "get_datastore", "list_files",
        "delete_datastore", "put_file", "get_file", "put_upload", "get_upload",
    ],
    # With the producer of the endpoint an invoke names, so that invoke starts scenarios.
    "jobs": ["put_endpoint", "invoke", "get_job", "list_logs", "cancel_job", "rerun_failed"],
    "azure ml": [
        "azureml_put_endpoint", "azureml_get_endpoint", "azureml_delete_endpoint",
        "azureml_list_deployments", "azureml_put_deployment", "azureml_get_deployment",
        "azureml_delete_deployment", "azureml_endpoint_jobs", "azureml_put_version",
        "azureml_get_container", "azureml_list_versions", "azureml_get_version",
    ],
}  # fmt: skip


def test_stateful_fuzzing_finds_no_server_error(fuzzed: tuple[RunningServer, Known]) -> None:
    server, known = fuzzed
    linked = {link.source for link in LINKS} | {link.target for link in LINKS}
    assert linked == {op for group in GROUPS.values() for op in group}, linked
    document = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=30)
    # Only the document's own links: they are what is under test, not Schemathesis' guesses.
    document.config.phases.stateful.inference.algorithms = []
    failures: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    token = {"Authorization": f"Bearer {server.token}"}
    scenarios = 0
    started = time.monotonic()
    for operations in GROUPS.values():
        machine = document.include(operation_id=operations).as_state_machine()

        class AsOwner(machine):  # type: ignore[misc, valid-type]
            def before_call(self, case: schemathesis.Case) -> None:
                _agree(case, known)
                case.headers = {**(case.headers or {}), **token}

            def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
                return {"base_url": server.url, "timeout": 30}

            def validate_response(
                self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any
            ) -> None:
                statuses[case.operation.label, response.status_code] += 1
                try:
                    case.validate_response(
                        response,
                        checks=RESPONSE_CHECKS,
                        transport_kwargs=kwargs or None,
                        recorder=self.recorder,
                    )
                except Exception as exc:  # every failure of the run, not the first
                    failures.append(f"{case.operation.label} -> {response.status_code}: {exc}")

            def teardown(self) -> None:
                nonlocal scenarios
                scenarios += 1
                super().teardown()

        # A scenario's calls change the server, so the same draws can meet another state the
        # next time: Hypothesis then stops a run as flaky. Runs go on, with the next seed,
        # until the group's scenarios have run or its time is up.
        goal, seed = scenarios + SCENARIOS, 0
        group_end = time.monotonic() + BUDGET_SECONDS / len(GROUPS)
        while scenarios < goal and time.monotonic() < group_end:
            try:
                run_state_machine_as_test(
                    hypothesis.seed(seed)(AsOwner),
                    settings=settings(
                        max_examples=goal - scenarios,
                        stateful_step_count=STEPS,
                        deadline=None,
                        database=None,
                        phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck),
                    ),
                )
            except (Flaky, Unsatisfiable):
                pass
            seed += 1
    elapsed = time.monotonic() - started
    print(f"{scenarios} scenarios, {statuses.total()} calls in {elapsed:.0f} s")
    print(sorted(statuses.items()))
    log = (server.home / "server.log").read_text()[-5000:]
    assert not failures, "\n\n".join(dict.fromkeys(failures)) + "\n\nserver log:\n" + log
    # The links were followed: what one call made, the next read, changed or deleted.
    reached = {label for (label, status), _ in statuses.items() if status < 300}
    for followed in (
        "GET /data/{name}/versions/{version}",
        "POST /identities/{name}/tokens",
        "GET /batch-endpoints/{name}",
        "DELETE /batch-endpoints/{name}",
        "GET /datastores/{name}/files/{path}",
        "GET /jobs/{name}",
        "POST /jobs/{name}/cancel",
        f"PUT {WORKSPACE}/batchEndpoints/{{endpoint}}/deployments/{{name}}",
        f"GET {WORKSPACE}/batchEndpoints/{{name}}",
        f"DELETE {WORKSPACE}/batchEndpoints/{{name}}",
        f"GET {WORKSPACE}/{{kind}}/{{name}}/versions",
    ):
        assert followed in reached, sorted(reached)
    assert scenarios >= len(GROUPS) * SCENARIOS // 4, scenarios
