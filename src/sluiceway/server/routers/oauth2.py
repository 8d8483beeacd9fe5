"""``POST /oauth2/token``: the OAuth2 client-credentials grant (RFC 6749 section 4.4).

A service principal sends ``grant_type=client_credentials``, its ``client_id`` and
``client_secret`` as a form (or the id and secret as HTTP Basic credentials) and gets a bearer
token for an hour, in the shape Azure's token endpoint answers. ``scope`` is accepted whatever
it says (Azure callers send ``https://ml.azure.com/.default``). Errors have OAuth2's shape,
``{"error", "error_description"}`` (section 5.2), never the workspace's error shape.

The form is parsed here rather than by FastAPI so that the route needs no multipart parser
and a malformed request still gets an OAuth2 error.

Each client address, and each client id, may ask so many times a minute
(``SLUICEWAY_TOKEN_REQUESTS_PER_ADDRESS``, ``SLUICEWAY_TOKEN_REQUESTS_PER_CLIENT``); past
that the answer is 429 with ``Retry-After``, before any secret is checked.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.forms import FORM_TYPE, FormError, read_form_fields
from sluiceway.server.rate_limits import RateLimiter, retry_after

public = APIRouter(tags=["oauth2"])

GRANT_TYPE = "client_credentials"
_NO_CACHE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    def __init__(
        self, error: str, description: str, status: int = 400, *, retry_after: str | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after


def _error(exc: OAuthError, *, basic: bool) -> JSONResponse:
    headers = dict(_NO_CACHE)
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="sluiceway"'
    if exc.retry_after is not None:
        headers["Retry-After"] = exc.retry_after
    return JSONResponse(
        status_code=exc.status,
        content={"error": exc.error, "error_description": exc.description},
        headers=headers,
    )


async def _form(request: Request) -> dict[str, str]:
    try:
        fields = await read_form_fields(request, "The token request")
    except FormError as exc:
        raise OAuthError("invalid_request", exc.message) from None
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:
        raise OAuthError("invalid_request", f"Parameter {repeated[0]!r} is given more than once.")
    return {name: values[0] for name, values in fields.items()}


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header (section 2.3.1)."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError(
            "invalid_client",
            "The token endpoint takes client credentials in the form or as HTTP Basic; "
            f"not as {scheme or 'an empty'!r} authorization.",
            401,
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client", "The Basic credentials are not valid base64.", 401
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "The Basic credentials need 'client_id:secret'.", 401)
    return unquote_plus(client_id), unquote_plus(secret)


def _limit(limiter: RateLimiter, key: str, who: str, setting: str) -> None:
    """Raises: OAuthError (429, with Retry-After) when ``key`` has used its requests."""
    wait = limiter.acquire(key)
    if wait > 0:
        after = retry_after(wait)
        raise OAuthError(
            "temporarily_unavailable",
            f"Too many token requests from {who}: at most {limiter.per_minute} a minute are "
            f"accepted ({setting}); retry after {after} s.",
            429,
            retry_after=after,
        )


_OAUTH_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error", "error_description"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        }
    }
}
_TOKEN = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "ext_expires_in": {"type": "integer"},
    },
}
_FORM = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "scope": {"type": "string"},
    },
}


@public.post(
    "/oauth2/token",
    responses={
        200: {
            "description": "An access token.",
            "content": {"application/json": {"schema": _TOKEN}},
        },
        400: {"description": "A malformed token request (OAuth2 error).", "content": _OAUTH_ERROR},
        401: {"description": "Unknown client id or wrong secret.", "content": _OAUTH_ERROR},
        429: {
            "description": "Too many token requests (OAuth2 error), with Retry-After.",
            "content": _OAUTH_ERROR,
        },
    },
    openapi_extra={"requestBody": {"required": True, "content": {FORM_TYPE: {"schema": _FORM}}}},
)
async def token(request: Request, ws: WorkspaceDep) -> JSONResponse:
    """Exchange a service principal's client id and secret for an access token."""
    basic = False
    limits = request.app.state
    try:
        address = request.client.host if request.client else "unknown"
        _limit(
            limits.token_limit_per_address,
            address,
            f"address {address}",
            "SLUICEWAY_TOKEN_REQUESTS_PER_ADDRESS",
        )
        form = await _form(request)
        from_header = _basic_credentials(request.headers.get("authorization"))
        basic = from_header is not None
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise OAuthError("invalid_request", "The 'grant_type' parameter is missing.")
        if grant_type != GRANT_TYPE:
            raise OAuthError(
                "unsupported_grant_type",
                f"Grant type {grant_type!r} is not supported; accepted: {GRANT_TYPE!r}.",
            )
        in_form = "client_id" in form or "client_secret" in form
        if from_header is not None and in_form:
            raise OAuthError(
                "invalid_request",
                "Give the client credentials once: in the form or as HTTP Basic, not both.",
            )
        client_id, secret = from_header or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if not client_id:
            raise OAuthError("invalid_request", "The 'client_id' parameter is missing.")
        if not secret:
            raise OAuthError("invalid_request", "The 'client_secret' parameter is missing.")
        _limit(
            limits.token_limit_per_client,
            client_id,
            f"client id {client_id[:64]!r}",
            "SLUICEWAY_TOKEN_REQUESTS_PER_CLIENT",
        )
        issued = await run_in_threadpool(ws.identity_service.client_credentials, client_id, secret)
        if issued is None:
            raise OAuthError(
                "invalid_client",
                "Client authentication failed: no service principal has this client id and secret.",
                401,
            )
    except OAuthError as exc:
        return _error(exc, basic=basic)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "ext_expires_in": issued.expires_in,
        },
        headers=_NO_CACHE,
    )
