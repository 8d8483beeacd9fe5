"""Health and identity."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from fastapi import APIRouter

from sluiceway.server.access import ANY_IDENTITY
from sluiceway.server.deps import PrincipalDep

public = APIRouter(tags=["system"])
router = APIRouter(tags=["system"])


@public.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": version("sluiceway")}


@router.get("/whoami", openapi_extra=ANY_IDENTITY)
def whoami(principal: PrincipalDep) -> dict[str, Any]:
    return {
        "id": principal.id,
        "name": principal.name,
        "kind": principal.kind,
        "roles": [{"scope": s, "role": r} for s, r in principal.roles],
    }
