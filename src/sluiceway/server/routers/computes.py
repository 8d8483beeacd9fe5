"""Computes: where deployments' jobs run (``local``, or a registered Ray cluster)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from sluiceway.auth.policy import Action
from sluiceway.schemas.computes import ComputeCreate, ComputeOut
from sluiceway.server.access import allowed
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.openapi import also_200

router = APIRouter(tags=["computes"])


@router.get("/computes", dependencies=[allowed(Action.READ)])
def list_computes(ws: WorkspaceDep) -> list[ComputeOut]:
    """The built-in ``local`` compute and the registered ones (clusters are not asked)."""
    return ws.computes.list()


@router.get("/computes/{name}", dependencies=[allowed(Action.READ)])
def get_compute(name: str, ws: WorkspaceDep) -> ComputeOut:
    """The compute; for a Ray cluster, what Ray says it has (nodes, CPUs, GPUs, memory)."""
    return ws.computes.get(name)


@router.put("/computes/{name}", status_code=201, responses=also_200(ComputeOut))
def put_compute(
    name: str, body: ComputeCreate, response: Response, ws: WorkspaceDep, caller: PrincipalDep
) -> ComputeOut:
    """Register a compute (201) or replace its settings (200); needs ``manage`` on the
    workspace. A Ray cluster that cannot be reached is refused (400), naming the address."""
    out, created = ws.computes.create_or_update(name, body, caller)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.delete("/computes/{name}", status_code=204)
def delete_compute(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> Response:
    """Forget a compute; deployments naming it run their next jobs locally, and say so."""
    ws.computes.delete(name, caller)
    return Response(status_code=204)
