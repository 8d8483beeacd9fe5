"""The studio: server-rendered pages for endpoints, jobs, data and models, at ``/ui``.

Pages are Jinja templates; what changes while a job runs is fetched as HTML fragments by htmx,
which the server serves from the package (``static/``, pinned, with its licence) like the
studio's style sheet and script: a page loads nothing from anywhere else. Pages call the same
services the REST routers call, as the signed-in identity.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from sluiceway.server.ui import assets, endpoints, jobs, sign_in
from sluiceway.server.ui.render import STATIC_DIR
from sluiceway.server.ui.session import SignInLinks, SignInRequired, sign_in_url

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the studio's routes and static files to ``app``."""
    app.state.studio_links = SignInLinks()
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="studio-static")
    for module in (sign_in, endpoints, jobs, assets):
        app.include_router(module.router)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        target = sign_in_url(exc.next_path if request.method == "GET" else "/ui")
        if request.headers.get("hx-request") == "true":
            # htmx follows this header with a full page load, rather than swap the form in.
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
