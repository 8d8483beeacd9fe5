"""Components: command and pipeline components, registered by version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status

from sluiceway.auth.policy import Action
from sluiceway.errors import ResourceNotFoundError
from sluiceway.schemas.components import ComponentOut
from sluiceway.server.access import allowed
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.openapi import also_200

router = APIRouter(tags=["components"])

_BODY = Body(
    description="A component's YAML as JSON: type command (command, code, inputs, outputs, "
    "environment) or type pipeline (inputs, outputs, jobs). code is an uploaded folder, "
    "azureml://datastores/<datastore>/paths/<path>.",
    examples=[
        {
            "name": "hello",
            "version": "1",
            "type": "command",
            "inputs": {"greeting": {"type": "string", "default": "hello"}},
            "outputs": {"out": {"type": "uri_folder"}},
            "command": "python -c 'import sys; print(sys.argv[1])' ${{inputs.greeting}}",
        }
    ],
)


@router.post(
    "/components",
    status_code=status.HTTP_201_CREATED,
    responses=also_200(ComponentOut),
    dependencies=[allowed(Action.MANAGE)],
)
def create_component(
    body: Annotated[dict[str, Any], _BODY],
    ws: WorkspaceDep,
    principal: PrincipalDep,
    response: Response,
) -> ComponentOut:
    """Register a component version (200 with the existing one when nothing changed)."""
    record, created = ws.components.create(body, principal)
    if not created:
        response.status_code = status.HTTP_200_OK
    return ws.components.component_out(record)


@router.get("/components", dependencies=[allowed(Action.READ)])
def list_components(ws: WorkspaceDep) -> list[ComponentOut]:
    """The latest version of each component."""
    return [ws.components.component_out(r) for r in ws.components.list_latest()]


@router.get("/components/{name}/versions", dependencies=[allowed(Action.READ)])
def component_versions(name: str, ws: WorkspaceDep) -> list[ComponentOut]:
    return [ws.components.component_out(r) for r in ws.components.versions(name)]


@router.get("/components/{name}/versions/{version}", dependencies=[allowed(Action.READ)])
def get_component(name: str, version: str, ws: WorkspaceDep) -> ComponentOut:
    return ws.components.component_out(ws.components.get(name, version))


@router.get("/components/{name}/labels/{label}", dependencies=[allowed(Action.READ)])
def get_component_label(name: str, label: str, ws: WorkspaceDep) -> ComponentOut:
    if label != "latest":
        raise ResourceNotFoundError(
            f"Label {label!r} does not exist; accepted: latest.", target="label"
        )
    return ws.components.component_out(ws.components.get(name))
