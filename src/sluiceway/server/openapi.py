"""The OpenAPI document: every route's error answers and the links between routes.

A route's error answers follow from what it declares, so no route lists them by hand:

- ``401`` when it needs a bearer token (its ``security``: every route that depends on the
  caller, so all but ``/healthz``, ``/oauth2/token`` and the Azure ML dialect's cloud
  metadata, ADFS configuration and discovery) or a credential of its own (below);
- ``403`` then too, since such a route declares the action it needs
  (:func:`~sluiceway.server.access.allowed`) or hands the caller to a service that checks it,
  unless it declares itself open to any identity
  (:data:`~sluiceway.server.access.ANY_IDENTITY`: its answer holds only what the caller may
  read);
- ``404`` when it names a resource: a path parameter, or a body or query that names others;
- ``400`` when it takes any input (a parameter or a body): the server answers a request that
  does not match the document with a 400, never FastAPI's 422;
- ``409`` when it changes state; ``413`` and ``415`` when it takes a body.

A route that declares its own 400 (the token endpoint, whose errors have OAuth2's shape) gets
only the body limits' 413 and 415, which are answered before any route.

A route may answer for a credential of its own instead of a bearer token (the managed-identity
header, a log link's signature): it declares that credential as its ``security``, and gets the
401 (and 403) of it as a bearer route does.

Every error answer has the server's one error shape, :class:`ErrorResponse`, except the
token endpoint's, which are OAuth2's and declared on that route, and those of the Azure ML
dialect's routes (tagged :data:`AZURE_TAG`), which have Azure's shape,
:class:`AzureErrorResponse` (what azure-core reads: ``error.code`` and ``error.message``).
Responses also carry OpenAPI links (:data:`LINKS`): the resource one route answers with is the
input of others (create an endpoint, then get, patch or delete it; invoke, then get or cancel
the job), which is what a client, or a stateful test, follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from sluiceway.server.access import ANY_IDENTITY_KEY

__all__ = [
    "AZURE_TAG",
    "LINKS",
    "AzureErrorDetail",
    "AzureErrorResponse",
    "ErrorDetail",
    "ErrorResponse",
    "Link",
    "error_schema",
    "install",
]

#: The tag of the Azure ML dialect's routes (:mod:`sluiceway.server.arm`).
AZURE_TAG = "azure ml"


class ErrorDetail(BaseModel):
    code: str = Field(description="What kind of error: UserError, NotFound, Forbidden, ...")
    message: str = Field(description="What was wrong, with the value, and what is accepted.")
    target: str | None = Field(description="The field, parameter or header at fault, if one.")


class ErrorResponse(BaseModel):
    """The body of every error answer (but the token endpoint's)."""

    error: ErrorDetail


class AzureErrorDetail(BaseModel):
    code: str = Field(description="What kind of error: UserError, NotFound, Forbidden, ...")
    message: str = Field(description="What was wrong, with the value, and what is accepted.")
    target: str | None = Field(
        default=None, description="The field, parameter or header at fault, if one."
    )
    details: list[AzureErrorDetail] | None = Field(
        default=None, description="Further errors, each of the same shape."
    )


class AzureErrorResponse(BaseModel):
    """The body of an error answer of the Azure ML dialect: Azure Resource Manager's, of which
    azure-core reads ``error.code`` and ``error.message``."""

    error: AzureErrorDetail


#: The error schema of each dialect's routes, by the routes' tag; the REST face's otherwise.
_ERROR_SCHEMAS: dict[str, type[BaseModel]] = {AZURE_TAG: AzureErrorResponse}


def error_schema(operation: dict[str, Any]) -> str:
    """The name of the schema of ``operation``'s error answers."""
    for tag in operation.get("tags", []):
        if tag in _ERROR_SCHEMAS:
            return _ERROR_SCHEMAS[tag].__name__
    return ErrorResponse.__name__


_DESCRIPTIONS = {
    400: "The request is malformed or a value is not accepted; the message names the field.",
    401: "No credential (a bearer token, or the route's own), or one that is not valid.",
    403: "The caller's roles do not allow this; the message names the role that would.",
    404: "A resource the request names does not exist.",
    409: "The resource exists already, or is in a state that forbids the change.",
    413: "The request body is larger than the server accepts.",
    415: "The request body is not JSON.",
}
_WRITES = {"post", "put", "patch", "delete"}


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: the ``status`` answer of route ``source`` gives ``target`` its
    ``parameters`` (runtime expressions such as ``$response.body#/name``)."""

    source: str
    status: int
    target: str
    parameters: dict[str, str]


def _links() -> list[Link]:
    body_name = {"name": "$response.body#/name"}
    endpoint = {"name": "$response.body#/name"}
    as_endpoint = {"endpoint": "$response.body#/name"}
    deployment = {"endpoint": "$request.path.endpoint", "name": "$response.body#/name"}
    version = {"name": "$response.body#/name", "version": "$response.body#/version"}
    links: list[Link] = []

    def add(
        sources: tuple[str, ...], statuses: tuple[int, ...], target: str, p: dict[str, str]
    ) -> None:
        links.extend(Link(s, status, target, p) for s in sources for status in statuses)

    created = (200, 201)
    for target in ("get_endpoint", "patch_endpoint", "endpoint_jobs", "delete_endpoint"):
        add(("put_endpoint",), created, target, endpoint)
    for target in ("list_deployments", "put_deployment", "invoke", "invoked_jobs"):
        add(("put_endpoint",), created, target, as_endpoint)
    for target in ("get_deployment", "deployment_jobs", "delete_deployment"):
        add(("put_deployment",), created, target, deployment)
    for target in ("get_datastore", "list_files", "delete_datastore"):
        add(("put_datastore",), created, target, body_name)
    add(
        ("put_file",),
        (200,),
        "get_file",
        {"name": "$request.path.name", "path": "$request.path.path"},
    )
    add(("put_upload",), (200,), "get_upload", {"content_hash": "$request.path.content_hash"})
    for kind in ("data", "model", "component"):
        source = f"create_{kind}"
        add((source,), created, f"get_{kind}", version)
        add((source,), created, f"{kind}_versions", body_name)
    for target in ("get_identity", "create_token", "rotate_secret", "delete_identity"):
        add(("create_identity",), (201,), target, body_name)
    add(("rotate_secret",), (200,), "create_token", body_name)
    for target in ("get_job", "list_logs", "cancel_job", "rerun_failed"):
        add(("invoke",), (201,), target, body_name)
    add(("assign_role",), created, "list_roles", {"identity": "$response.body#/identity"})
    # The Azure ML dialect: what a PUT made, at the same workspace and api-version.
    arm = {
        "subscription": "$request.path.subscription",
        "group": "$request.path.group",
        "workspace": "$request.path.workspace",
    }
    versioned = {**arm, "api-version": "$request.query.api-version"}
    for target in ("azureml_get_endpoint", "azureml_delete_endpoint"):
        add(("azureml_put_endpoint",), created, target, {**versioned, "name": "$request.path.name"})
    for target in ("azureml_list_deployments", "azureml_put_deployment"):
        add(
            ("azureml_put_endpoint",),
            created,
            target,
            {**versioned, "endpoint": "$request.path.name"},
        )
    add(
        ("azureml_put_endpoint",),
        created,
        "azureml_endpoint_jobs",
        {**arm, "endpoint": "$request.path.name"},
    )
    arm_deployment = {
        **versioned,
        "endpoint": "$request.path.endpoint",
        "name": "$request.path.name",
    }
    for target in ("azureml_get_deployment", "azureml_delete_deployment"):
        add(("azureml_put_deployment",), created, target, arm_deployment)
    arm_asset = {**versioned, "kind": "$request.path.kind", "name": "$request.path.name"}
    for target in ("azureml_get_container", "azureml_list_versions"):
        add(("azureml_put_version",), created, target, arm_asset)
    add(
        ("azureml_put_version",),
        created,
        "azureml_get_version",
        {**arm_asset, "version": "$request.path.version"},
    )
    add(
        ("assign_role",),
        created,
        "remove_role",
        {
            "identity": "$response.body#/identity",
            "role": "$response.body#/role",
            "scope": "$response.body#/scope",
        },
    )
    return links


LINKS = _links()


def also_200(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that creates (its ``status_code``, 201) or answers 200 with
    ``model`` when the resource existed: updated, or the same."""
    return {200: {"model": model, "description": "It existed: updated, or unchanged."}}


def error_statuses(method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses of the operation ``operation`` (as FastAPI generated it), from what
    its route declares: its caller, parameters, body and method."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    writes = method.lower() in _WRITES
    names_others = has_body or any(p["in"] == "query" for p in parameters)
    statuses: list[int] = []
    if "400" in operation["responses"]:  # the token endpoint's own, in OAuth2's shape
        return [413, 415] if has_body else []
    if parameters or has_body:
        statuses.append(400)
    if operation.get("security"):
        statuses.append(401)
        if not operation.get(ANY_IDENTITY_KEY, False):
            statuses.append(403)
    if any(p["in"] == "path" for p in parameters) or (names_others and writes):
        statuses.append(404)
    if writes:
        statuses.append(409)
    if has_body:
        statuses += [413, 415]
    return statuses


def _document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [ErrorResponse, *_ERROR_SCHEMAS.values()]
    for model in models:
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    operations: dict[str, dict[str, Any]] = {}
    for by_method in schema["paths"].values():
        for method, operation in by_method.items():
            assert operation["operationId"] not in operations, "route names must be unique"
            operations[operation["operationId"]] = operation
            responses = operation["responses"]
            responses.pop("422", None)  # the server answers 400 for what FastAPI calls 422
            ref = {"$ref": f"#/components/schemas/{error_schema(operation)}"}
            content = {"application/json": {"schema": ref}}
            for status in error_statuses(method, operation):
                responses.setdefault(
                    str(status), {"description": _DESCRIPTIONS[status], "content": content}
                )
    for link in LINKS:
        assert link.target in operations, f"no route {link.target!r}"
        response = operations[link.source]["responses"].get(str(link.status))
        assert response is not None, f"{link.source} does not answer {link.status}"
        response.setdefault("links", {})[link.target] = {
            "operationId": link.target,
            "parameters": link.parameters,
        }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def operation_id(route: APIRoute) -> str:
    """A route's operation id is its function's name (unique across the app)."""
    return route.name


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) the document described above."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
