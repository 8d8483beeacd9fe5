"""The FastAPI application of one server process: the API, the scheduler (with its local
executor), or both, by the process's role; every role answers ``/healthz``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluiceway.config import Settings
from sluiceway.errors import SluicewayError
from sluiceway.server import openapi
from sluiceway.server.arm import blob, dataplane, management
from sluiceway.server.arm import identity as arm_identity
from sluiceway.server.bodies import RequestBodyLimits
from sluiceway.server.deps import principal
from sluiceway.server.methods import allowed_methods, include_fallback
from sluiceway.server.metrics import RequestTimer
from sluiceway.server.rate_limits import RateLimiter
from sluiceway.server.routers import (
    assets,
    components,
    computes,
    datastores,
    endpoints,
    environments,
    identities,
    jobs,
    oauth2,
    roles,
    system,
)
from sluiceway.server.ui import install as install_studio
from sluiceway.server.workspace import Workspace
from sluiceway.storage.redaction import redact_text


def _error(
    status: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    # Every error answer passes here: a SAS or key that a message quotes is hidden.
    content = {"error": {"code": code, "message": redact_text(message), "target": target}}
    return JSONResponse(status_code=status, content=content, headers=headers)


_SECRET_FIELD = re.compile(r"(?i)credential|secret|key|token|password|sas")
_NOT_AN_OBJECT = ("dict_type", "model_type", "model_attributes_type")


def _unparsable_body(cause: BaseException | None) -> str | None:
    """What made a JSON body unreadable, when FastAPI's parser gave up on it (it answers 400
    "There was an error parsing the body" and keeps the reason as the cause)."""
    if isinstance(cause, RecursionError):
        return "The request body is not accepted: its JSON is nested too deeply."
    if isinstance(cause, ValueError):
        # An integer of more than 4,300 digits (Python's limit for reading one).
        reason = str(cause).split(": value has")[0].split("; use ")[0]
        return f"The request body is not accepted: {reason}."
    return None


def _describe(exc: RequestValidationError) -> tuple[str, str | None]:
    lines = []
    target = None
    for err in exc.errors():
        raw_loc = err.get("loc", ())
        loc = [str(p) for p in raw_loc if p != "body"]
        where = ".".join(loc) or "body"
        kind = err.get("type")
        if kind == "json_invalid":
            error = err.get("ctx", {}).get("error", "malformed")
            at = f" (at character {loc[0]})" if loc else ""
            lines.append(f"The request body is not valid JSON: {error}{at}.")
            target = target or "body"
            continue
        target = target or where
        if tuple(raw_loc) == ("body",) and kind in _NOT_AN_OBJECT:
            lines.append("The request body must be a JSON object (Content-Type: application/json).")
            continue
        value = err.get("input")
        shown = ""
        if value is not None and not isinstance(value, dict) and not _SECRET_FIELD.search(where):
            text = repr(value)  # never a credential, and never much of a large body
            shown = f" (got {text[:200] + '...' if len(text) > 200 else text})"
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
        description=(
            "Self-hosted batch endpoints. Every route but /healthz and /oauth2/token needs a "
            "bearer token."
        ),
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.workspace = workspace
    app.state.token_limit_per_client = RateLimiter(settings.token_requests_per_client)
    app.state.token_limit_per_address = RateLimiter(settings.token_requests_per_address)
    app.add_middleware(
        RequestBodyLimits,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )

    @app.exception_handler(SluicewayError)
    async def sluiceway_error(_: Request, exc: SluicewayError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.target)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, target = _describe(exc)
        return _error(400, "ValidationError", message, target)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}.get(
            exc.status_code, "HttpError"
        )
        body_problem = _unparsable_body(exc.__cause__) if exc.status_code == 400 else None
        if body_problem is not None:
            return _error(400, "ValidationError", body_problem, "body")
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            message = f"Method {request.method} is not allowed here; accepted: {headers['Allow']}."
        return _error(exc.status_code, code, message, headers=headers or None)

    app.add_middleware(RequestTimer, metrics=workspace.metrics, router_app=app)
    app.include_router(system.public)
    secured: list[Any] = [Depends(principal)]
    if not settings.runs_api:
        # A scheduler serves its health, readiness and metrics only.
        app.include_router(system.router, dependencies=secured)
        return app
    app.include_router(oauth2.public)
    # The azure-ai-ml dialect: cloud metadata, credentials, discovery, signed log links and
    # the blob face check their callers themselves (a SAS, an identity header).
    app.include_router(arm_identity.public)
    app.include_router(dataplane.public)
    app.include_router(blob.public)
    for module in (
        system,
        datastores,
        assets,
        components,
        environments,
        computes,
        endpoints,
        jobs,
        identities,
        roles,
    ):
        app.include_router(module.router, dependencies=secured)
    install_studio(app)
    app.include_router(management.router, dependencies=secured)
    app.include_router(dataplane.router, dependencies=secured)
    include_fallback(app, management.otherwise)
    openapi.install(app)
    return app
