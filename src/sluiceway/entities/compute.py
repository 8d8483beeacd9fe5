"""A compute: where a deployment's jobs run (``type: ray``: a Ray cluster at ``address``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluiceway.entities._resource import RestBacked, SystemData


class Compute(RestBacked):
    """``compute.yml``: ``name``, ``type`` (``ray``; Azure's ``amlcompute`` runs on the server's
    own workers), ``address`` (``auto``, ``host:port``, ``ray://host:port``), ``description``,
    ``tags``. Read from the server it also has ``runs_on`` and, from ``get``, ``cluster``: what
    Ray says the cluster has (``nodes``, ``cpus``, ``gpus``, ``memory_bytes``)."""

    def __init__(
        self,
        *,
        name: str,
        type: str = "ray",
        address: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.type = type
        self.address = address
        self.description = description
        self.tags = dict(tags or {})
        self.id: str | None = None
        self.runs_on: str | None = None
        self.cluster: dict[str, Any] | None = None
        self.creation_context: SystemData | None = None
        self.extra = dict(kwargs)  # Azure's amlcompute settings (size, min_instances, ...)

    def _local_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "type": self.type}
        for key in ("address", "description"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.tags:
            body["tags"] = dict(self.tags)
        return body | self.extra

    def _to_create_body(self) -> dict[str, Any]:
        return self._local_dict()

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> Compute:
        compute = cls(
            name=str(raw.get("name")),
            type=str(raw.get("type")),
            address=raw.get("address"),
            description=raw.get("description"),
            tags=dict(raw.get("tags") or {}),
        )
        compute.id = raw.get("id")
        compute.runs_on = raw.get("runs_on")
        compute.cluster = raw.get("cluster")
        compute.creation_context = SystemData._from_rest(raw.get("creation_context"))
        compute._keep(raw)
        return compute


class AmlCompute(Compute):
    """Azure's compute cluster: accepted, and its jobs run on the server's own workers."""

    def __init__(self, *, name: str, **kwargs: Any) -> None:
        kwargs.setdefault("type", "amlcompute")
        super().__init__(name=name, **kwargs)
