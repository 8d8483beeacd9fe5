"""Batch endpoints: a durable name with a REST URI that runs its default deployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluiceway.entities._resource import (
    RestBacked,
    SystemData,
    drop_empty,
    str_dict,
    str_or_none,
)


class EndpointDefaults:
    """``defaults`` of an endpoint.

    Azure's SDK hands out an object (``endpoint.defaults.deployment_name = "d"``) but accepts a
    dict (``defaults={"deployment_name": "d"}``, ``endpoint.defaults["deployment_name"]``);
    this class is both.
    """

    _KEYS = ("deployment_name",)

    def __init__(self, deployment_name: str | None = None) -> None:
        self.deployment_name = deployment_name

    @classmethod
    def _of(cls, value: EndpointDefaults | Mapping[str, Any] | None) -> EndpointDefaults:
        if isinstance(value, EndpointDefaults):
            return value
        if value is None:
            return cls()
        return cls(deployment_name=str_or_none(value.get("deployment_name")))

    def _check(self, key: str) -> None:
        if key not in self._KEYS:
            raise KeyError(f"endpoint defaults have no {key!r}; accepted: deployment_name")

    def __getitem__(self, key: str) -> str | None:
        self._check(key)
        return self.deployment_name

    def __setitem__(self, key: str, value: str | None) -> None:
        self._check(key)
        self.deployment_name = value

    def get(self, key: str, default: str | None = None) -> str | None:
        if key not in self._KEYS:
            return default
        return self.deployment_name if self.deployment_name is not None else default

    def __bool__(self) -> bool:
        return self.deployment_name is not None

    def _to_dict(self) -> dict[str, Any]:
        return drop_empty({"deployment_name": self.deployment_name})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._to_dict() == dict(other)
        return isinstance(other, EndpointDefaults) and other.deployment_name == self.deployment_name

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EndpointDefaults(deployment_name={self.deployment_name!r})"


class BatchEndpoint(RestBacked):
    """A batch endpoint, as ``azure.ai.ml.entities.BatchEndpoint``.

    ``scoring_uri``, ``id`` and ``provisioning_state`` are set by the server.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        auth_mode: str = "aad_token",
        description: str | None = None,
        location: str | None = None,
        defaults: EndpointDefaults | Mapping[str, Any] | None = None,
        default_deployment_name: str | None = None,
        scoring_uri: str | None = None,
        openapi_uri: str | None = None,
    ) -> None:
        self.name = name
        self.tags = str_dict(tags)
        self.properties = str_dict(properties)
        self.auth_mode = auth_mode
        self.description = description
        self.location = location
        self._defaults = EndpointDefaults._of(defaults)
        if not self._defaults and default_deployment_name:
            self._defaults.deployment_name = default_deployment_name
        self.scoring_uri = scoring_uri
        self.openapi_uri = openapi_uri
        self.id: str | None = None
        self.provisioning_state: str | None = None
        self.creation_context: SystemData | None = None

    @property
    def defaults(self) -> EndpointDefaults:
        return self._defaults

    @defaults.setter
    def defaults(self, value: EndpointDefaults | Mapping[str, Any] | None) -> None:
        self._defaults = EndpointDefaults._of(value)

    @property
    def default_deployment_name(self) -> str | None:
        return self._defaults.deployment_name

    @classmethod
    def _from_rest(cls, raw: Mapping[str, Any]) -> BatchEndpoint:
        defaults = raw.get("defaults")
        endpoint = cls(
            name=str_or_none(raw.get("name")),
            tags=raw.get("tags"),
            properties=raw.get("properties"),
            auth_mode=str(raw.get("auth_mode") or "aad_token"),
            description=str_or_none(raw.get("description")),
            defaults=defaults if isinstance(defaults, Mapping) else None,
            scoring_uri=str_or_none(raw.get("scoring_uri")),
            openapi_uri=str_or_none(raw.get("openapi_uri")),
        )
        endpoint.id = str_or_none(raw.get("id"))
        endpoint.provisioning_state = str_or_none(raw.get("provisioning_state"))
        endpoint.creation_context = SystemData._from_rest(raw.get("creation_context"))
        endpoint._keep(raw)
        return endpoint

    def _to_create_body(self) -> dict[str, Any]:
        """The ``BatchEndpointCreate`` body."""
        return drop_empty(
            {
                "name": self.name,
                "description": self.description,
                "tags": self.tags,
                "auth_mode": self.auth_mode,
                "defaults": self._defaults._to_dict(),
                "properties": self.properties,
            }
        )

    def _local_dict(self) -> dict[str, Any]:
        body = self._to_create_body()
        if self.location:
            body["location"] = self.location
        return body
