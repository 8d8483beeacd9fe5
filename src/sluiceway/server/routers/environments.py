"""Environments: the packages deployments' code runs with, built once with uv."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status
from fastapi.responses import PlainTextResponse

from sluiceway.auth.policy import Action
from sluiceway.errors import ResourceNotFoundError
from sluiceway.schemas.environments import EnvironmentOut
from sluiceway.server.access import allowed
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.openapi import also_200

router = APIRouter(tags=["environments"])
READ = [allowed(Action.READ)]
MANAGE = [allowed(Action.MANAGE)]

_BODY = Body(
    description="Azure's environment YAML as JSON: conda_file (the conda file's content) or "
    "requirements (the lines of a requirements.txt); image is recorded, not run. Local wheels "
    "are uploaded first and named by their azureml://datastores/<ds>/paths/<p>.whl URI.",
    examples=[
        {
            "name": "heart-batch-env",
            "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
            "conda_file": {
                "dependencies": ["python=3.11", "scikit-learn=1.5", {"pip": ["lightgbm"]}]
            },
        }
    ],
)


@router.post(
    "/environments",
    status_code=status.HTTP_201_CREATED,
    responses=also_200(EnvironmentOut),
    dependencies=MANAGE,
)
async def create_environment(
    body: Annotated[dict[str, Any], _BODY],
    ws: WorkspaceDep,
    principal: PrincipalDep,
    response: Response,
) -> EnvironmentOut:
    """Register an environment version (200 with the existing one when nothing changed). It
    is built when a deployment first uses it."""
    record, created = await ws.checking_storage(lambda: ws.environments.create(body, principal))
    if not created:
        response.status_code = status.HTTP_200_OK
    return ws.environments.environment_out(record)


@router.get("/environments", dependencies=READ)
def list_environments(ws: WorkspaceDep, archived: bool = False) -> list[EnvironmentOut]:
    """The latest version of each environment (archived ones too with ``archived=true``)."""
    return [
        ws.environments.environment_out(r) for r in ws.environments.list_latest(archived=archived)
    ]


@router.get("/environments/{name}/versions", dependencies=READ)
def environment_versions(name: str, ws: WorkspaceDep) -> list[EnvironmentOut]:
    return [ws.environments.environment_out(r) for r in ws.environments.versions(name)]


@router.get("/environments/{name}/versions/{version}", dependencies=READ)
def get_environment(name: str, version: str, ws: WorkspaceDep) -> EnvironmentOut:
    return ws.environments.environment_out(ws.environments.get(name, version))


@router.get("/environments/{name}/labels/{label}", dependencies=READ)
def get_environment_label(name: str, label: str, ws: WorkspaceDep) -> EnvironmentOut:
    if label != "latest":
        raise ResourceNotFoundError(
            f"Label {label!r} does not exist; accepted: latest.", target="label"
        )
    return ws.environments.environment_out(ws.environments.get(name))


@router.get(
    "/environments/{name}/versions/{version}/build-log",
    dependencies=READ,
    response_class=PlainTextResponse,
)
def environment_build_log(name: str, version: str, ws: WorkspaceDep) -> str:
    """The whole log of the version's build (empty before it is built)."""
    return ws.environments.build_log(ws.environments.get(name, version))


@router.get(
    "/environment-builds/{content_hash}/log",
    dependencies=READ,
    response_class=PlainTextResponse,
)
def build_log_by_hash(content_hash: str, ws: WorkspaceDep) -> str:
    """The whole log of a build by content hash (a deployment's ``environment_build``), for
    inline environments too; 404 when there is none."""
    return ws.environments.build_log_by_hash(content_hash)


@router.post("/environments/{name}/archive", dependencies=MANAGE, status_code=204)
def archive_environment(name: str, ws: WorkspaceDep, version: str | None = None) -> None:
    """Archive a version (or every version): ``@latest`` and lists skip it; deployments that
    pinned it keep running in it."""
    ws.environments.archive(name, version)


@router.post("/environments/{name}/restore", dependencies=MANAGE, status_code=204)
def restore_environment(name: str, ws: WorkspaceDep, version: str | None = None) -> None:
    ws.environments.archive(name, version, archived=False)


@router.delete("/environments/{name}/versions/{version}", dependencies=MANAGE, status_code=204)
def delete_environment_version(name: str, version: str, ws: WorkspaceDep) -> None:
    """Delete a version no deployment uses (409 naming the deployments that do)."""
    users = ws.endpoints.environment_users(f"azureml:{name}:{version}")
    ws.environments.delete(name, version, users)


@router.delete("/environments/{name}", dependencies=MANAGE, status_code=204)
def delete_environment(name: str, ws: WorkspaceDep) -> None:
    """Delete every version of an environment no deployment uses."""
    users = ws.endpoints.environment_users(f"azureml:{name}:")
    ws.environments.delete(name, None, users)
