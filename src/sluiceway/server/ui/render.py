"""Rendering studio pages: the Jinja templates, the headers every page carries, error pages.

Pages may load only what the server serves (``Content-Security-Policy``: scripts, styles,
images and requests from ``'self'``), so nothing is fetched from elsewhere and no inline script
runs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sluiceway.errors import SluicewayError
from sluiceway.schemas.jobs import JobStatus
from sluiceway.storage.redaction import redact_text

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
HTMX = "htmx-2.0.11.min.js"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a form's Origin "null"
    "Cache-Control": "no-store",
}

# What a status looks like: a symbol and a word beside the colour, never the colour alone.
STATUS_SYMBOLS = {
    "NotStarted": "○",
    "Queued": "◷",
    "Preparing": "◔",
    "Running": "▶",
    "Finalizing": "◕",
    "CancelRequested": "⏹",
    "Completed": "✓",
    "Failed": "✗",
    "Canceled": "⊘",
    "Skipped": "↷",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def _terminal(status: str) -> bool:
    try:
        return JobStatus(status).is_terminal
    except ValueError:
        return False


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    env.filters["when"] = _when
    env.filters["size"] = _size
    env.globals["status_symbol"] = lambda s: STATUS_SYMBOLS.get(str(s), "•")
    env.globals["terminal"] = _terminal
    env.globals["htmx"] = HTMX
    return env


ENV = make_environment()


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A rendered template with the studio's headers."""
    text = ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(text, status_code=status_code, headers=SECURITY_HEADERS)


class StudioRoute(APIRoute):
    """A studio route: a Sluiceway error becomes an HTML page with the error's status and
    message, not the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SluicewayError as exc:
                fragment = request.headers.get("hx-request") == "true"
                return page(
                    request,
                    "_error.html" if fragment else "error.html",
                    {
                        "status": exc.status_code,
                        "code": exc.code,
                        "message": redact_text(exc.message),
                        "viewer": None,
                    },
                    exc.status_code,
                )

        return handle
