"""Which values the SDK must upload (local paths) and which name things on the server.

The server parses every reference form itself and checks it; the SDK only needs to tell a
local path (which it uploads) from a reference (which it sends as is), and to recognise a data
asset or model reference well enough to look its type up or normalise it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SCHEME_RE = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]+)://")
_SHORT_ASSET_RE = re.compile(
    r"azureml:/?(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))/?",
    re.IGNORECASE,
)
_LONG_DATA_RE = re.compile(
    r"/data/(?P<name>[^/]+)/versions/(?:labels/(?P<label>[^/]+)|(?P<version>[^/]+))/?\Z",
    re.IGNORECASE,
)
_LONG_PREFIXES = (
    "/subscriptions/",
    "azureml:/subscriptions/",
    "azureml://subscriptions/",
    "azureml://locations/",
)
_DATASTORE_ID_RE = re.compile(r"datastores/(?P<name>[^/]+)/?\Z", re.IGNORECASE)


def local_path(value: str) -> Path | None:
    """The local path ``value`` names, or None when it is a reference or a URL.

    References start with ``azureml:`` or ``/subscriptions/`` or have a URL scheme;
    ``file://`` URLs are local paths.
    """
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("file://"):
        return Path(text[len("file://") :]).expanduser()
    if lowered.startswith(("azureml:", "/subscriptions/")) or _SCHEME_RE.match(text):
        return None
    return Path(text).expanduser()


def is_local_path(value: str) -> bool:
    return local_path(value) is not None


@dataclass(frozen=True)
class AssetPointer:
    """A registered asset named by version or by label."""

    name: str
    version: str | None = None
    label: str | None = None


def data_asset_pointer(value: str) -> AssetPointer | None:
    """The data asset ``value`` names (``azureml:n:v``, ``azureml:n@latest``, ids), or None."""
    text = value.strip()
    if "/datastores/" in text.lower():
        return None
    short = _SHORT_ASSET_RE.fullmatch(text)
    if short is not None:
        return AssetPointer(short["name"], short["version"], short["label"])
    if text.lower().startswith(_LONG_PREFIXES):
        long = _LONG_DATA_RE.search(text)
        if long is not None:
            return AssetPointer(long["name"], long["version"], long["label"])
    return None


def model_reference(value: str) -> str:
    """A model reference the server accepts.

    ``azureml:...`` and ids pass as they are; ``name:version`` becomes
    ``azureml:name:version`` and a bare ``name`` becomes ``azureml:name@latest``.
    """
    text = value.strip()
    if text.lower().startswith(("azureml:", "/subscriptions/")) or _SCHEME_RE.match(text):
        return text
    if ":" in text or "@" in text:
        return f"azureml:{text}"
    return f"azureml:{text}@latest"


def datastore_name(value: str) -> str:
    """The datastore a datastore id or reference names (``.../datastores/<name>`` or a name)."""
    text = value.strip().rstrip("/")
    match = _DATASTORE_ID_RE.search(text)
    if match is not None:
        return match["name"]
    return text.removeprefix("azureml:").lstrip("/")
