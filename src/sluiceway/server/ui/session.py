"""The studio's session: a cookie that carries the bearer token, CSRF tokens, one-time links.

A browser signs in once (a pasted token, a service principal's client id and secret, or a
one-time link that ``sluice studio`` opens) and the server sets ``sluice_session``: the token
itself, ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it)
and expiring when the token does. Every request is then authenticated exactly as a bearer
token is, so revoking a token or an identity signs its browsers out too.

Each form that changes something carries a CSRF token derived from the session token (an HMAC
keyed by it), so a page of another origin, which cannot read the cookie, cannot forge one; a
request whose ``Origin`` is not the server's own is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from sluiceway.auth.policy import WORKSPACE, Action
from sluiceway.auth.principals import Principal
from sluiceway.clock import utcnow
from sluiceway.errors import AuthenticationError, PermissionDeniedError, ValidationError
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.forms import FormError, read_form_fields

SESSION_COOKIE = "sluice_session"
SIGN_IN_COOKIE = "sluice_sign_in"  # the CSRF token of the sign-in form, before any session
CSRF_FIELD = "csrf"
LINK_SECONDS = 120.0
_CSRF_LABEL = b"sluiceway studio form"


def csrf_for(session_token: str) -> str:
    """The CSRF token of the forms of the session whose bearer token is ``session_token``."""
    return hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


class SignInRequired(Exception):
    """The browser has no valid session; it is sent to the sign-in page, then back."""

    def __init__(self, next_path: str, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.next_path = next_path
        self.reason = reason


def safe_next(value: str | None) -> str:
    """A path inside the studio to go to after signing in; anything else is the studio's home."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui"


def sign_in_url(next_path: str) -> str:
    return f"/ui/sign-in?next={quote(safe_next(next_path), safe='/')}"


@dataclass(frozen=True)
class Viewer:
    """The signed-in identity of a studio request, and the CSRF token of its forms."""

    principal: Principal
    csrf: str

    @property
    def name(self) -> str:
        return self.principal.name

    def can(self, action: Action | str, scope: str = WORKSPACE) -> bool:
        """Whether the identity may do ``action`` on ``scope``: the page shows a button only
        then (the service checks again when it is pressed)."""
        return self.principal.allows(Action(action), scope)


def viewer(request: Request, ws: WorkspaceDep) -> Viewer:
    """The signed-in identity.

    Raises:
        SignInRequired: no session cookie, or its token no longer works.
    """
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(here)
    try:
        principal = ws.authenticate_token(token)
    except AuthenticationError as exc:
        raise SignInRequired(here, exc.message) from None
    return Viewer(principal, csrf_for(token))


ViewerDep = Annotated[Viewer, Depends(viewer)]


def check_origin(request: Request) -> None:
    """Raises: PermissionDeniedError when the browser says the request came from another
    origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin != own:
        raise PermissionDeniedError(
            f"A form of origin {origin[:100]!r} may not change anything here; only pages of "
            f"{own} may.",
            target="Origin",
        )


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a studio form (the first value of each).

    Raises:
        ValidationError: another content type, a body that is too large or not UTF-8.
    """
    try:
        fields = await read_form_fields(request, "A studio form")
    except FormError as exc:
        raise ValidationError(exc.message, target=exc.target) from None
    return {name: values[0] for name, values in fields.items()}


async def checked_form(request: Request, who: ViewerDep) -> dict[str, str]:
    """The fields of a form that changes something, once its CSRF token and origin are checked.

    Raises:
        PermissionDeniedError: the form has no CSRF token, or not this session's, or came from
            another origin.
    """
    check_origin(request)
    form = await read_form(request)
    sent = form.get(CSRF_FIELD, "")
    if not sent or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
        raise PermissionDeniedError(
            "The form has no valid CSRF token: reload the page and send it again.",
            target=CSRF_FIELD,
        )
    return form


FormDep = Annotated[dict[str, str], Depends(checked_form)]


class SignInLinks:
    """One-time sign-in links: a code that stands for a bearer token for two minutes, once.

    The codes live in this server process's memory: ``sluice studio`` asks the server that will
    open the link.
    """

    def __init__(self, lifetime: float = LINK_SECONDS) -> None:
        self._lifetime = lifetime
        self._codes: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, token: str) -> str:
        code = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._codes = {c: v for c, v in self._codes.items() if v[1] > now}
            self._codes[code] = (token, now + self._lifetime)
        return code

    def redeem(self, code: str) -> str | None:
        """The token the code stands for, if it has not been used or expired; it is used now."""
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]


def cookie_seconds(expires_on: datetime | None) -> int:
    """Seconds until a token expires: the session cookie lives as long (at least a minute)."""
    if expires_on is None:
        return 3600
    return max(int((expires_on - utcnow()).total_seconds()), 60)
