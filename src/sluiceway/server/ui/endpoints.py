"""Studio pages of batch endpoints: the list, and an endpoint's page with its deployments,
recent jobs and the Consume panel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sluiceway.auth.policy import Action, endpoint_scope
from sluiceway.errors import SluicewayError, ValidationError
from sluiceway.schemas.endpoints import (
    BatchDeploymentOut,
    BatchEndpointPatch,
    EndpointDefaults,
)
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.ui.consume import ConsumeInput, snippets
from sluiceway.server.ui.render import SECURITY_HEADERS, StudioRoute, page
from sluiceway.server.ui.session import FormDep, ViewerDep

router = APIRouter(route_class=StudioRoute, include_in_schema=False)

EXAMPLE_FOLDER = "azureml://datastores/workspaceblobstore/paths/<folder>/"


@router.get("/ui/endpoints")
def endpoints_page(request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    rows = []
    for endpoint in ws.endpoints.list_all(who.principal):
        last = ws.jobs.list_all(who.principal, endpoint_name=endpoint.name, limit=1)
        rows.append({"endpoint": endpoint, "last": last[0] if last else None})
    return page(request, "endpoints.html", {"viewer": who, "rows": rows, "nav": "endpoints"})


def _example_data(ws: WorkspaceDep, who: ViewerDep) -> str:
    if who.can(Action.READ):
        latest = ws.assets.list_latest("data")
        if latest:
            return ws.assets.data_out(latest[0]).id
    return EXAMPLE_FOLDER


def _consume_inputs(
    ws: WorkspaceDep, deployment: BatchDeploymentOut | None, data: str
) -> list[ConsumeInput]:
    if deployment is None or deployment.type != "pipeline" or not deployment.component:
        return [ConsumeInput("heart_dataset", "uri_folder", data)]
    try:
        component = ws.components.component_out(ws.components.resolve(deployment.component))
    except SluicewayError:
        return [ConsumeInput("input_data", "uri_folder", data)]
    inputs = []
    for name, spec in component.inputs.items():
        kind = str(spec.get("type", "uri_folder"))
        if kind in ("uri_folder", "uri_file"):
            inputs.append(ConsumeInput(name, kind, data))
        elif not spec.get("optional"):
            default = spec.get("default")
            inputs.append(ConsumeInput(name, kind, default if default is not None else "<value>"))
    return inputs


@router.get("/ui/endpoints/{name}")
def endpoint_page(name: str, request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    who.principal.require(Action.READ, endpoint_scope(name))
    endpoint = ws.endpoints.get(name)
    deployments = ws.endpoints.list_deployments(name)
    default = endpoint.defaults.deployment_name
    chosen = next((d for d in deployments if d.name == default), None) or (
        deployments[0] if deployments else None
    )
    consume = snippets(
        endpoint,
        _consume_inputs(ws, chosen, _example_data(ws, who)),
        model_deployment=chosen is None or chosen.type == "model",
    )
    context: dict[str, Any] = {
        "viewer": who,
        "nav": "endpoints",
        "endpoint": endpoint,
        "deployments": deployments,
        "default": default,
        "jobs": ws.jobs.list_all(who.principal, endpoint_name=name, limit=10),
        "consume": consume,
        "can_manage": who.can(Action.MANAGE, endpoint_scope(name)),
        "can_invoke": who.can(Action.INVOKE, endpoint_scope(name)),
    }
    return page(request, "endpoint.html", context)


@router.post("/ui/endpoints/{name}/default")
def set_default(name: str, ws: WorkspaceDep, who: ViewerDep, form: FormDep) -> Response:
    """Make a deployment the endpoint's default (an owner's or contributor's button)."""
    who.principal.require(Action.MANAGE, endpoint_scope(name))
    deployment = form.get("deployment", "")
    if not deployment:
        raise ValidationError("Choose the deployment to make the default.", target="deployment")
    ws.endpoints.deployment(name, deployment)
    ws.endpoints.update(
        name, BatchEndpointPatch(defaults=EndpointDefaults(deployment_name=deployment))
    )
    return RedirectResponse(f"/ui/endpoints/{name}", status_code=303, headers=SECURITY_HEADERS)
