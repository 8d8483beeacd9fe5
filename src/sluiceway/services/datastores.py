"""Datastores: registering them, the default ``workspaceblobstore``, and locations in them.

A location is reached through its datastore's backend (``storage/datastores/``). A storage URL
(``https://<account>.blob.core.windows.net/...``, ``abfss://``, ``wasbs://``, ``s3://``, or an
emulator's path-style URL) is read through the registered datastore that names the same
account and container (or bucket), with that datastore's settings and credentials; failing
that, with the SAS in the URL, or anonymously (a public container), or with the server's
ambient AWS credentials.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError as PydanticValidationError

from sluiceway.auth.policy import WORKSPACE, Action, datastore_scope
from sluiceway.auth.principals import Principal
from sluiceway.clock import utcnow
from sluiceway.errors import (
    ConflictError,
    ResourceNotFoundError,
    SluicewayError,
    UnsupportedError,
    ValidationError,
)
from sluiceway.home import WorkspaceHome
from sluiceway.schemas.common import DEFAULT_DATASTORE, WorkspaceScope
from sluiceway.schemas.datastores import TYPE_SETTINGS, DatastoreCreate, DatastoreOut
from sluiceway.storage.credentials import CredentialCipher
from sluiceway.storage.datastores import datastore_type, open_backend
from sluiceway.storage.datastores.azure import AzureContainerDatastore, blob_endpoint
from sluiceway.storage.datastores.base import ClientSettings, DatastoreBackend, DatastoreType
from sluiceway.storage.datastores.local import check_root as check_local_root
from sluiceway.storage.datastores.s3 import S3Datastore
from sluiceway.storage.egress import refusal_in
from sluiceway.storage.locations import Location
from sluiceway.storage.network import PrivateNetworkPolicy
from sluiceway.storage.paths import check_relative_path
from sluiceway.storage.redaction import redact_text, redact_url
from sluiceway.storage.references import (
    Reference,
    StorageUrlRef,
    parse_reference,
)
from sluiceway.store.assets import DatastoreRecord, DatastoreStore

HOME_ROOT = ""  # a local datastore whose root is the workspace home's blobstore/
_AZURE_TYPES = (DatastoreType.AZURE_BLOB.value, DatastoreType.AZURE_DATA_LAKE_GEN2.value)
_CONTAINER_KEY = {"azure_blob": "container_name", "azure_data_lake_gen2": "filesystem"}
_T = TypeVar("_T")
_CREDENTIAL_KINDS = {
    "account_key": "account_key",
    "sas_token": "sas_token",
    "access_key_id": "access_key",
}


class DatastoreService:
    def __init__(
        self,
        store: DatastoreStore,
        home: WorkspaceHome,
        scope: WorkspaceScope,
        cipher: CredentialCipher | None = None,
        *,
        default: dict[str, Any] | None = None,
        blob_emulator_endpoints: tuple[str, ...] = (),
        staging_dir: Path | None = None,
        staging_cache_bytes: int = 2 << 30,
        network: PrivateNetworkPolicy | None = None,
        local_roots: tuple[Path, ...] | None = None,
        check_timeout: float = 5.0,
    ) -> None:
        self._store = store
        self._home = home
        self._scope = scope
        self._cipher = cipher
        self._default = default
        self._emulators = blob_emulator_endpoints
        # Private hosts callers' URLs and endpoints may reach (blob emulators always may), and
        # the folders local datastores may be in.
        self._network = (network or PrivateNetworkPolicy()).with_endpoints(
            (*blob_emulator_endpoints, *self._default_endpoint(), *_ambient_s3_endpoints())
        )
        # Every storage client checks its connections against the same policy.
        self._client = ClientSettings(network=self._network)
        self._local_roots = local_roots or (home.root,)
        #: Where jobs stage files of remote datastores, and how much their input cache holds.
        self.staging_dir = staging_dir or home.root / "staging"
        self.staging_cache_bytes = staging_cache_bytes
        self._backends: dict[str, DatastoreBackend] = {}
        self._probes: dict[str, DatastoreBackend] = {}  # the backends of ``probing``
        self._lock = threading.Lock()
        self._check_timeout = check_timeout

    # -- the default ------------------------------------------------------------------------

    def _default_endpoint(self) -> tuple[str, ...]:
        """The default datastore's endpoint: an operator setting, so always reachable."""
        if self._default is None:
            return ()
        try:
            body = DatastoreCreate.model_validate({**self._default, "name": DEFAULT_DATASTORE})
            backend = open_backend(body.type, body.settings(), None)
        except (PydanticValidationError, SluicewayError):
            return ()  # ensure_default says what is wrong with it
        return (backend.service_url,) if backend.service_url else ()

    def ensure_default(self, created_by: str) -> None:
        """``workspaceblobstore`` always exists: the settings' datastore, else a local folder.

        Settings win over what is stored, so a server pointed at an object store keeps its
        data there from its first start on.
        """
        self._home.blobstore.mkdir(parents=True, exist_ok=True)
        existing = self._store.get(DEFAULT_DATASTORE)
        if self._default is not None:
            body = self._parse_body(
                {**self._default, "name": DEFAULT_DATASTORE}, "the default_datastore setting"
            )
            record = self._record_for(body, created_by, is_default=True)
            if existing is None or self._differs(existing, record):
                self._store.put(record)
                self._forget(DEFAULT_DATASTORE)
            return
        if existing is None or existing.config.get("root") != HOME_ROOT:
            self._store.put(
                DatastoreRecord(
                    name=DEFAULT_DATASTORE,
                    type=DatastoreType.LOCAL.value,
                    description="The workspace's default datastore.",
                    tags={},
                    config={"root": HOME_ROOT},
                    secret=None,
                    is_default=True,
                    created_at=utcnow(),
                    created_by=created_by,
                )
            )
            self._forget(DEFAULT_DATASTORE)

    def _differs(self, old: DatastoreRecord, new: DatastoreRecord) -> bool:
        if (old.type, old.config) != (new.type, new.config):
            return True
        return self._credentials(old) != self._credentials(new)

    # -- registering ------------------------------------------------------------------------

    def create_or_update(
        self, name: str, body: DatastoreCreate, principal: Principal
    ) -> tuple[DatastoreOut, bool]:
        """Register a datastore, or replace one's settings (not the default's).

        Raises:
            PermissionDeniedError: the caller may not manage the workspace (a new datastore)
                or this datastore (an existing one).
            ValidationError: a setting is missing, belongs to another type, or is not valid.
            ConflictError: ``name`` is the default datastore, which the server's settings own.
        """
        existing = self._store.get(name)
        if existing is None:
            principal.require(Action.MANAGE, WORKSPACE, what=f"new datastore {name!r}")
        else:
            principal.require(Action.MANAGE, datastore_scope(name))
        if body.name != name:
            raise ValidationError(
                f"The body names datastore {body.name!r}, but the route names {name!r}.",
                target="name",
            )
        if name == DEFAULT_DATASTORE:
            raise ConflictError(
                f"{DEFAULT_DATASTORE!r} is the workspace's default datastore; the server's "
                "settings (SLUICEWAY_DEFAULT_DATASTORE) say where it is. Give another name.",
                target="name",
            )
        self._check_fields(body)
        record = self._record_for(body, principal.name, is_default=False)
        if existing is not None:
            record = replace(record, created_at=existing.created_at, created_by=existing.created_by)
        self._store.put(record)
        self._forget(name)
        return self._out(record), existing is None

    def delete(self, name: str) -> None:
        """Forget a datastore; its files stay where they are.

        Raises:
            ResourceNotFoundError: no such datastore.
            ConflictError: it is the default datastore.
        """
        self.record(name)
        if name == DEFAULT_DATASTORE:
            raise ConflictError(
                f"{DEFAULT_DATASTORE!r} is the workspace's default datastore and cannot be "
                "deleted.",
                target="name",
            )
        self._store.delete(name)
        self._forget(name)

    def _parse_body(self, raw: dict[str, Any], where: str) -> DatastoreCreate:
        try:
            body = DatastoreCreate.model_validate(raw)
        except PydanticValidationError as exc:
            # Without the values: the body may hold credentials.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            raise ValidationError(f"{where} is not a valid datastore: {problems}") from None
        self._check_fields(body)
        return body

    def _check_fields(self, body: DatastoreCreate) -> None:
        kind = datastore_type(body.type).value
        allowed = TYPE_SETTINGS[kind]
        foreign = [k for k in body.settings() if k not in allowed]
        if foreign:
            verb = "is not a setting" if len(foreign) == 1 else "are not settings"
            raise ValidationError(
                f"{', '.join(foreign)} {verb} of a {kind} datastore; its settings: "
                f"{', '.join(allowed)}.",
                target=foreign[0],
            )
        if kind == DatastoreType.LOCAL.value:
            self._check_local_root(body.root)

    def _check_local_root(self, root: str | None) -> None:
        check_local_root(
            root,
            allowed=self._local_roots,
            home=self._home.root,
            reserved=(self._home.blobstore, self.staging_dir),
        )

    def _check_reachable(self, name: str, backend: DatastoreBackend) -> None:
        """A datastore's endpoint may not be a private address the settings do not allow."""
        if backend.service_url is not None:
            key = "endpoint_url" if backend.type is DatastoreType.S3 else "endpoint"
            self._network.check_url(
                backend.service_url, what=f"Datastore {name!r}: {key}", target=key
            )

    def _record_for(
        self, body: DatastoreCreate, created_by: str, *, is_default: bool
    ) -> DatastoreRecord:
        config = body.settings()
        credentials = {k: v for k, v in (body.credentials or {}).items() if v}
        # Opening the backend checks the settings and credentials (it reaches no storage).
        backend = open_backend(body.type, config, credentials or None, self._client)
        if not is_default:  # the default's endpoint is the operator's own setting
            self._check_reachable(body.name, backend)
        secret = None
        if credentials:
            if self._cipher is None:
                raise UnsupportedError(
                    "This server cannot store credentials.", target="credentials"
                )
            secret = self._cipher.seal(credentials)
        return DatastoreRecord(
            name=body.name,
            type=body.type,
            description=body.description,
            tags=dict(body.tags),
            config=config,
            secret=secret,
            is_default=is_default,
            created_at=utcnow(),
            created_by=created_by,
        )

    # -- lookup -----------------------------------------------------------------------------

    def record(self, name: str) -> DatastoreRecord:
        record = self._store.get(name)
        if record is None:
            known = ", ".join(r.name for r in self._store.list_all())
            raise ResourceNotFoundError(
                f"Datastore {name!r} does not exist; known datastores: {known}.", target="datastore"
            )
        return record

    def get(self, name: str) -> DatastoreOut:
        return self._out(self.record(name))

    def list_all(self, principal: Principal) -> list[DatastoreOut]:
        """The datastores ``principal`` may read."""
        readable = principal.grants.scopes_allowing(Action.READ, "datastore")
        return [
            self._out(r) for r in self._store.list_all() if readable is None or r.name in readable
        ]

    def backend(self, name: str) -> DatastoreBackend:
        with self._lock:
            backend = self._backends.get(name)
        if backend is None:
            record = self.record(name)
            config = dict(record.config)
            if record.type == DatastoreType.LOCAL.value and config.get("root") == HOME_ROOT:
                config["root"] = str(self._home.blobstore)
            backend = open_backend(record.type, config, self._credentials(record), self._client)
            if not record.is_default:  # settings may have changed since it was registered
                if record.type == DatastoreType.LOCAL.value:
                    self._check_local_root(config.get("root"))
                self._check_reachable(name, backend)
            with self._lock:
                backend = self._backends.setdefault(name, backend)
        return backend

    def _credentials(self, record: DatastoreRecord) -> dict[str, Any] | None:
        if not record.secret:
            return None
        if self._cipher is None:
            raise UnsupportedError(
                f"Datastore {record.name!r} holds credentials this server cannot read."
            )
        return self._cipher.open(record.secret)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._backends.pop(name, None)
            self._probes.pop(name, None)

    def location(self, datastore: str, path: str) -> Location:
        """A normalised location; paths that would leave the datastore's root are refused."""
        relative, _ = check_relative_path(path)
        return Location(datastore, relative, self.backend(datastore))

    def probing(self, location: Location) -> Location:
        """``location``, reached with a short timeout and no retries: for the checks made while
        a caller waits (an input exists, is a folder), so an unreachable store answers soon."""
        if location.url is not None:  # a storage URL of no datastore: a backend of its own
            return replace(location, backend=location.backend.probing(self._check_timeout))
        with self._lock:
            probe = self._probes.get(location.datastore)
        if probe is None:
            probe = location.backend.probing(self._check_timeout)
            with self._lock:  # kept with the datastore's backend, and forgotten with it
                if self._backends.get(location.datastore) is location.backend:
                    probe = self._probes.setdefault(location.datastore, probe)
        return replace(location, backend=probe)

    # -- references and storage URLs --------------------------------------------------------

    def parse_reference(self, value: str) -> Reference:
        """Parse a reference, knowing this server's blob emulators."""
        return parse_reference(value, self._scope, blob_emulator_endpoints=self._emulators)

    def seal_url(self, url: str) -> str | None:
        """A storage URL that carries a credential (a SAS, a presigned signature), encrypted
        as stored datastore credentials are, for a job's spec; None when it carries none."""
        if self._cipher is None or redact_url(url) == url:
            return None
        return self._cipher.seal({"url": url})

    def stored_location(self, spec: dict[str, Any]) -> Location:
        """The location a job's spec recorded: ``{"datastore", "path"}``, ``{"url"}``, or
        ``{"sealed_url"}`` (a URL with a credential, see :meth:`seal_url`)."""
        url = spec.get("url")
        sealed = spec.get("sealed_url")
        if sealed:
            if self._cipher is None:
                raise UnsupportedError(
                    "A job's input URL is stored encrypted, and this server cannot open it."
                )
            url = self._cipher.open(str(sealed)).get("url")
        if url:
            ref = self.parse_reference(str(url))
            if not isinstance(ref, StorageUrlRef):
                raise ValidationError(f"{url!r} is not a storage URL.", target="url")
            return self.url_location(ref)
        return self.location(spec["datastore"], spec["path"])

    def url_location(self, ref: StorageUrlRef) -> Location:
        """Where a storage URL points, reached through a matching datastore if there is one.

        Raises:
            UnsupportedError: a plain https URL that is not an Azure Blob URL.
            ValidationError: the path leaves the container.
        """
        if ref.kind != "s3":  # an s3:// URL names a bucket, not a host
            self._network.check_url(ref.url, what="The storage URL", target="Uri")
        if ref.kind == "https":
            raise UnsupportedError(
                f"{ref.url!r} is a plain https URL, which cannot be listed or checked: give an "
                "Azure Blob URL (https://<account>.blob.core.windows.net/<container>/<path>), "
                "an abfss://, wasbs:// or s3:// URL, or a datastore path.",
                target="Uri",
            )
        path, _ = check_relative_path(unquote(ref.path))
        matched = None if ref.query else self._matching_datastore(ref)
        if matched is not None:
            return self.location(matched, path)
        backend: DatastoreBackend
        if ref.kind == "s3":
            backend = S3Datastore(str(ref.container), client=self._client)
        else:
            credentials = {"sas_token": ref.query} if ref.query else None
            account_url = self._account_url(ref)
            self._network.check_url(account_url, what="The storage account URL", target="Uri")
            backend = AzureContainerDatastore(
                DatastoreType.AZURE_BLOB,
                str(ref.account),
                str(ref.container),
                account_url,
                credentials,
                self._client,
            )
        return Location("", path, backend, url=ref.url)

    def _matching_datastore(self, ref: StorageUrlRef) -> str | None:
        for record in self._store.list_all():
            config = record.config
            if ref.kind == "s3":
                if record.type == DatastoreType.S3.value and config.get("bucket") == ref.container:
                    return record.name
            elif (
                record.type in _AZURE_TYPES
                and config.get("account_name") == ref.account
                and config.get(_CONTAINER_KEY[record.type]) == ref.container
            ):
                return record.name
        return None

    def _account_url(self, ref: StorageUrlRef) -> str:
        account = str(ref.account)
        lowered = ref.url.lower()
        for endpoint in self._emulators:
            if lowered.startswith(endpoint.lower() + "/"):
                return f"{endpoint}/{account}"
        host = urlsplit(ref.url).hostname or ""
        suffix = host.split(".", 2)[2] if host.count(".") >= 2 else None
        scheme = "http" if lowered.startswith("http://") else "https"
        return blob_endpoint(account, suffix, scheme)

    # -- shapes -----------------------------------------------------------------------------

    def _out(self, record: DatastoreRecord) -> DatastoreOut:
        settings = {
            k: v for k, v in record.config.items() if k in TYPE_SETTINGS.get(record.type, ())
        }
        if settings.get("root") == HOME_ROOT:
            settings["root"] = str(self._home.blobstore)
        for key in ("endpoint", "endpoint_url"):  # a SAS pasted into an endpoint stays hidden
            if isinstance(settings.get(key), str):
                settings[key] = redact_url(settings[key])
        kind = "none"
        if record.secret and self._cipher is not None:
            try:
                stored = self._cipher.open(record.secret)
                kind = next((v for k, v in _CREDENTIAL_KINDS.items() if stored.get(k)), "none")
            except Exception:
                kind = "unreadable"
        return DatastoreOut(
            id=self._scope.datastore_id(record.name),
            name=record.name,
            type=record.type,
            description=record.description,
            tags={k: str(v) for k, v in record.tags.items()},
            is_default=record.is_default,
            credentials={"type": kind},
            **settings,
        )


def _ambient_s3_endpoints() -> tuple[str, ...]:
    """The S3 endpoints the server's own AWS settings name (s3:// URLs of no datastore go
    there): the operator's settings, so reachable."""
    names = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    return tuple(os.environ[n] for n in names if os.environ.get(n))


def storage_call(what: str, target: str, call: Callable[[], _T], *, writing: bool = False) -> _T:
    """Run a storage operation; a failure (no such account, no access, ...) becomes a 4xx
    whose message shows no credential.

    Raises:
        ValidationError: naming ``what`` and the storage's own error.
    """
    try:
        return call()
    except SluicewayError:
        raise
    except Exception as exc:
        refused = refusal_in(exc)
        if refused is not None:
            raise refused from None
        reason = redact_text(str(exc)).strip().splitlines()[0] if str(exc).strip() else ""
        verb = "written" if writing else "read"
        raise ValidationError(
            f"{what} cannot be {verb}: {type(exc).__name__}"
            + (f": {reason}" if reason else "")
            + ". Check that the account, container or bucket exists and that the datastore's "
            f"credentials (or the SAS in the URL) allow {'writing' if writing else 'reading'} it.",
            target=target,
        ) from None
