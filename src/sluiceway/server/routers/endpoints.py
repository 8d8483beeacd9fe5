"""Batch endpoints, their deployments, and invoking them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response, status

from sluiceway.auth.policy import Action
from sluiceway.schemas.endpoints import (
    BatchDeploymentCreate,
    BatchDeploymentOut,
    BatchEndpointCreate,
    BatchEndpointOut,
    BatchEndpointPatch,
)
from sluiceway.schemas.invoke import parse_invoke_body
from sluiceway.schemas.jobs import JobOut
from sluiceway.server.access import ANY_IDENTITY, allowed
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.openapi import also_200

router = APIRouter(tags=["batch endpoints"])
READ = [allowed(Action.READ, endpoint="name")]
MANAGE = [allowed(Action.MANAGE, endpoint="name")]
# Deployment routes name the endpoint ``endpoint`` and the deployment ``name``.
READ_ENDPOINT = [allowed(Action.READ, endpoint="endpoint")]
MANAGE_ENDPOINT = [allowed(Action.MANAGE, endpoint="endpoint")]


@router.put("/batch-endpoints/{name}", status_code=201, responses=also_200(BatchEndpointOut))
def put_endpoint(
    name: str,
    body: BatchEndpointCreate,
    ws: WorkspaceDep,
    principal: PrincipalDep,
    response: Response,
) -> BatchEndpointOut:
    """Create an endpoint (``manage`` on the workspace) or update one (``manage`` on it)."""
    from sluiceway.errors import ValidationError

    if body.name != name:
        raise ValidationError(
            f"The body names endpoint {body.name!r}, but the URL names {name!r}.", target="name"
        )
    out, created = ws.endpoints.create_or_update(body, principal)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.patch("/batch-endpoints/{name}", dependencies=MANAGE)
def patch_endpoint(name: str, ws: WorkspaceDep, changes: BatchEndpointPatch) -> BatchEndpointOut:
    """Change an endpoint's ``description``, ``tags`` or ``defaults``; checked as ``PUT`` is."""
    return ws.endpoints.update(name, changes)


@router.get("/batch-endpoints", openapi_extra=ANY_IDENTITY)
def list_endpoints(ws: WorkspaceDep, caller: PrincipalDep) -> list[BatchEndpointOut]:
    """The endpoints the caller may read."""
    return ws.endpoints.list_all(caller)


@router.get("/batch-endpoints/{name}", dependencies=READ)
def get_endpoint(name: str, ws: WorkspaceDep) -> BatchEndpointOut:
    return ws.endpoints.get(name)


@router.delete(
    "/batch-endpoints/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=MANAGE
)
def delete_endpoint(name: str, ws: WorkspaceDep) -> None:
    ws.endpoints.delete(name)


@router.get("/batch-endpoints/{name}/jobs", dependencies=READ)
def endpoint_jobs(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> list[JobOut]:
    """The endpoint's jobs the caller may read: its own, or all with ``read jobs`` on it."""
    ws.endpoints.endpoint(name)
    return ws.jobs.list_all(caller, endpoint_name=name)


@router.put(
    "/batch-endpoints/{endpoint}/deployments/{name}",
    status_code=201,
    responses=also_200(BatchDeploymentOut),
    dependencies=MANAGE_ENDPOINT,
)
def put_deployment(
    endpoint: str,
    name: str,
    body: BatchDeploymentCreate,
    ws: WorkspaceDep,
    principal: PrincipalDep,
    response: Response,
    set_default: bool = False,
) -> BatchDeploymentOut:
    out, created = ws.endpoints.create_or_update_deployment(
        endpoint, name, body, principal, set_default=set_default
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.get("/batch-endpoints/{endpoint}/deployments", dependencies=READ_ENDPOINT)
def list_deployments(endpoint: str, ws: WorkspaceDep) -> list[BatchDeploymentOut]:
    return ws.endpoints.list_deployments(endpoint)


@router.get("/batch-endpoints/{endpoint}/deployments/{name}", dependencies=READ_ENDPOINT)
def get_deployment(endpoint: str, name: str, ws: WorkspaceDep) -> BatchDeploymentOut:
    return ws.endpoints.get_deployment(endpoint, name)


@router.delete(
    "/batch-endpoints/{endpoint}/deployments/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=MANAGE_ENDPOINT,
)
def delete_deployment(endpoint: str, name: str, ws: WorkspaceDep) -> None:
    ws.endpoints.delete_deployment(endpoint, name)


@router.get("/batch-endpoints/{endpoint}/deployments/{name}/jobs", dependencies=READ_ENDPOINT)
def deployment_jobs(
    endpoint: str, name: str, ws: WorkspaceDep, caller: PrincipalDep
) -> list[JobOut]:
    ws.endpoints.deployment(endpoint, name)
    return ws.jobs.list_all(caller, endpoint_name=endpoint, deployment_name=name)


@router.post(
    "/endpoints/{endpoint}/jobs",
    status_code=status.HTTP_201_CREATED,
    tags=["invoke"],
    dependencies=[allowed(Action.INVOKE, endpoint="endpoint")],
)
async def invoke(
    endpoint: str,
    ws: WorkspaceDep,
    principal: PrincipalDep,
    body: Annotated[dict[str, Any], Body()],
    azureml_model_deployment: Annotated[str | None, Header()] = None,
) -> JobOut:
    """Invoke an endpoint: Azure's body (``properties.InputData``/``OutputData``).

    The caller needs ``invoke`` on the endpoint, ``read data`` where each input is and
    ``write data`` where each output it names goes."""
    request = parse_invoke_body(body)

    def create() -> JobOut:  # checks the inputs and outputs in storage
        record = ws.invocations.invoke(
            endpoint, request, principal, deployment_name=azureml_model_deployment or None
        )
        ws.job_queued()
        return ws.jobs.created_out(record)

    return await ws.checking_storage(create)


@router.get("/endpoints/{endpoint}/jobs", tags=["invoke"], dependencies=READ_ENDPOINT)
def invoked_jobs(endpoint: str, ws: WorkspaceDep, caller: PrincipalDep) -> list[JobOut]:
    """The endpoint's jobs the caller may read: its own, or all with ``read jobs`` on it."""
    ws.endpoints.endpoint(endpoint)
    return ws.jobs.list_all(caller, endpoint_name=endpoint)
