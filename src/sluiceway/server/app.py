"""The FastAPI application: API, scheduler and local executor in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluiceway.config import Settings
from sluiceway.errors import SluicewayError
from sluiceway.server.deps import principal
from sluiceway.server.routers import assets, components, datastores, endpoints, jobs, system
from sluiceway.server.workspace import Workspace


def _error(status: int, code: str, message: str, target: str | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message, "target": target}}
    )


def _describe(exc: RequestValidationError) -> tuple[str, str | None]:
    lines = []
    target = None
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        target = target or where
        value = err.get("input")
        shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
        lines.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return "; ".join(lines), target


def create_app(settings: Settings, *, base_url: str | None = None) -> FastAPI:
    """Build the app for one workspace; the scheduler starts and stops with it."""
    url = base_url or settings.public_url or f"http://{settings.host}:{settings.port}"
    workspace = Workspace(settings, url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workspace.start()
        try:
            yield
        finally:
            workspace.close()

    app = FastAPI(
        title="Sluiceway",
        description="Self-hosted batch endpoints. Every route but /healthz needs a bearer token.",
        lifespan=lifespan,
    )
    app.state.workspace = workspace

    @app.exception_handler(SluicewayError)
    async def sluiceway_error(_: Request, exc: SluicewayError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.target)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, target = _describe(exc)
        return _error(400, "ValidationError", message, target)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HttpError")
        return _error(exc.status_code, code, str(exc.detail))

    app.include_router(system.public)
    secured: list[Any] = [Depends(principal)]
    for module in (system, datastores, assets, components, endpoints, jobs):
        app.include_router(module.router, dependencies=secured)
    return app
