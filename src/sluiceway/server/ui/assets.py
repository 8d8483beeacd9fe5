"""Studio pages of assets: data assets and models with their versions, datastores (never their
credentials) and a datastore folder's files, components with their inputs and outputs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sluiceway.auth.policy import Action, datastore_scope
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.ui.render import StudioRoute, page
from sluiceway.server.ui.session import Viewer, ViewerDep
from sluiceway.services.assets import Kind
from sluiceway.services.datastores import storage_call

router = APIRouter(route_class=StudioRoute, include_in_schema=False)

MAX_FILES = 500


def _latest_page(request: Request, ws: WorkspaceDep, who: Viewer, kind: Kind, nav: str) -> Response:
    """The latest version of each data asset or model."""
    who.principal.require(Action.READ)
    items = [ws.assets.out(r) for r in ws.assets.list_latest(kind)]
    return page(request, "assets.html", {"viewer": who, "nav": nav, "kind": kind, "items": items})


def _versions_page(
    request: Request, ws: WorkspaceDep, who: Viewer, kind: Kind, nav: str, name: str
) -> Response:
    """The versions of one data asset or model."""
    who.principal.require(Action.READ)
    versions = [ws.assets.out(r) for r in ws.assets.versions(kind, name)]
    return page(
        request,
        "asset.html",
        {"viewer": who, "nav": nav, "kind": kind, "name": name, "versions": versions},
    )


@router.get("/ui/data")
def data_page(request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    return _latest_page(request, ws, who, "data", "data")


@router.get("/ui/data/{name}")
def data_versions(name: str, request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    return _versions_page(request, ws, who, "data", "data", name)


@router.get("/ui/models")
def models_page(request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    return _latest_page(request, ws, who, "model", "models")


@router.get("/ui/models/{name}")
def model_versions(name: str, request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    return _versions_page(request, ws, who, "model", "models", name)


@router.get("/ui/datastores")
def datastores_page(request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    items = ws.datastores.list_all(who.principal)
    return page(request, "datastores.html", {"viewer": who, "nav": "datastores", "items": items})


@router.get("/ui/datastores/{name}")
def datastore_folder(
    name: str, request: Request, ws: WorkspaceDep, who: ViewerDep, path: str = ""
) -> Response:
    """A datastore and the files under ``path`` (for those who may read its data)."""
    who.principal.require(Action.READ, datastore_scope(name))
    datastore = ws.datastores.get(name)
    files = None
    if who.can(Action.READ_DATA, datastore_scope(name)):
        location = ws.datastores.location(name, path)
        files = []
        if storage_call(location.uri, "path", location.exists):
            files = storage_call(location.uri, "path", location.list_files)[:MAX_FILES]
    return page(
        request,
        "datastore.html",
        {
            "viewer": who,
            "nav": "datastores",
            "datastore": datastore,
            "path": path.strip("/"),
            "files": files,
        },
    )


@router.get("/ui/components")
def components_page(request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    who.principal.require(Action.READ)
    items = [ws.components.component_out(r) for r in ws.components.list_latest()]
    return page(request, "components.html", {"viewer": who, "nav": "components", "items": items})


@router.get("/ui/components/{name}")
def component_page(name: str, request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    who.principal.require(Action.READ)
    versions = [ws.components.component_out(r) for r in ws.components.versions(name)]
    return page(
        request,
        "component.html",
        {"viewer": who, "nav": "components", "name": name, "versions": versions},
    )
