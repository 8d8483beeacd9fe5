"""Which methods the app's routes take at a path, for a 405's ``Allow``.

A fallback router (one that answers for every method, such as the management API's answer
for what it does not support) is left out: it takes a path only when no other route does.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def include_fallback(app: FastAPI, router: APIRouter) -> None:
    """Include ``router`` in ``app`` (last) as a fallback."""
    app.include_router(router)
    fallbacks: list[BaseRoute] = getattr(app.state, "fallbacks", [])
    app.state.fallbacks = [*fallbacks, app.router.routes[-1]]


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods some route but a fallback takes at the request's path (Starlette's 405
    names only the first route that matches the path, though each method is a route of its
    own)."""
    fallbacks = getattr(app.state, "fallbacks", [])
    routes = [r for r in app.router.routes if not any(r is f for f in fallbacks)]
    return [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]
