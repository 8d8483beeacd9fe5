"""The API's contract, against a real server: ``/openapi.json`` says which status codes each
route answers, with the server's one error shape; a method a path does not take is a 405 that
says which it does (``Allow``); and Schemathesis, following the document's links from one
route's answer to the next (create an endpoint, then read, change and delete it; invoke, then
read and cancel the job), finds no server error and no answer the document does not describe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.acceptance.test_access import FILTERED_LISTS, OPEN_TO_ANY_TOKEN, PUBLIC
from tests.integration.conftest import RunningServer, start_server, stop_server

ERROR_REF = "#/components/schemas/ErrorResponse"
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
            assert operation.get("security") == [{"HTTPBearer": []}], where
            assert "401" in codes, where
            # A 403 wherever a role is checked: everywhere but the routes open to any token.
            assert ("403" in codes) is ((method, path) not in open_to_any), where
        else:
            assert "security" not in operation, where
        if any(p["in"] == "path" for p in parameters):
            assert "404" in codes, where
        if has_body:
            assert {"400", "413", "415"} <= codes, where
        if parameters:
            assert "400" in codes, where
        if method != "GET" and not public:
            assert "409" in codes, where
        assert any(code.startswith("2") for code in codes), where
        for code, response in responses.items():
            if code.startswith("4") and path != "/oauth2/token":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (where, code)
        checked += 1
    assert checked > 50
    error = document["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "target"}
    token = document["paths"]["/oauth2/token"]["post"]["responses"]
    assert set(token["401"]["content"]["application/json"]["schema"]["required"]) == {
        "error",
        "error_description",
    }


def test_error_answers_have_the_documented_shape(
    contract_server: RunningServer, document: dict[str, Any]
) -> None:
    # One of each kind, checked against the document's own schema.
    schemas = json.dumps(document["components"]["schemas"])
    defs = json.loads(schemas.replace("#/components/schemas/", "#/$defs/"))
    validator = jsonschema_rs.validator_for({"$ref": "#/$defs/ErrorResponse", "$defs": defs})
    with contract_server.client() as owner:
        answers = [
            owner.get("/datastores/nope"),  # 404
            owner.get("/jobs", params={"limit": "abc"}),  # 400
            httpx.get(f"{contract_server.url}/whoami"),  # 401
            owner.delete("/identities/owner"),  # 409: the last owner
            owner.put("/datastores/x", content=b"x", headers={"Content-Type": "text/plain"}),
            owner.post("/datastores/x"),  # 405
        ]
    assert sorted(r.status_code for r in answers) == [400, 401, 404, 405, 409, 415]
    for response in answers:
        body = response.json()
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (response.status_code, body, errors)


def _fill(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: "a/b" if m.group(1) == "path" else "x", path)


def test_a_method_a_path_does_not_take_is_a_405_with_allow(
    contract_server: RunningServer, document: dict[str, Any]
) -> None:
    anonymous = httpx.Client(base_url=contract_server.url, timeout=30)
    with contract_server.client() as owner, anonymous:
        for path, operations in document["paths"].items():
            documented = {m.upper() for m in operations if m in METHODS}
            for method in sorted({m.upper() for m in METHODS} - documented)[:2]:
                for client in (owner, anonymous):
                    r = client.request(method, _fill(path))
                    assert r.status_code == 405, (method, path, r.text)
                    allow = {m.strip() for m in r.headers["allow"].split(",")}
                    assert allow == documented, (method, path, allow)
                    error = r.json()["error"]
                    assert error["code"] == "MethodNotAllowed", error
                    assert method in error["message"] and "accepted" in error["message"]
