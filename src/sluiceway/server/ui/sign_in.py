"""Signing a browser in and out: a pasted token, a service principal's client id and secret,
or a one-time link from ``sluice studio``."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sluiceway.auth.principals import Principal
from sluiceway.errors import AuthenticationError
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.rate_limits import RateLimiter
from sluiceway.server.ui.render import SECURITY_HEADERS, StudioRoute, page
from sluiceway.server.ui.session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    FormDep,
    SignInLinks,
    check_origin,
    cookie_seconds,
    read_form,
    safe_next,
)

router = APIRouter(route_class=StudioRoute, include_in_schema=False)


def _links(request: Request) -> SignInLinks:
    links: SignInLinks = request.app.state.studio_links
    return links


def _signed_in(request: Request, token: str, principal: Principal, target: str) -> Response:
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    _set_session(request, response, token, principal)
    return response


def _set_session(request: Request, response: Response, token: str, principal: Principal) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=cookie_seconds(principal.token_expires_on),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/ui/sign-in")


def _form_page(
    request: Request, next_path: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    csrf = secrets.token_urlsafe(24)
    response = page(
        request,
        "sign_in.html",
        {"next": next_path, "csrf": csrf, "error": error, "viewer": None},
        status_code,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        csrf,
        max_age=3600,
        path="/ui/sign-in",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/")
def root() -> Response:
    """A browser that opens the server's address lands in the studio."""
    return RedirectResponse("/ui", status_code=303)


@router.get("/ui")
def home() -> Response:
    return RedirectResponse("/ui/jobs", status_code=303)


@router.get("/ui/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> Response:
    return _form_page(request, safe_next(next))


def _limited(request: Request, client_id: str) -> bool:
    state = request.app.state
    address = request.client.host if request.client else "unknown"
    per_address: RateLimiter = state.token_limit_per_address
    per_client: RateLimiter = state.token_limit_per_client
    return per_address.acquire(address) > 0 or per_client.acquire(client_id) > 0


@router.post("/ui/sign-in")
async def sign_in(request: Request, ws: WorkspaceDep) -> Response:
    """Sign in with a token, or with a service principal's client id and secret."""
    check_origin(request)
    form = await read_form(request)
    target = safe_next(form.get("next"))
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    sent = form.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _form_page(request, target, "The sign-in form expired; please send it again.", 403)
    token = form.get("token", "").strip()
    client_id = form.get("client_id", "").strip()
    secret = form.get("client_secret", "")
    if not token and client_id:
        if _limited(request, client_id):
            return _form_page(request, target, "Too many sign-in attempts; wait a minute.", 429)
        issued = await run_in_threadpool(ws.identity_service.client_credentials, client_id, secret)
        if issued is None:
            return _form_page(
                request, target, "No service principal has this client id and secret.", 401
            )
        token = issued.access_token
    if not token:
        return _form_page(
            request, target, "Paste a token, or give a client id and its secret.", 400
        )
    try:
        principal = await run_in_threadpool(ws.authenticate_token, token)
    except AuthenticationError as exc:
        return _form_page(request, target, f"This token does not sign in: {exc.message}", 401)
    return _signed_in(request, token, principal, target)


@router.post("/ui/sign-in-links")
def create_sign_in_link(
    request: Request,
    ws: WorkspaceDep,
    authorization: Annotated[str | None, Header()] = None,
    next: str | None = None,
) -> JSONResponse:
    """A one-time link that signs a browser in as the caller (``sluice studio`` opens it).

    The caller authenticates with its bearer token, which the link's session then carries.
    """
    try:
        principal = ws.authenticate(authorization)
    except AuthenticationError as exc:  # answered in the API's shape: the SDK reads it
        error = {"code": exc.code, "message": exc.message, "target": exc.target}
        return JSONResponse({"error": error}, status_code=exc.status_code)
    token = (authorization or "").partition(" ")[2].strip()
    code = _links(request).issue(token)
    path = f"/ui/sign-in/link?code={code}&next={quote(safe_next(next), safe='/')}"
    return JSONResponse(
        {"path": path, "identity": principal.name, "expires_in": 120},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/ui/sign-in/link")
def sign_in_with_link(
    request: Request, ws: WorkspaceDep, code: str = "", next: str | None = None
) -> Response:
    """Redeem a one-time link. The page it answers moves on to the studio from the server's
    own origin, so the ``SameSite=Strict`` cookie goes with that request."""
    token = _links(request).redeem(code)
    target = safe_next(next)
    if token is None:
        return _form_page(
            request,
            target,
            "This sign-in link was used or has expired; run sluice studio again.",
            401,
        )
    try:
        principal = ws.authenticate_token(token)
    except AuthenticationError as exc:
        return _form_page(request, target, f"This link's token no longer works: {exc.message}", 401)
    response = page(request, "linked.html", {"next": target, "viewer": None, "who": principal.name})
    _set_session(request, response, token, principal)
    return response


@router.post("/ui/sign-out")
def sign_out(_: FormDep) -> Response:
    response = RedirectResponse("/ui/sign-in", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
