"""The database schema. Alembic migrations under ``store/migrations`` create it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def text_map(stored: object) -> dict[str, str]:
    """A JSON column of string pairs (tags, properties), as strings.

    Writes are checked, but a row written before they were (or by hand) may hold a list, a
    number or nested values; a read turns those into text rather than fail, so that one row
    never breaks the answer that lists it.
    """
    if not isinstance(stored, dict):
        return {}
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in stored.items()
    }


def text_or_none(stored: object) -> str | None:
    """A text column's value as text (see :func:`text_map`)."""
    return stored if stored is None or isinstance(stored, str) else json.dumps(stored)


def new_id() -> str:
    """An immutable id for a new row: what references to it hold, rather than its name."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class IdentityRow(Base):
    """A user or service principal that holds tokens and roles."""

    __tablename__ = "identities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # user | service_principal
    created_at: Mapped[datetime]
    description: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(64))  # service principals only
    secret_hash: Mapped[str | None] = mapped_column(String(255))  # scrypt, salted; never the secret
    external_id: Mapped[str | None] = mapped_column(String(255))  # an OpenID Connect oid or sub
    # Carried in every token this workspace signs for the identity; raising it revokes them.
    token_generation: Mapped[int] = mapped_column(Integer, server_default="0", default=0)

    __table_args__ = (
        Index("ix_identities_client_id", "client_id", unique=True),
        Index("ix_identities_external_id", "external_id", unique=True),
    )


class RoleAssignmentRow(Base):
    """A role on a scope: ``workspace``, ``endpoint:<n>`` or ``datastore:<n>``.

    ``resource_id`` is the id of the endpoint or datastore the role was granted on: the grant
    holds for that resource only, not for a later one that takes its name.
    """

    __tablename__ = "role_assignments"

    identity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime]
    resource_id: Mapped[str | None] = mapped_column(String(64))  # None for the workspace

    __table_args__ = (
        ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="CASCADE"),
        Index("ix_role_assignments_resource_id", "resource_id"),
    )


class DatastoreRow(Base):
    __tablename__ = "datastores"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]]
    config: Mapped[dict[str, Any]]  # non-secret settings: root, account, container, bucket, ...
    secret: Mapped[str | None] = mapped_column(Text)  # encrypted credentials
    is_default: Mapped[bool]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    # Nullable in the schema only because the column was added to existing tables.
    id: Mapped[str] = mapped_column(String(64), nullable=True, default=new_id)

    __table_args__ = (Index("ix_datastores_id", "id", unique=True),)


class AssetVersionRow(Base):
    """A version of a data asset or a model (``kind`` tells which)."""

    __tablename__ = "asset_versions"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # data | model
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # creation order within the name: "latest" is the max
    type: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]]
    properties: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class UploadRow(Base):
    """A finished local upload, by content hash, so the same content is not sent twice."""

    __tablename__ = "uploads"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class EndpointRow(Base):
    __tablename__ = "batch_endpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]]
    properties: Mapped[dict[str, Any]]
    auth_mode: Mapped[str] = mapped_column(String(32))
    default_deployment: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    # Nullable in the schema only because the column was added to existing tables.
    id: Mapped[str] = mapped_column(String(64), nullable=True, default=new_id)

    __table_args__ = (Index("ix_batch_endpoints_id", "id", unique=True),)


class DeploymentRow(Base):
    __tablename__ = "batch_deployments"

    endpoint_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]]  # the BatchDeploymentOut fields, model resolved to name:version
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        ForeignKeyConstraint(["endpoint_name"], ["batch_endpoints.name"], ondelete="CASCADE"),
    )


class JobRow(Base):
    """One invocation. The jobs table is the scheduler's queue."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint_name: Mapped[str] = mapped_column(String(64))
    deployment_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    spec: Mapped[
        dict[str, Any]
    ]  # resolved inputs, outputs, effective settings, deployment snapshot
    invoker: Mapped[str] = mapped_column(String(255))  # the identity's name, as it was shown
    # The identity that started the job, which owns it; None once no identity has that id.
    invoker_id: Mapped[str | None] = mapped_column(String(64))
    experiment_name: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    # Raised by every claim; the lease owner names it (``<scheduler>#<epoch>``): a fencing token.
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    seq: Mapped[int] = mapped_column(Integer)  # submission order: the queue is FIFO

    __table_args__ = (
        Index("ix_jobs_status_seq", "status", "seq"),
        Index("ux_jobs_seq", "seq", unique=True),
        Index("ix_jobs_endpoint", "endpoint_name", "created_at"),
        Index("ix_jobs_invoker_id", "invoker_id", "created_at"),
    )


class MiniBatchRow(Base):
    """A planned unit of work of a job. ``succeeded`` rows are never run again."""

    __tablename__ = "mini_batches"

    job_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    files: Mapped[list[Any]]  # input file paths relative to the input root, in input order
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    items_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        ForeignKeyConstraint(["job_name"], ["jobs.name"], ondelete="CASCADE"),
        Index("ix_mini_batches_status", "job_name", "status"),
    )


class ComponentVersionRow(Base):
    """A version of a command or pipeline component; ``spec`` is its YAML, checked and pinned."""

    __tablename__ = "component_versions"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # creation order within the name: "latest" is the max
    type: Mapped[str] = mapped_column(String(16))  # command | pipeline
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class EnvironmentVersionRow(Base):
    """A version of an environment: its definition as given (the conda file read in), and the
    content its build depends on, by hash (equal content shares one build)."""

    __tablename__ = "environment_versions"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # creation order within the name: "latest" is the max
    spec: Mapped[dict[str, Any]]  # description, image, conda_file, requirements, tags
    content: Mapped[dict[str, Any]]  # EnvironmentContent.to_json()
    content_hash: Mapped[str] = mapped_column(String(64))
    archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class JobStepRow(Base):
    """One step of a pipeline job: its status, exit code and times (logs are files)."""

    __tablename__ = "job_steps"

    job_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    index: Mapped[int] = mapped_column(Integer)  # dependency order
    status: Mapped[str] = mapped_column(String(16))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        ForeignKeyConstraint(["job_name"], ["jobs.name"], ondelete="CASCADE"),
        Index("ix_job_steps_job", "job_name", "index"),
    )


class FileWriterRow(Base):
    """Who wrote a file through the files API: only they may replace it, and only when asked."""

    __tablename__ = "file_writers"

    datastore: Mapped[str] = mapped_column(String(255), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)  # normalised, relative to its root
    writer_id: Mapped[str] = mapped_column(String(64))  # the identity's id, not its name
    written_at: Mapped[datetime]


class SnapshotRow(Base):
    """Registered files (a model, a deployment's or a component's code), copied into the
    registry and named by the digest of their manifest."""

    __tablename__ = "snapshots"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the manifest
    files: Mapped[list[Any]]  # [{"path", "sha256", "size"}], paths relative to the snapshot
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class WorkspaceMetaRow(Base):
    """Facts about the workspace itself, one per name (the fingerprint of its key)."""

    __tablename__ = "workspace_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ComputeRow(Base):
    """A registered compute: where a deployment's jobs run (``type`` ``ray``: a Ray cluster)."""

    __tablename__ = "computes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), default=new_id)
    type: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("ix_computes_id", "id", unique=True),)
