"""Health, readiness, metrics and identity."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from sluiceway.auth.policy import Action
from sluiceway.server.access import ANY_IDENTITY, allowed
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.metrics import CONTENT_TYPE

_VERSION = version("sluiceway")  # read once: looking it up reads the installed packages
public = APIRouter(tags=["system"])
router = APIRouter(tags=["system"])


@public.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": _VERSION}


@public.get("/readyz")
def readyz(ws: WorkspaceDep) -> JSONResponse:
    """Whether this process can serve: its database and default datastore answer (503 if not).
    A load balancer asks it without a token."""
    checks = ws.readiness()
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "role": ws.settings.role.value, **checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    dependencies=[allowed(Action.READ_JOBS)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
def metrics(ws: WorkspaceDep) -> Response:
    """Prometheus metrics of this process (text exposition format)."""
    return Response(ws.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/whoami", openapi_extra=ANY_IDENTITY)
def whoami(principal: PrincipalDep) -> dict[str, Any]:
    return {
        "id": principal.id,
        "name": principal.name,
        "kind": principal.kind,
        "roles": [{"scope": s, "role": r} for s, r in principal.roles],
    }
