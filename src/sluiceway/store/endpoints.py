"""Batch endpoints and their deployments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from sluiceway.clock import as_utc, utcnow
from sluiceway.store.db import Database
from sluiceway.store.tables import (
    DeploymentRow,
    EndpointRow,
    RoleAssignmentRow,
    text_map,
    text_or_none,
)


@dataclass(frozen=True)
class EndpointRecord:
    name: str
    description: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    auth_mode: str
    default_deployment: str | None
    created_at: datetime
    created_by: str
    id: str = ""  # immutable: what role assignments on the endpoint reference


@dataclass(frozen=True)
class DeploymentRecord:
    endpoint_name: str
    name: str
    type: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str


def _endpoint(row: EndpointRow) -> EndpointRecord:
    return EndpointRecord(
        row.name,
        text_or_none(row.description),
        text_map(row.tags),
        text_map(row.properties),
        row.auth_mode,
        row.default_deployment,
        as_utc(row.created_at),
        row.created_by,
        row.id,
    )


def _deployment(row: DeploymentRow) -> DeploymentRecord:
    return DeploymentRecord(
        row.endpoint_name,
        row.name,
        row.type,
        dict(row.spec),
        as_utc(row.created_at),
        row.created_by,
    )


class EndpointStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> EndpointRecord | None:
        with self._db.reading() as s:
            row = s.get(EndpointRow, name)
            return _endpoint(row) if row else None

    def list_all(self) -> list[EndpointRecord]:
        with self._db.reading() as s:
            return [_endpoint(r) for r in s.scalars(select(EndpointRow).order_by(EndpointRow.name))]

    def upsert(
        self,
        name: str,
        *,
        description: str | None,
        tags: dict[str, Any],
        properties: dict[str, Any],
        auth_mode: str,
        default_deployment: str | None,
        created_by: str,
    ) -> tuple[EndpointRecord, bool]:
        """Create or update an endpoint; returns it and whether it was created."""
        with self._db.session() as s:
            row = s.get(EndpointRow, name)
            created = row is None
            if row is None:
                row = EndpointRow(name=name, created_at=utcnow(), created_by=created_by)
                s.add(row)
            row.description = description
            row.tags = tags
            row.properties = properties
            row.auth_mode = auth_mode
            row.default_deployment = default_deployment
            s.flush()
            return _endpoint(row), created

    def set_default(self, name: str, deployment: str | None) -> None:
        with self._db.session() as s:
            row = s.get(EndpointRow, name)
            if row is not None:
                row.default_deployment = deployment

    def delete(self, name: str) -> None:
        """Delete an endpoint, its deployments and the roles granted on it."""
        with self._db.session() as s:
            row = s.get(EndpointRow, name)
            if row is None:
                return
            s.execute(delete(RoleAssignmentRow).where(RoleAssignmentRow.resource_id == row.id))
            s.execute(delete(DeploymentRow).where(DeploymentRow.endpoint_name == name))
            s.execute(delete(EndpointRow).where(EndpointRow.name == name))

    def get_deployment(self, endpoint: str, name: str) -> DeploymentRecord | None:
        with self._db.reading() as s:
            row = s.get(DeploymentRow, (endpoint, name))
            return _deployment(row) if row else None

    def list_deployments(self, endpoint: str) -> list[DeploymentRecord]:
        with self._db.reading() as s:
            rows = s.scalars(
                select(DeploymentRow)
                .where(DeploymentRow.endpoint_name == endpoint)
                .order_by(DeploymentRow.created_at)
            )
            return [_deployment(r) for r in rows]

    def upsert_deployment(
        self,
        endpoint: str,
        name: str,
        *,
        type: str,
        spec: dict[str, Any],
        created_by: str,
        make_default: bool,
    ) -> tuple[DeploymentRecord, bool]:
        """Create or update a deployment in one transaction with the endpoint's default.

        The endpoint's first deployment becomes its default, as does one created with
        ``make_default``.
        """
        with self._db.session() as s:
            endpoint_row = s.get(EndpointRow, endpoint, with_for_update=True)
            if endpoint_row is None:
                raise LookupError(endpoint)
            row = s.get(DeploymentRow, (endpoint, name))
            created = row is None
            if row is None:
                row = DeploymentRow(
                    endpoint_name=endpoint, name=name, created_at=utcnow(), created_by=created_by
                )
                s.add(row)
            row.type = type
            row.spec = spec
            if make_default or endpoint_row.default_deployment is None:
                endpoint_row.default_deployment = name
            s.flush()
            return _deployment(row), created

    def delete_deployment(self, endpoint: str, name: str) -> None:
        with self._db.session() as s:
            s.execute(
                delete(DeploymentRow).where(
                    DeploymentRow.endpoint_name == endpoint, DeploymentRow.name == name
                )
            )
            row = s.get(EndpointRow, endpoint)
            if row is not None and row.default_deployment == name:
                row.default_deployment = None
