"""``ml_client.data`` and ``ml_client.models``: versioned assets, registered and looked up."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from sluiceway.entities.assets import Data, Model
from sluiceway.errors import ResourceNotFoundError, ValidationError
from sluiceway.schemas.assets import DataCreate, ModelCreate
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.paths import local_path
from sluiceway.sdk.uploads import Uploader, scan
from sluiceway.sdk.validate import validate_shape

AssetT = TypeVar("AssetT", Data, Model)


class _AssetOperations(Generic[AssetT]):
    """What data and model operations share; only the route and the shapes differ."""

    _collection: str
    _what: str

    def __init__(
        self,
        connection: Connection,
        uploader: Uploader,
        from_rest: Callable[[Mapping[str, Any]], AssetT],
    ) -> None:
        self._connection = connection
        self._uploader = uploader
        self._from_rest: Callable[[Mapping[str, Any]], AssetT] = from_rest

    def _path_for_server(self, asset: AssetT) -> str:
        if not asset.path:
            raise ValidationError(f"{self._what} {asset.name!r} needs a path", target="path")
        if local_path(asset.path) is not None:
            return self._uploader.upload(asset.path)
        return asset.path

    def _create(self, asset: AssetT, shape: type[DataCreate] | type[ModelCreate]) -> AssetT:
        if not asset.name:
            raise ValidationError(f"{self._what} needs a name", target="name")
        body = asset._to_create_body(self._path_for_server(asset))
        checked = validate_shape(shape, body, source=f"{self._what} {asset.name!r}")
        answer = self._connection.request(
            "POST",
            f"/{self._collection}",
            json=checked.model_dump(mode="json", exclude_unset=True),
            expected=(200, 201),
        )
        return self._from_rest(answer)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> AssetT:
        """One version by ``version``, or by ``label`` (only ``latest``; the default).

        Raises:
            ValidationError: both version and label, or a label other than ``latest``.
            ResourceNotFoundError: no such asset or version.
        """
        base = f"/{self._collection}/{segment(name)}"
        if version is not None and label is not None:
            raise ValidationError(
                f"get {self._what} {name!r}: give a version or a label, not both",
                target="version",
            )
        if version is not None:
            path = f"{base}/versions/{segment(str(version))}"
        else:
            if label not in (None, "latest"):
                raise ValidationError(
                    f"get {self._what} {name!r}: label {label!r} is not supported; use 'latest'",
                    target="label",
                )
            path = f"{base}/labels/latest"
        return self._from_rest(self._connection.request("GET", path, expected=(200,)))

    def list(self, name: str | None = None) -> list[AssetT]:
        """Every version of ``name``, newest first; without a name, the latest of each asset."""
        path = (
            f"/{self._collection}"
            if name is None
            else f"/{self._collection}/{segment(name)}/versions"
        )
        answer = self._connection.request("GET", path, expected=(200,))
        return [self._from_rest(item) for item in answer or []]


class DataOperations(_AssetOperations[Data]):
    """``ml_client.data``."""

    _collection = "data"
    _what = "Data asset"

    def __init__(self, connection: Connection, uploader: Uploader) -> None:
        super().__init__(connection, uploader, Data._from_rest)

    def create_or_update(self, data: Data) -> Data:
        """Register a data asset version; a local ``path`` is uploaded first.

        Without a version the server assigns the next one.

        Raises:
            ValidationError: the asset is malformed or its path does not exist.
            ConflictError: that version exists with another path or type.
        """
        return self._create(data, DataCreate)


class ModelOperations(_AssetOperations[Model]):
    """``ml_client.models``."""

    _collection = "models"
    _what = "Model"

    def __init__(self, connection: Connection, uploader: Uploader) -> None:
        super().__init__(connection, uploader, Model._from_rest)

    def create_or_update(self, model: Model) -> Model:
        """Register a model version; a local ``path`` (folder or file) is uploaded first.

        Raises:
            ValidationError: the model is malformed or its path does not exist.
            ConflictError: that version exists with another path or type.
        """
        return self._create(model, ModelCreate)

    def register_inline(self, model: Model) -> Model:
        """Register a model a deployment names inline, reusing the latest version if identical.

        Re-running a deployment script then does not add a model version per run.
        """
        if model.version is None and model.name:
            path = self._path_for_server(model)
            try:
                latest = self.get(model.name)
            except ResourceNotFoundError:
                latest = None
            # The server keeps a registered model's files in a snapshot named by their content.
            known = {path}
            if model.path and local_path(model.path) is not None:
                known.add(scan(model.path).registered_uri())
            if latest is not None and latest.path in known and latest.type == model.type:
                return latest
            inline = Model(
                name=model.name,
                type=model.type,
                path=path,
                description=model.description,
                tags=model.tags,
                properties=model.properties,
            )
            return self._create(inline, ModelCreate)
        return self._create(model, ModelCreate)
