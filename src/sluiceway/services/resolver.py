"""Turns an input reference into files in a datastore, checking what can be checked up front."""

from __future__ import annotations

from dataclasses import dataclass

from sluiceway.errors import UnsupportedError, ValidationError
from sluiceway.schemas.common import WorkspaceScope
from sluiceway.services.assets import AssetService
from sluiceway.services.datastores import DatastoreService
from sluiceway.storage.locations import Location
from sluiceway.storage.references import (
    ACCEPTED_INPUT_FORMS,
    DataAssetRef,
    DatastorePathRef,
    LocalPathRef,
    Reference,
    StorageUrlRef,
    parse_reference,
)

DATA_TYPES = ("uri_folder", "uri_file")


@dataclass(frozen=True)
class ResolvedInput:
    name: str
    type: str  # uri_file | uri_folder
    uri: str  # as the caller gave it
    location: Location


class InputResolver:
    def __init__(
        self, datastores: DatastoreService, assets: AssetService, scope: WorkspaceScope
    ) -> None:
        self._datastores = datastores
        self._assets = assets
        self._scope = scope

    def resolve(self, name: str, declared_type: str, uri: str) -> ResolvedInput:
        """Resolve one data input; it must exist, be of its declared type and hold files.

        Raises:
            ValidationError: naming the input and the location, for every problem.
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
            ref = parse_reference(uri, self._scope)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {exc.message}", target=name) from None
        location = self._locate(where, name, ref, uri)
        self._check(where, name, declared_type, uri, location)
        return ResolvedInput(name, declared_type, uri, location)

    def _locate(self, where: str, name: str, ref: Reference, uri: str) -> Location:
        if isinstance(ref, LocalPathRef):
            raise ValidationError(
                f"{where}: {uri!r} is a local path, and the server does not read its own disk "
                "for a caller. The CLI and SDK upload local files and folders for you; over REST "
                f"give one of: {ACCEPTED_INPUT_FORMS}.",
                target=name,
            )
        if isinstance(ref, StorageUrlRef):
            raise UnsupportedError(
                f"{where}: storage URLs ({ref.kind}) are not supported by this server yet; "
                f"accepted: {ACCEPTED_INPUT_FORMS}.",
                target=name,
            )
        if isinstance(ref, DataAssetRef):
            asset = self._assets.get("data", ref.name, ref.version)
            if asset.type == "mltable":
                raise UnsupportedError(
                    f"{where}: data asset {asset.name}:{asset.version} is an mltable, and MLTable "
                    "inputs are not supported by batch endpoints; register it as uri_folder or "
                    "uri_file.",
                    target=name,
                )
            inner = parse_reference(asset.path, self._scope)
            if not isinstance(inner, DatastorePathRef):
                return self._locate(where, name, inner, asset.path)
            ref = inner
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(
                f"{where}: {uri!r} is not a data location; accepted: {ACCEPTED_INPUT_FORMS}.",
                target=name,
            )
        return self._datastores.location(ref.datastore, ref.path)

    def _check(
        self, where: str, name: str, declared_type: str, uri: str, location: Location
    ) -> None:
        if not location.exists():
            raise ValidationError(
                f"{where}: {uri!r} does not exist (datastore {location.datastore!r}, "
                f"path {location.path!r}).",
                target=name,
            )
        if declared_type == "uri_file" and not location.is_file():
            raise ValidationError(
                f"{where}: {uri!r} is a folder, but the input type is uri_file.", target=name
            )
        if declared_type == "uri_folder" and not location.is_dir():
            raise ValidationError(
                f"{where}: {uri!r} is a file, but the input type is uri_folder; use uri_file.",
                target=name,
            )
        if declared_type == "uri_folder" and not location.list_files():
            raise ValidationError(f"{where}: folder {uri!r} holds no files.", target=name)

    def output_location(self, datastore: str, folder: str) -> Location:
        """Where an output folder goes; it may not exist yet, but it may not be a file."""
        location = self._datastores.location(datastore, folder)
        if location.is_file():
            raise ValidationError(
                f"Output folder {location.uri!r} is an existing file.", target="OutputData"
            )
        return location
