"""The one exception tree of Sluiceway.

Every error a user can cause is a :class:`SluicewayError` whose message says what was wrong,
with the offending value, and what is accepted. The server maps each class to one HTTP status
in one place (``server/errors.py``); the SDK maps statuses back to these classes, so code that
catches ``ResourceNotFoundError`` works the same in-process and over HTTP.
"""

from __future__ import annotations


class SluicewayError(Exception):
    """Base of every error Sluiceway raises on purpose."""

    status_code = 500
    code = "InternalError"

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.target is not None:
            body["target"] = self.target
        return body


class ValidationError(SluicewayError):
    """A request, YAML file or argument is malformed or has a value that is not accepted."""

    status_code = 400
    code = "UserError"


class UnsupportedError(ValidationError):
    """The request asks for something Sluiceway does not do (yet); the message says what does."""

    code = "NotSupported"


class AddressNotAllowedError(ValidationError):
    """A storage client was about to connect to an address the network policy refuses: after
    a redirect, or because a host name resolves elsewhere than when it was checked."""

    code = "AddressNotAllowed"

    def __init__(self, where: str, reason: str, *, url: str | None = None) -> None:
        shown = f" (for {url})" if url else ""
        super().__init__(f"The server refused to connect to {where}{shown}: {reason}")
        self.where = where
        self.reason = reason

    def at(self, url: str) -> AddressNotAllowedError:
        """The same error, naming the URL whose connection was refused."""
        return AddressNotAllowedError(self.where, self.reason, url=url)


class AuthenticationError(SluicewayError):
    """No credential, or one that is not valid."""

    status_code = 401
    code = "Unauthorized"


class PermissionDeniedError(SluicewayError):
    """The identity is known but may not do this."""

    status_code = 403
    code = "Forbidden"


class ResourceNotFoundError(SluicewayError):
    """A named resource does not exist."""

    status_code = 404
    code = "NotFound"


class ConflictError(SluicewayError):
    """The resource exists already, or is in a state that forbids the change."""

    status_code = 409
    code = "Conflict"


class ServerUnavailableError(SluicewayError):
    """The client could not reach a Sluiceway server."""

    status_code = 503
    code = "ServiceUnavailable"


class MissingExtraError(SluicewayError):
    """An optional dependency is not installed; the message names the extra to install."""

    status_code = 501
    code = "MissingDependency"

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"This feature needs the optional dependency {module!r}: "
            f"pip install 'sluiceway[{extra}]'"
        )


_BY_CODE: dict[str, type[SluicewayError]] = {
    cls.code: cls
    for cls in (
        ValidationError,
        UnsupportedError,
        AuthenticationError,
        PermissionDeniedError,
        ResourceNotFoundError,
        ConflictError,
        ServerUnavailableError,
    )
}


def error_from_response(status_code: int, body: object) -> SluicewayError:
    """Rebuild the server's error on the client side from an HTTP error response."""
    message = f"HTTP {status_code}"
    code = ""
    target = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = str(err.get("message", message))
            code = str(err.get("code", ""))
            raw_target = err.get("target")
            target = str(raw_target) if raw_target is not None else None
    cls = _BY_CODE.get(code)
    if cls is None:
        by_status = {
            400: ValidationError,
            401: AuthenticationError,
            403: PermissionDeniedError,
            404: ResourceNotFoundError,
            409: ConflictError,
            413: ValidationError,
            415: ValidationError,
            422: ValidationError,
        }
        cls = by_status.get(status_code, SluicewayError)
    return cls(message, target=target)


class StartupRefused(SluicewayError):
    """A server process will not start: its settings or its database do not fit (another key
    than the workspace's, a database of a newer Sluiceway, a setting missing)."""

    code = "StartupRefused"
