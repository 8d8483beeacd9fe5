"""Data assets and models: the same routes under ``/data`` and ``/models``."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from sluiceway.auth.policy import Action
from sluiceway.errors import ResourceNotFoundError
from sluiceway.schemas.assets import DataCreate, DataOut, ModelCreate, ModelOut
from sluiceway.server.access import allowed
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.openapi import also_200

router = APIRouter()
READ = [allowed(Action.READ)]
MANAGE = [allowed(Action.MANAGE)]


def _latest_label(label: str) -> None:
    if label != "latest":
        raise ResourceNotFoundError(
            f"Label {label!r} does not exist; accepted: latest.", target="label"
        )


@router.post(
    "/data",
    status_code=status.HTTP_201_CREATED,
    responses=also_200(DataOut),
    tags=["data"],
    dependencies=MANAGE,
)
async def create_data(
    body: DataCreate, ws: WorkspaceDep, principal: PrincipalDep, response: Response
) -> DataOut:
    out, created = await ws.checking_storage(lambda: ws.assets.create_data(body, principal))
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


@router.get("/data", tags=["data"], dependencies=READ)
def list_data(ws: WorkspaceDep) -> list[DataOut]:
    return [ws.assets.data_out(r) for r in ws.assets.list_latest("data")]


@router.get("/data/{name}/versions", tags=["data"], dependencies=READ)
def data_versions(name: str, ws: WorkspaceDep) -> list[DataOut]:
    return [ws.assets.data_out(r) for r in ws.assets.versions("data", name)]


@router.get("/data/{name}/versions/{version}", tags=["data"], dependencies=READ)
def get_data(name: str, version: str, ws: WorkspaceDep) -> DataOut:
    return ws.assets.data_out(ws.assets.get("data", name, version))


@router.get("/data/{name}/labels/{label}", tags=["data"], dependencies=READ)
def get_data_label(name: str, label: str, ws: WorkspaceDep) -> DataOut:
    _latest_label(label)
    return ws.assets.data_out(ws.assets.get("data", name))


@router.post(
    "/models",
    status_code=status.HTTP_201_CREATED,
    responses=also_200(ModelOut),
    tags=["models"],
    dependencies=MANAGE,
)
async def create_model(
    body: ModelCreate, ws: WorkspaceDep, principal: PrincipalDep, response: Response
) -> ModelOut:
    out, created = await ws.checking_storage(lambda: ws.assets.create_model(body, principal))
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


@router.get("/models", tags=["models"], dependencies=READ)
def list_models(ws: WorkspaceDep) -> list[ModelOut]:
    return [ws.assets.model_out(r) for r in ws.assets.list_latest("model")]


@router.get("/models/{name}/versions", tags=["models"], dependencies=READ)
def model_versions(name: str, ws: WorkspaceDep) -> list[ModelOut]:
    return [ws.assets.model_out(r) for r in ws.assets.versions("model", name)]


@router.get("/models/{name}/versions/{version}", tags=["models"], dependencies=READ)
def get_model(name: str, version: str, ws: WorkspaceDep) -> ModelOut:
    return ws.assets.model_out(ws.assets.get("model", name, version))


@router.get("/models/{name}/labels/{label}", tags=["models"], dependencies=READ)
def get_model_label(name: str, label: str, ws: WorkspaceDep) -> ModelOut:
    _latest_label(label)
    return ws.assets.model_out(ws.assets.get("model", name))
