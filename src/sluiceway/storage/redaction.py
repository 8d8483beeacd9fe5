"""Credentials out of what the server shows: URLs, error messages and job logs.

Storage libraries put the URL they called, sometimes with its SAS token, and sometimes the
connection string they were given, into their error messages. Everything the server shows
from storage (4xx messages, job errors, job logs, input URLs on a job) passes through here.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "describe_error", "redact_text", "redact_url"]

REDACTED = "REDACTED"

# Query parameters that carry a credential: Azure SAS signatures, AWS presigned URLs,
# tokens and OAuth codes.
_SECRET_QUERY_KEYS = frozenset(
    {
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "token",
        "code",
        "access_token",
        "client_secret",
    }
)
_QUERY_KEYS = "|".join(sorted((re.escape(k) for k in _SECRET_QUERY_KEYS), key=len, reverse=True))
# key=value inside a URL's query, wherever the URL is quoted in a text.
_QUERY_RE = re.compile(rf"(?i)([?&](?:{_QUERY_KEYS})=)[^&#\s'\"<>]*")
# Connection-string parts and headers that carry a credential.
_FIELD_RE = re.compile(
    r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey|aws_secret_access_key|"
    r"secret_access_key|x-amz-security-token|client_secret|password)(\s*[=:]\s*)"
    r"(?:'[^']*'|\"[^\"]*\"|[^;\s,&]+)"
)
_BEARER_RE = re.compile(r"(?i)\b(Bearer|SharedKey [^:\s]+:)\s*[A-Za-z0-9._~+/=-]{8,}")


def redact_url(uri: str | None) -> str | None:
    """A URL as the server shows it: a SAS signature or other credential in its query is hidden."""
    if not uri or "?" not in uri:
        return uri
    parts = urlsplit(uri)
    query = [
        (k, REDACTED if k.lower() in _SECRET_QUERY_KEYS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe=":")))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with credentials in URLs, connection strings and headers hidden.

    Args:
        text: A message, typically from a storage library's exception.
        secrets: Values known to be secret (a datastore's credentials); hidden wherever they
            appear.
    """
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _QUERY_RE.sub(rf"\g<1>{REDACTED}", text)
    text = _FIELD_RE.sub(rf"\g<1>\g<2>{REDACTED}", text)
    return _BEARER_RE.sub(rf"\g<1> {REDACTED}", text)


def describe_error(exc: BaseException) -> str:
    """``<type>: <message>`` of an exception, with credentials hidden."""
    message = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {redact_text(message)}" if message else name
