"""Parse every form a user may give for an input, output or model into a typed reference.

This is pure parsing and normalisation: nothing here reads the database or any storage. The
resolver turns a reference into a filesystem and a path later, and checks access there.

Long forms (``/subscriptions/...``, ``azureml://subscriptions/...``,
``azureml://locations/...``) carry the subscription, resource group, location and workspace so
that ids copied from Azure work unchanged. Sluiceway serves one workspace, so these parts are
ignored, except that a different workspace name is refused rather than silently redirected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeAlias, TypeVar
from urllib.parse import urlsplit

from sluiceway.errors import UnsupportedError, ValidationError
from sluiceway.schemas.common import ASSET_NAME_RE, WorkspaceScope
from sluiceway.storage.paths import check_relative_path
from sluiceway.storage.retired import GEN1_SCHEME, gen1_refusal

__all__ = [
    "ACCEPTED_INPUT_FORMS",
    "ACCEPTED_MODEL_FORMS",
    "DataAssetRef",
    "DatastorePathRef",
    "LocalPathRef",
    "ModelRef",
    "Reference",
    "StorageUrlKind",
    "StorageUrlRef",
    "parse_model_reference",
    "parse_reference",
]

ACCEPTED_INPUT_FORMS = (
    "a datastore path (azureml://datastores/<datastore>/paths/<path>, also after "
    "azureml://subscriptions/.../workspaces/<workspace>/ or /subscriptions/.../workspaces/"
    "<workspace>/), a data asset (azureml:<name>:<version>, azureml:<name>@latest, "
    "/subscriptions/.../workspaces/<workspace>/data/<name>/versions/<version> or "
    "azureml://locations/<location>/workspaces/<workspace>/data/<name>/versions/<version> or "
    ".../versions/labels/latest), or a storage URL "
    "(https://<account>.blob.core.windows.net/<container>/<path>, "
    "abfss://<container>@<account>.dfs.core.windows.net/<path>, "
    "wasbs://<container>@<account>.blob.core.windows.net/<path>, s3://<bucket>/<key>, "
    "or another https:// URL)"
)
ACCEPTED_MODEL_FORMS = (
    "<name>:<version>, azureml:<name>:<version>, azureml:<name>@latest, "
    "/subscriptions/.../workspaces/<workspace>/models/<name>/versions/<version> or "
    "azureml://locations/<location>/workspaces/<workspace>/models/<name>/versions/<version>"
)

_DATASTORE_NAME_RE = re.compile(r"[a-zA-Z0-9_]{1,255}")
_NAME_RULE = "starts with a letter or digit and has up to 255 letters, digits, '-', '_' or '.'"
_SCHEME_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]+)://")
_AZUREML = "azureml:"

# The parts before the workspace; the workspace name is checked, the rest is ignored.
_ARM_PREFIX_RE = re.compile(
    r"(?:azureml:/?)?/subscriptions/[^/]+/resourcegroups/[^/]+"
    r"(?:/providers/microsoft\.machinelearningservices)?"
    r"/workspaces/(?P<workspace>[^/]+)/(?P<tail>.*)",
    re.IGNORECASE | re.DOTALL,
)
_LOCATION_PREFIX_RE = re.compile(
    r"azureml://locations/[^/]+/workspaces/(?P<workspace>[^/]+)/(?P<tail>.*)",
    re.IGNORECASE | re.DOTALL,
)
_SHORT_DATASTORE_PREFIX = "azureml://datastores/"

# What follows the workspace.
_DATASTORE_TAIL_RE = re.compile(
    r"datastores/(?P<datastore>[^/]*)/paths(?:/(?P<path>.*))?", re.IGNORECASE | re.DOTALL
)
_ASSET_TAIL_RE = re.compile(
    r"(?P<collection>data|models)/(?P<name>[^/]*)/versions/"
    r"(?:labels/(?P<label>[^/]*)|(?P<version>[^/]*))",
    re.IGNORECASE,
)
_SHORT_ASSET_RE = re.compile(
    r"(?P<name>[^:@/]*)(?::(?P<version>[^@/]*)|@(?P<label>[^/]*))", re.DOTALL
)

# Azure public and sovereign clouds all use <account>.<service>.core.<suffix>.
_AZURE_HOST_RE = re.compile(r"(?P<account>[a-z0-9]+)\.(?P<service>blob|dfs)\.core\.[a-z0-9.\-]+")
_SERVICE_OF_SCHEME = {"http": "blob", "https": "blob", "abfss": "dfs", "wasbs": "blob"}

StorageUrlKind: TypeAlias = Literal["blob", "abfss", "wasbs", "s3", "https"]


@dataclass(frozen=True)
class DatastorePathRef:
    """A path inside a registered datastore.

    ``path`` is relative to the datastore's root and normalised; ``""`` is the root.
    ``is_folder_hint`` records that the user wrote a trailing ``/`` (or named the root).
    """

    datastore: str
    path: str
    is_folder_hint: bool

    @property
    def uri(self) -> str:
        slash = "/" if self.is_folder_hint and self.path else ""
        return f"azureml://datastores/{self.datastore}/paths/{self.path}{slash}"


@dataclass(frozen=True)
class _VersionedRef:
    """A registered asset named by a version or by the label ``latest``, never both."""

    kind: ClassVar[str] = "asset"

    name: str
    version: str | None
    label: str | None

    def __post_init__(self) -> None:
        if (self.version is None) == (self.label is None):
            raise ValueError(f"{self.kind} {self.name!r} needs exactly one of version and label")
        if self.label is not None and self.label != "latest":
            raise ValueError(f"{self.kind} label must be 'latest', not {self.label!r}")

    @property
    def uri(self) -> str:
        if self.version is not None:
            return f"azureml:{self.name}:{self.version}"
        return f"azureml:{self.name}@{self.label}"


@dataclass(frozen=True)
class DataAssetRef(_VersionedRef):
    """A registered data asset."""

    kind: ClassVar[str] = "data asset"


@dataclass(frozen=True)
class ModelRef(_VersionedRef):
    """A registered model."""

    kind: ClassVar[str] = "model"


@dataclass(frozen=True)
class StorageUrlRef:
    """A URL straight into storage, outside any datastore.

    ``url`` is the value as given. ``path`` is the object path below the container (or below
    the host for ``https``), without a leading ``/`` and not percent-decoded. ``container``
    holds the bucket for ``s3``. ``query`` keeps a SAS token or other query string.
    """

    kind: StorageUrlKind
    url: str
    account: str | None
    container: str | None
    path: str
    query: str | None


@dataclass(frozen=True)
class LocalPathRef:
    """A path on the client's machine; clients upload it, the server refuses it."""

    path: str


Reference: TypeAlias = DatastorePathRef | DataAssetRef | StorageUrlRef | LocalPathRef

_A = TypeVar("_A", bound=_VersionedRef)


def parse_reference(
    value: str, scope: WorkspaceScope, *, blob_emulator_endpoints: tuple[str, ...] = ()
) -> Reference:
    """Parse a data input or output reference.

    Args:
        value: The reference as the user wrote it; surrounding whitespace is ignored.
        scope: This server's workspace; long forms must name its workspace.
        blob_emulator_endpoints: Base URLs of blob emulators (such as Azurite,
            ``http://127.0.0.1:10000``) whose URLs are path-style:
            ``<endpoint>/<account>/<container>/<path>``.

    Returns:
        The typed reference. A value with no scheme that is none of the known forms is a
        :class:`LocalPathRef`.

    Raises:
        ValidationError: The value is empty, malformed, names another workspace, has an
            invalid name, or has a path that leaves the datastore's root.
        UnsupportedError: The value uses a scheme or asset label Sluiceway does not support.
    """
    text = _require_text(value, ACCEPTED_INPUT_FORMS)
    emulated = _parse_emulator_url(text, blob_emulator_endpoints)
    if emulated is not None:
        return emulated
    ref: DatastorePathRef | DataAssetRef | ModelRef | None = None
    tail = _workspace_tail(text, scope)
    scheme = _SCHEME_RE.match(text)
    if tail is not None:
        ref = _parse_tail(text, tail)
    elif text.lower().startswith(_AZUREML):
        ref = _parse_short_asset(DataAssetRef, text, _strip_azureml(text))
    elif scheme is not None:
        return _parse_storage_url(text, scheme["scheme"].lower())
    elif not text.lower().startswith("/subscriptions/"):
        return LocalPathRef(text)
    if isinstance(ref, ModelRef):
        raise ValidationError(
            f"{text!r} names a model; a data reference is {ACCEPTED_INPUT_FORMS}."
        )
    if ref is None:
        raise ValidationError(
            f"{text!r} is not a reference Sluiceway understands. Accepted: {ACCEPTED_INPUT_FORMS}."
        )
    return ref


def parse_model_reference(value: str, scope: WorkspaceScope) -> ModelRef:
    """Parse a reference to a registered model.

    Args:
        value: The reference as the user wrote it; surrounding whitespace is ignored.
        scope: This server's workspace; long forms must name its workspace.

    Returns:
        The model reference, by version or by the label ``latest``.

    Raises:
        ValidationError: The value is not one of :data:`ACCEPTED_MODEL_FORMS`, names another
            workspace, or has an invalid name or version.
        UnsupportedError: The value names a label other than ``latest``.
    """
    text = _require_text(value, ACCEPTED_MODEL_FORMS)
    tail = _workspace_tail(text, scope)
    if tail is not None:
        ref = _parse_tail(text, tail)
    elif text.lower().startswith(_AZUREML):
        ref = _parse_short_asset(ModelRef, text, _strip_azureml(text))
    else:
        ref = _parse_short_asset(ModelRef, text, text)
    if not isinstance(ref, ModelRef):
        raise ValidationError(
            f"{text!r} is not a model reference. Accepted: {ACCEPTED_MODEL_FORMS}."
        )
    return ref


def _require_text(value: str, accepted: str) -> str:
    text = value.strip()
    if not text:
        raise ValidationError(f"The reference {value!r} is empty. Accepted: {accepted}.")
    return text


def _strip_azureml(text: str) -> str:
    """What follows ``azureml:``, with the one ``/`` of ``azureml:/<name>@latest`` removed."""
    rest = text[len(_AZUREML) :]
    if rest.startswith("/") and not rest.startswith("//"):
        return rest[1:]
    return rest


def _workspace_tail(text: str, scope: WorkspaceScope) -> str | None:
    """The part after the workspace, or ``None`` when ``text`` is no workspace-level form."""
    if text.lower().startswith(_SHORT_DATASTORE_PREFIX):
        return text[len("azureml://") :]
    match = _ARM_PREFIX_RE.fullmatch(text) or _LOCATION_PREFIX_RE.fullmatch(text)
    if match is None:
        return None
    workspace = match["workspace"]
    if workspace.casefold() != scope.workspace_name.casefold():
        raise ValidationError(
            f"{text!r} refers to workspace {workspace!r}, but this server serves workspace "
            f"{scope.workspace_name!r}. Name {scope.workspace_name!r} or use a short form such "
            "as azureml://datastores/<datastore>/paths/<path> or azureml:<name>:<version>."
        )
    return match["tail"]


def _parse_tail(text: str, tail: str) -> DatastorePathRef | DataAssetRef | ModelRef | None:
    datastore = _DATASTORE_TAIL_RE.fullmatch(tail)
    if datastore is not None:
        return _datastore_ref(text, datastore["datastore"], datastore["path"] or "")
    asset = _ASSET_TAIL_RE.fullmatch(tail)
    if asset is None:
        return None
    cls: type[DataAssetRef | ModelRef]
    cls = ModelRef if asset["collection"].lower() == "models" else DataAssetRef
    return _asset_ref(cls, text, asset["name"], asset["version"], asset["label"])


def _datastore_ref(text: str, datastore: str, path: str) -> DatastorePathRef:
    if _DATASTORE_NAME_RE.fullmatch(datastore) is None:
        raise ValidationError(
            f"The datastore name {datastore!r} in {text!r} is not valid: a datastore name has "
            "1 to 255 letters, digits or underscores."
        )
    normalised, is_folder = check_relative_path(path, where=f" in {text!r}")
    return DatastorePathRef(datastore, normalised, is_folder)


def _parse_short_asset(cls: type[_A], text: str, rest: str) -> _A | None:
    match = _SHORT_ASSET_RE.fullmatch(rest)
    if match is None:
        return None
    return _asset_ref(cls, text, match["name"], match["version"], match["label"])


def _asset_ref(cls: type[_A], text: str, name: str, version: str | None, label: str | None) -> _A:
    if ASSET_NAME_RE.fullmatch(name) is None:
        raise ValidationError(
            f"The {cls.kind} name {name!r} in {text!r} is not valid: a name {_NAME_RULE}."
        )
    if label is not None:
        if label.lower() != "latest":
            raise UnsupportedError(
                f"The label {label!r} in {text!r} is not supported: name a version, or the "
                "label 'latest'."
            )
        return cls(name, None, "latest")
    if version is None or ASSET_NAME_RE.fullmatch(version) is None:
        raise ValidationError(
            f"The version {version!r} in {text!r} is not valid: a version {_NAME_RULE}."
        )
    return cls(name, version, None)


def _parse_emulator_url(text: str, endpoints: tuple[str, ...]) -> StorageUrlRef | None:
    lowered = text.lower()
    for endpoint in endpoints:
        base = endpoint.rstrip("/")
        if lowered != base.lower() and not lowered.startswith(base.lower() + "/"):
            continue
        rest, _, query = text[len(base) + 1 :].partition("?")
        account, _, rest = rest.partition("/")
        container, _, path = rest.partition("/")
        if not account or not container:
            raise ValidationError(
                f"{text!r} is a blob emulator URL without an account and a container: "
                f"use {base}/<account>/<container>/<path>."
            )
        return StorageUrlRef("blob", text, account, container, path, query or None)
    return None


def _parse_storage_url(text: str, scheme: str) -> StorageUrlRef:
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a valid URL ({exc}).") from None
    host = _AZURE_HOST_RE.fullmatch(parts.hostname or "")
    account = host["account"] if host else None
    path, query = parts.path.lstrip("/"), parts.query or None
    service = _SERVICE_OF_SCHEME.get(scheme)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ValidationError(f"{text!r} has no host: use https://<host>/<path>.")
        if host is None or host["service"] != service:
            return StorageUrlRef("https", text, None, None, path, query)
        container, _, blob_path = path.partition("/")
        if not container:
            raise ValidationError(
                f"{text!r} names no container: use "
                "https://<account>.blob.core.windows.net/<container>/<path>."
            )
        return StorageUrlRef("blob", text, account, container, blob_path, query)
    if scheme in ("abfss", "wasbs"):
        if host is None or host["service"] != service or not parts.username:
            raise ValidationError(
                f"{text!r} is not a valid {scheme} URL: use "
                f"{scheme}://<container>@<account>.{service}.core.windows.net/<path>."
            )
        kind: StorageUrlKind = "abfss" if scheme == "abfss" else "wasbs"
        return StorageUrlRef(kind, text, account, parts.username, path, query)
    if scheme == "s3":
        if not parts.netloc:
            raise ValidationError(f"{text!r} names no bucket: use s3://<bucket>/<key>.")
        return StorageUrlRef("s3", text, None, parts.netloc, path, query)
    if scheme == GEN1_SCHEME:
        raise gen1_refusal(f"the URL {text!r}")
    raise UnsupportedError(
        f"The scheme '{scheme}://' in {text!r} is not supported. Accepted: {ACCEPTED_INPUT_FORMS}."
    )
