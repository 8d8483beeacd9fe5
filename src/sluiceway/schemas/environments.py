"""Environments: the packages a deployment's code runs with."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sluiceway.schemas.assets import VersionedCreate
from sluiceway.schemas.common import CreationContext, Open


class EnvironmentCreate(VersionedCreate):
    """``POST /environments``: register an environment version, Azure's YAML as JSON.

    Give ``conda_file`` (the conda file's content: ``dependencies`` with ``python=3.x``,
    conda packages and a ``pip`` list) or ``requirements`` (the lines of a
    ``requirements.txt``). Local wheels are uploaded by the CLI and SDK and named by their
    ``azureml://`` URI. ``image`` is recorded, not run.
    """

    description: str | None = None
    image: str | None = None
    conda_file: dict[str, Any] | None = None
    requirements: list[str] | None = None
    build: dict[str, Any] | None = Field(
        default=None, description="refused: there is no container runtime to build an image"
    )
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)


class EnvironmentBuildOut(Open):
    """Where an environment's build is: NotStarted, Building, Succeeded or Failed."""

    status: str
    content_hash: str
    log_tail: str | None = None


class EnvironmentOut(Open):
    id: str
    name: str
    version: str
    description: str | None = None
    image: str | None = None
    conda_file: dict[str, Any] | None = None
    requirements: list[str] | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    archived: bool = False
    build: EnvironmentBuildOut | None = None
    creation_context: CreationContext | None = None
