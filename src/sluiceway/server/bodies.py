"""What a request body may be: its size, its content type and, for JSON, its encoding.

Files written through ``PUT /datastores/{name}/files/{path}`` are streamed and may be up to
``SLUICEWAY_MAX_UPLOAD_BYTES``; every other body is JSON (or a form, for the token endpoint)
and may be up to ``SLUICEWAY_MAX_BODY_BYTES``. A declared ``Content-Length`` over the limit is
refused before anything is read, and a chunked body as soon as it passes the limit, with a 413
in the server's one error shape.

A JSON body may not hold a number that is not finite: Python's JSON parser reads ``NaN``,
``Infinity`` and ``-Infinity``, and turns ``1e999`` into infinity, none of which is JSON or a
value any field accepts. Such a body gets a 400 that names where the number is, before any
route sees it, so no field, and no error message that would quote the value, ever holds one.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestBodyLimits"]

# The blob face (server/arm/blob.py) takes file bytes too: Put Blob, Put Block, Put Block List.
_UPLOAD_ROUTE = re.compile(r"/datastores/[^/]+/files/.|/azureml/blob/[^/]+/[^/]+/.")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_JSON_ONLY = "send the body as JSON with Content-Type: application/json"


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class RequestBodyLimits:
    """ASGI middleware that enforces the body limits and content types of every request."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "PUT" and _UPLOAD_ROUTE.match(scope["path"]) is not None
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        setting = "SLUICEWAY_MAX_UPLOAD_BYTES" if upload else "SLUICEWAY_MAX_BODY_BYTES"
        what = "a file written to a datastore" if upload else "a request body"
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if declared is not None:
            if not declared.strip().isdigit():
                await _reply(
                    send, 400, "BadRequest", f"Content-Length {declared!r} is not a number."
                )
                return
            if int(declared) > limit:
                await _reply(
                    send, 413, "PayloadTooLarge", _too_large(int(declared), limit, what, setting)
                )
                return
        has_body = chunked or (declared is not None and int(declared) > 0)
        if upload or not has_body:
            await self.app(scope, _counting(receive, limit, what, setting), send)
            return
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not _is_json(media_type) and media_type not in _FORM_TYPES:
            shown = f"Content-Type {media_type!r}" if media_type else "A body without Content-Type"
            await _reply(
                send,
                415,
                "UnsupportedMediaType",
                f"{shown} is not accepted: {_JSON_ONLY}.",
                "Content-Type",
            )
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _reply(send, 413, "PayloadTooLarge", _too_large(None, limit, what, setting))
            return
        if _is_json(media_type):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await _reply(
                    send,
                    400,
                    "ValidationError",
                    f"The request body is not valid UTF-8 (byte {exc.start}): {_JSON_ONLY}, "
                    "encoded as UTF-8.",
                    "body",
                )
                return
            where = _non_finite_number(text)
            if where is not None:
                await _reply(send, 400, "ValidationError", *where)
                return
        await self.app(scope, _replay(body, receive), send)


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
# What the text of a number that is not finite must contain (a float overflows past 1.8e308).
_MAYBE_NON_FINITE = re.compile(r"NaN|Infinity|[eE]\+?\d{3}|\d{309}")


def _non_finite_number(text: str) -> tuple[str, str] | None:
    """Where a JSON body holds a number that is not finite: a message and the field, or None.

    A body that is not JSON at all is left to the route, which says where it is malformed. Only
    a body whose text could hold such a number (``NaN``, ``Infinity``, a three-digit exponent or
    309 digits in a row) is parsed here; the route parses every body anyway.
    """
    if not _MAYBE_NON_FINITE.search(text):
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    found = _find_non_finite(document)
    if found is None:
        return None
    field, value = found
    shown = _NON_FINITE.get(value, "NaN")
    return (
        f"{field or 'body'}: {shown} is not accepted: give a finite number (a JSON number "
        "beyond 1.8e308, such as 1e999, is Infinity).",
        field or "body",
    )


def _find_non_finite(document: Any) -> tuple[str, float] | None:
    """The first number in ``document`` that is not finite, and its path (depth-first, without
    recursion: a body may nest as deep as the parser allows)."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where, value
        if isinstance(value, dict):
            items: list[tuple[str, Any]] = [
                (f"{where}.{key}" if where else key, item) for key, item in value.items()
            ]
        elif isinstance(value, list):
            items = [(f"{where}[{index}]", item) for index, item in enumerate(value)]
        else:
            continue
        stack.extend(reversed(items))
    return None


def _too_large(size: int | None, limit: int, what: str, setting: str) -> str:
    got = f"is {size} bytes" if size is not None else "is larger than that"
    human = f" ({_human(limit)})" if limit >= 1 << 10 else ""
    return (
        f"The request body {got}, but {what} may be at most {limit} bytes{human}; the "
        f"server's operator sets this limit with {setting}."
    )


def _human(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g} {unit}"
    return f"{size / (1 << 10):g} KiB"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _counting(receive: Receive, limit: int, what: str, setting: str) -> Receive:
    """``receive``, refusing a streamed body once it passes ``limit`` (the route answers 413)."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise HTTPException(413, _too_large(None, limit, what, setting))
        return message

    return counted


async def _reply(
    send: Send, status: int, code: str, message: str, target: str | None = None
) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "target": target}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
