"""``ml_client.compute``: register, show, list and delete computes (Ray clusters)."""

from __future__ import annotations

import os
from pathlib import Path

from sluiceway.entities.compute import Compute
from sluiceway.errors import ValidationError
from sluiceway.schemas.computes import ComputeCreate
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.poller import LROPoller
from sluiceway.sdk.validate import validate_shape
from sluiceway.sdk.yaml_file import read_yaml


class ComputeOperations:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def begin_create_or_update(self, compute: Compute) -> LROPoller[Compute]:
        """Register a compute or replace its settings; the server checks that a Ray cluster
        answers at its address.

        Raises:
            ValidationError: a setting is not valid, or the cluster cannot be reached.
        """
        if not compute.name:
            raise ValidationError("A compute needs a name", target="name")
        checked = validate_shape(
            ComputeCreate, compute._to_create_body(), source=f"compute {compute.name!r}"
        )
        answer = self._connection.request(
            "PUT",
            f"/computes/{segment(compute.name)}",
            json=checked.model_dump(mode="json", exclude_none=True, by_alias=True),
            expected=(200, 201),
        )
        return LROPoller(Compute._from_rest(answer))

    def get(self, name: str) -> Compute:
        """The compute, with what its Ray cluster has (``cluster``), asked of Ray now."""
        return Compute._from_rest(
            self._connection.request("GET", f"/computes/{segment(name)}", expected=(200,))
        )

    def list(self) -> list[Compute]:
        answer = self._connection.request("GET", "/computes", expected=(200,))
        return [Compute._from_rest(item) for item in answer or []]

    def begin_delete(self, name: str) -> LROPoller[None]:
        self._connection.request("DELETE", f"/computes/{segment(name)}", expected=(204,))
        return LROPoller(None)


def load_compute(source: str | os.PathLike[str]) -> Compute:
    """A compute from its YAML file (``name``, ``type``, ``address``, ...).

    Raises:
        ValidationError: the file cannot be read, is not YAML, or is not a mapping.
    """
    path = Path(source)
    content = read_yaml(path, "compute YAML").content
    if not isinstance(content, dict):
        raise ValidationError(f"{path}: a compute YAML is a mapping", target="file")
    content = {k: v for k, v in content.items() if k != "$schema"}
    if "name" not in content:
        raise ValidationError(f"{path}: a compute YAML needs a name", target="name")
    return Compute(**{str(k): v for k, v in content.items()})
