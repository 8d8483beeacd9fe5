"""How large a request's head may be: its request line, each header line, and all of it.

uvicorn's httptools parser buffers a header line of any length, so a client could send
megabytes of headers; as common servers do (nginx, Apache, Node), a request line or a header
line may be at most :data:`MAX_LINE_BYTES` and the whole head at most :data:`MAX_HEAD_BYTES`.
A longer request line gets 414, a longer header line or head 431 (RFC 6585), in the server's
one error shape, and the connection is closed. The head is counted as it arrives, too, so no
more than the limit and one read of the socket is ever buffered.
"""

from __future__ import annotations

import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEAD_BYTES", "MAX_LINE_BYTES", "LimitedHttpToolsProtocol"]

MAX_LINE_BYTES = 16 << 10
MAX_HEAD_BYTES = 64 << 10

_REASONS = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}
_CODES = {414: "UriTooLong", 431: "RequestHeaderFieldsTooLarge"}


class _Refused(Exception):
    """Raised inside a parser callback; the protocol answers ``status`` and closes."""

    def __init__(self, status: int, message: str, target: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.target = target


def _head_too_large() -> _Refused:
    return _Refused(
        431,
        f"The request's header fields are larger than {MAX_HEAD_BYTES} bytes in all; send less "
        "in headers (a large value belongs in the body).",
        "headers",
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads past the limits above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._reading_head = True
        self._url_bytes = 0
        self._lines_bytes = 0

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._reading_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
            # Still in the head after all this data (a head ended by it resets the count).
            if self._reading_head and self._head_bytes > MAX_HEAD_BYTES:
                raise _head_too_large()
        except _Refused as refused:
            self._refuse(refused)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(exc.__context__)
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._url_bytes = 0
        self._lines_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        self._lines_bytes += len(url)
        if self._url_bytes > MAX_LINE_BYTES:
            raise _Refused(
                414,
                f"The request line is longer than {MAX_LINE_BYTES} bytes; accepted: a shorter "
                "URL (send large values in the body).",
                "url",
            )
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) + 2 > MAX_LINE_BYTES:
            shown = name[:64].decode("latin-1")
            raise _Refused(
                431,
                f"Header {shown!r} is {len(name) + len(value) + 2} bytes long; a header line may "
                f"be at most {MAX_LINE_BYTES} bytes.",
                shown,
            )
        self._lines_bytes += len(name) + len(value) + 4
        if self._lines_bytes > MAX_HEAD_BYTES:
            raise _head_too_large()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    def _refuse(self, refused: _Refused) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": _CODES[refused.status],
                    "message": refused.message,
                    "target": refused.target,
                }
            }
        ).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (refused.status, _REASONS[refused.status])]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self.transport.close()
