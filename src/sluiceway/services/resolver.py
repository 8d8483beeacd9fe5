"""Turns an input reference into files in storage, checking what can be checked up front.

Every form resolves to a :class:`Location`: a datastore path, a data asset (through its path,
which may itself be a datastore path or a storage URL), or a storage URL (Azure Blob, ADLS,
S3, or a blob emulator's path-style URL). The checks (the caller may read it, it exists, is of
its declared type and holds files) run before a job is created, so a wrong input is a 4xx that
names it. Access is checked once the location is known and before storage is touched, so a
caller learns nothing about data it may not read. Access is checked on every call; what storage
said is remembered for a few seconds per reader and location (:class:`RecentChecks`), so many
invocations over one input ask storage once. Within those seconds an input removed meanwhile, or
a datastore whose credentials were changed, is still taken: the job then fails reading it, with
the storage's error in its logs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sluiceway.auth.principals import Principal
from sluiceway.errors import PermissionDeniedError, UnsupportedError, ValidationError
from sluiceway.schemas.common import DEFAULT_DATASTORE, WorkspaceScope
from sluiceway.services.assets import AssetService
from sluiceway.services.data_access import require_read, require_write
from sluiceway.services.datastores import DatastoreService, storage_call
from sluiceway.storage.locations import Location
from sluiceway.storage.redaction import redact_url
from sluiceway.storage.references import (
    ACCEPTED_INPUT_FORMS,
    DataAssetRef,
    DatastorePathRef,
    LocalPathRef,
    Reference,
    StorageUrlRef,
)
from sluiceway.storage.reserved import JOBS_FOLDER, server_owned

DATA_TYPES = ("uri_folder", "uri_file")
# How long an input found good (it exists, is of its type, holds files) is not looked at again
# in storage for the same reader: invoking many jobs over one input asks storage once a while.
INPUT_CHECK_SECONDS = 5.0


class RecentChecks:
    """Storage checks passed lately, forgotten after ``seconds``: what was checked (the reader,
    the datastore or storage URL, the path, the type), kept as a hash only, as a storage URL may
    carry a credential. Only passes are kept: a failed check is made again on the next call, so
    data uploaded just after a refusal is found at once. Who may read an input is not kept here:
    it is checked on every call, before this is asked.
    """

    def __init__(self, seconds: float, most: int = 4096) -> None:
        self._seconds = seconds
        self._most = most
        self._until: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _digest(key: tuple[str | None, ...]) -> bytes:
        return hashlib.sha256(json.dumps(key).encode()).digest()

    def holds(self, key: tuple[str | None, ...]) -> bool:
        digest = self._digest(key)
        with self._lock:
            until = self._until.get(digest)
            if until is None:
                return False
            if until < time.monotonic():
                del self._until[digest]
                return False
            return True

    def add(self, key: tuple[str | None, ...]) -> None:
        digest = self._digest(key)
        with self._lock:
            self._until[digest] = time.monotonic() + self._seconds
            self._until.move_to_end(digest)
            while len(self._until) > self._most:
                self._until.popitem(last=False)


@dataclass(frozen=True)
class ResolvedInput:
    name: str
    type: str  # uri_file | uri_folder
    uri: str  # as the caller gave it
    location: Location
    sealed_url: str | None = None  # the storage URL, encrypted, when it carries a credential

    def spec(self) -> dict[str, str]:
        """How a job records the input: a datastore and a path, or the storage URL.

        The job's spec is stored in the database: a credential in the URL (a SAS) is kept there
        only encrypted (``sealed_url``); ``uri`` and ``url`` are shown with it hidden.
        """
        spec = {
            "type": self.type,
            "uri": redact_url(self.uri) or self.uri,
            "datastore": self.location.datastore,
        }
        spec["path"] = self.location.path
        if self.location.url is not None:
            spec["url"] = redact_url(self.location.url) or self.location.url
            if self.sealed_url is not None:
                spec["sealed_url"] = self.sealed_url
            else:
                spec["url"] = self.location.url
        return spec


class InputResolver:
    def __init__(
        self, datastores: DatastoreService, assets: AssetService, scope: WorkspaceScope
    ) -> None:
        self._datastores = datastores
        self._assets = assets
        self._scope = scope
        self._checked = RecentChecks(INPUT_CHECK_SECONDS)

    def resolve(
        self, name: str, declared_type: str, uri: str, *, reader: Principal | None
    ) -> ResolvedInput:
        """Resolve one data input; it must exist, be of its declared type and hold files.

        Args:
            name: The input's name, as errors name it.
            declared_type: ``uri_file`` or ``uri_folder``.
            uri: The reference as the caller gave it.
            reader: Who must be allowed to read it: the invoker for an input it gives; None for
                data the deployment names itself (its manager chose it, the invoker cannot).

        Raises:
            ValidationError: naming the input and the location, for every problem.
            PermissionDeniedError: ``reader`` may not read the location.
        """
        where = f"Input {name!r}"
        if declared_type == "mltable":
            raise UnsupportedError(
                f"{where}: MLTable inputs are not supported by batch endpoints; use uri_folder or "
                "uri_file.",
                target=name,
            )
        if declared_type not in DATA_TYPES:
            raise ValidationError(
                f"{where}: type {declared_type!r} is not a data input type; accepted: "
                f"{', '.join(DATA_TYPES)}.",
                target=name,
            )
        try:
            ref = self._datastores.parse_reference(uri)
        except ValidationError as exc:
            raise type(exc)(f"{where}: {exc.message}", target=name) from None
        location = self._locate(where, name, ref, uri)
        if reader is not None:
            require_read(reader, location, f"input {name!r}")
        checked = (reader.id if reader else None, location.datastore, location.url)
        key = (*checked, location.path, declared_type)
        if not self._checked.holds(key):
            probe = self._datastores.probing(location)
            storage_call(
                f"{where}: {uri!r}",
                name,
                lambda: self._check(where, name, declared_type, uri, probe),
            )
            self._checked.add(key)
        sealed = self._datastores.seal_url(location.url) if location.url is not None else None
        return ResolvedInput(name, declared_type, uri, location, sealed)

    def _locate(self, where: str, name: str, ref: Reference, uri: str) -> Location:
        if isinstance(ref, LocalPathRef):
            raise ValidationError(
                f"{where}: {uri!r} is a local path, and the server does not read its own disk "
                "for a caller. The CLI and SDK upload local files and folders for you; over REST "
                f"give one of: {ACCEPTED_INPUT_FORMS}.",
                target=name,
            )
        if isinstance(ref, StorageUrlRef):
            try:
                return self._datastores.url_location(ref)
            except ValidationError as exc:
                raise type(exc)(f"{where}: {exc.message}", target=name) from None
        if isinstance(ref, DataAssetRef):
            asset = self._assets.get("data", ref.name, ref.version)
            if asset.type == "mltable":
                raise UnsupportedError(
                    f"{where}: data asset {asset.name}:{asset.version} is an mltable, and MLTable "
                    "inputs are not supported by batch endpoints; register it as uri_folder or "
                    "uri_file.",
                    target=name,
                )
            inner = self._datastores.parse_reference(asset.path)
            if isinstance(inner, DataAssetRef):
                raise ValidationError(
                    f"{where}: data asset {asset.name}:{asset.version} points at another asset "
                    f"({asset.path!r}).",
                    target=name,
                )
            return self._locate(where, name, inner, asset.path)
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(
                f"{where}: {uri!r} is not a data location; accepted: {ACCEPTED_INPUT_FORMS}.",
                target=name,
            )
        try:
            return self._datastores.location(ref.datastore, ref.path)
        except ValidationError as exc:
            raise type(exc)(f"{where}: {exc.message}", target=name) from None

    def _check(
        self, where: str, name: str, declared_type: str, uri: str, location: Location
    ) -> None:
        kind = location.kind()
        if kind is None:
            raise ValidationError(
                f"{where}: {uri!r} does not exist ({_describe(location)}).",
                target=name,
            )
        if declared_type == "uri_file" and kind != "file":
            raise ValidationError(
                f"{where}: {uri!r} is a folder, but the input type is uri_file; use uri_folder.",
                target=name,
            )
        if declared_type == "uri_folder" and kind != "folder":
            raise ValidationError(
                f"{where}: {uri!r} is a file, but the input type is uri_folder; use uri_file.",
                target=name,
            )
        if declared_type == "uri_folder" and not location.holds_files(folder=True):
            raise ValidationError(f"{where}: folder {uri!r} holds no files.", target=name)

    def output_reference(self, where: str, uri: str) -> DatastorePathRef:
        """The datastore path an output goes to.

        Outputs go to datastores (local, Azure Blob, ADLS Gen2, S3). A storage URL is accepted
        when a registered datastore names its container or bucket; an https URL of no datastore
        is read-only.

        Raises:
            ValidationError: naming ``where`` and what is accepted.
        """
        accepted = (
            "outputs are written to a datastore path, azureml://datastores/<datastore>/paths/"
            "<path> (or its /subscriptions/.../datastores/<datastore>/paths/<path> form)"
        )
        try:
            ref = self._datastores.parse_reference(uri)
        except ValidationError as exc:
            raise type(exc)(f"{where}.Uri: {exc.message}", target=where) from None
        if isinstance(ref, StorageUrlRef):
            location = None if ref.kind == "https" else self._datastores.url_location(ref)
            if location is None or location.url is not None:
                raise ValidationError(
                    f"{where}.Uri {uri!r} is not accepted: a storage URL of no registered "
                    f"datastore is read-only; {accepted}.",
                    target=where,
                )
            return DatastorePathRef(location.datastore, location.path, uri.endswith("/"))
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(f"{where}.Uri {uri!r} is not accepted: {accepted}.", target=where)
        return ref

    def exists(self, location: Location, where: str) -> bool:
        """Whether a file or folder exists; an unreadable store is a 4xx naming ``where``."""
        probe = self._datastores.probing(location)
        return storage_call(f"{where}: {location.uri}", where, probe.exists)

    def writable_output(
        self,
        where: str,
        uri: str,
        principal: Principal,
        *,
        named: bool,
        folder: bool = True,
        what: str,
    ) -> DatastorePathRef:
        """The datastore path of an output, checked once for every kind of job: ``principal``
        may write its datastore; an output the invocation ``named`` stays out of the places the
        server alone writes; a ``folder`` output is not a datastore's root.

        Raises:
            ValidationError: ``uri`` is not an output path, or a folder output is a root.
            PermissionDeniedError: the caller may not write there, or it is the server's.
        """
        ref = self.output_reference(where, uri)
        require_write(principal, ref.datastore, what)
        if named:
            self.check_named_output(where, ref)
        if folder and not ref.path:
            raise ValidationError(
                f"{where}.Uri {uri!r} is the root of datastore {ref.datastore!r}; an output needs "
                f"a folder of its own: azureml://datastores/{ref.datastore}/paths/<folder>/.",
                target=where,
            )
        return ref

    def check_named_output(self, where: str, ref: DatastorePathRef) -> None:
        """An output an invocation names may not go where the server alone writes: into a
        job's folder (another job's outputs and logs) or the registry.

        Raises:
            PermissionDeniedError: naming ``where`` and the place.
        """
        location = self._datastores.location(ref.datastore, ref.path)
        owner = server_owned(location.datastore, location.path)
        if owner is not None:
            raise PermissionDeniedError(
                f"{where}: {location.uri} is in {owner}; name an output folder elsewhere, or "
                "leave the output out to get the job's own folder.",
                target=where,
            )

    def new_job_folder(self, datastore: str, folder: str, fresh: bool) -> Location | None:
        """``folder``, when it is in the folder of a job whose name the server drew just now
        (``fresh``: a uuid4) in the default datastore: nothing can be there yet, so storage is
        not asked (:meth:`output_location` asks it twice); else None, and the caller checks.

        Why nothing can be there: ``azureml/<job>/`` of the default datastore is written by
        the scheduler alone, for that job (:mod:`sluiceway.storage.reserved`): the files API
        and outputs an invocation names refuse it, and job names are unique. A name drawn
        from 122 random bits has no job yet, so no process wrote its folder. A job named by
        its invoker is still looked for: a name may have been used before the database was.
        And whatever was checked here, the commit looks for every file it will write and writes
        none over an existing one (``overwrite=False``), but to finish its own interrupted
        commit (``scheduler/commit.py``).
        """
        if not fresh:
            return None
        location = self._datastores.location(datastore, folder)
        if server_owned(location.datastore, location.path) != server_owned(
            DEFAULT_DATASTORE, JOBS_FOLDER
        ):
            return None
        return location

    def output_location(self, datastore: str, folder: str) -> Location:
        """Where an output folder goes; it may not exist yet, but it may not be a file."""
        location = self._datastores.location(datastore, folder)
        probe = self._datastores.probing(location)
        is_file = storage_call(f"Output folder {location.uri!r}", "OutputData", probe.is_file)
        if is_file:
            raise ValidationError(
                f"Output folder {location.uri!r} is an existing file.", target="OutputData"
            )
        return location


def _describe(location: Location) -> str:
    if location.url is not None:
        return f"storage URL, path {location.full_path!r}"
    return f"datastore {location.datastore!r}, path {location.path!r}"
