"""Small ``application/x-www-form-urlencoded`` bodies, read without a multipart parser.

The token endpoint and the studio's forms both take a few short fields. They read them here, so
that the media type, the size limit and the text encoding are checked in one place, and each
caller turns a :class:`FormError` into its own error shape (OAuth2's, or the workspace's).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 << 10


class FormError(Exception):
    """A body that is not a small UTF-8 form; ``target`` names what is wrong, if a header."""

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target


async def read_form_fields(
    request: Request, what: str, max_bytes: int = MAX_FORM_BYTES
) -> dict[str, list[str]]:
    """Every value of each field of the request's form, ``what`` naming it in messages.

    Raises:
        FormError: another content type, a body over ``max_bytes``, or one that is not UTF-8.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise FormError(
            f"{what} must be sent as Content-Type {FORM_TYPE}, not {media_type or 'none'!r}.",
            target="Content-Type",
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise FormError(f"{what} may be at most {max_bytes} bytes.")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise FormError(f"{what} is not UTF-8 text.") from None
