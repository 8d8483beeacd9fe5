"""Computes: where a deployment's jobs run, as ``az ml compute create -f compute.yml`` names it.

``type: ray`` is Sluiceway's own: a Ray cluster the user runs, reached at ``address`` (``auto``,
``host:port`` of its GCS, or ``ray://host:port``). Azure's ``amlcompute`` is accepted and
stands for this server's own worker processes, as the built-in compute ``local`` does.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from sluiceway.schemas.common import CreationContext, Open, Strict

COMPUTE_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,31}")
LOCAL_COMPUTE = "local"  # built in: this server's own worker processes
COMPUTE_TYPES = ("ray", "amlcompute")


class ComputeCreate(Strict):
    """``PUT /computes/{name}``: the compute YAML of ``sluice compute create -f``."""

    schema_url: str | None = Field(default=None, alias="$schema")
    name: str
    type: Literal["ray", "amlcompute"]
    address: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # Azure's amlcompute settings, accepted and kept: the server's own workers run its jobs.
    size: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    idle_time_before_scale_down: int | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not COMPUTE_NAME_RE.fullmatch(value):
            raise ValueError(
                f"name {value!r} is not valid: use 2-32 letters, digits or '-', starting with a "
                "letter"
            )
        return value


class ComputeOut(Open):
    id: str
    name: str
    type: str
    address: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    runs_on: str  # where jobs of deployments naming it run, in words
    cluster: dict[str, Any] | None = None  # show: what Ray says the cluster has, or why not
    creation_context: CreationContext | None = None
