"""Computes: the built-in ``local`` one (this server's worker processes) and registered ones.

A deployment's ``compute: azureml:<name>`` picks where its jobs run. A name that is not a
registered compute (Azure YAML's ``azureml:batch-cluster``, say) keeps working: its jobs run on
this server's workers, and the deployment and its jobs say so in ``runs_on``. A ``ray`` compute
is checked when it is created: a cluster that cannot be reached is refused, naming the address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluiceway.auth.policy import WORKSPACE, Action
from sluiceway.auth.principals import Principal
from sluiceway.errors import ConflictError, ResourceNotFoundError, ValidationError
from sluiceway.executors.ray_cluster import (
    RayConnectionTaken,
    RayUnavailable,
    check_address,
    cluster_info,
)
from sluiceway.schemas.common import CreationContext, WorkspaceScope
from sluiceway.schemas.computes import LOCAL_COMPUTE, ComputeCreate, ComputeOut
from sluiceway.store.computes import ComputeRecord, ComputeStore

LOCAL_RUNS_ON = "this server's worker processes (compute local)"


@dataclass(frozen=True)
class JobCompute:
    """Where one job runs, as recorded in its spec when it is queued."""

    name: str  # as the deployment names it (without azureml:), or "local"
    type: str  # "local" or "ray"
    address: str | None
    runs_on: str

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "address": self.address}


def compute_name(reference: str | None) -> str | None:
    """The compute's name in a deployment's ``compute`` (``azureml:<name>``, an ARM id, or a
    plain name); None for none."""
    if reference is None or not reference.strip():
        return None
    text = reference.strip()
    if text.startswith("azureml:"):
        text = text[len("azureml:") :]
    return text.rstrip("/").rsplit("/", 1)[-1]


class ComputeService:
    def __init__(self, store: ComputeStore, scope: WorkspaceScope) -> None:
        self._store = store
        self._scope = scope

    def create_or_update(
        self, name: str, body: ComputeCreate, principal: Principal
    ) -> tuple[ComputeOut, bool]:
        """Register a compute, or replace one's settings; a ``ray`` cluster must answer.

        Raises:
            PermissionDeniedError: the caller may not manage the workspace.
            ValidationError: a setting is missing or not valid, or the cluster cannot be
                reached (naming the address and why).
            ConflictError: ``name`` is the built-in ``local``.
        """
        principal.require(Action.MANAGE, WORKSPACE, what=f"compute {name!r}")
        if body.name != name:
            raise ValidationError(
                f"The body names compute {body.name!r}, but the route names {name!r}.",
                target="name",
            )
        if name == LOCAL_COMPUTE:
            raise ConflictError(
                f"{LOCAL_COMPUTE!r} is the built-in compute (this server's own workers); give "
                "another name.",
                target="name",
            )
        address = ""
        if body.type == "ray":
            if not body.address:
                raise ValidationError(
                    "A compute of type ray needs an address: auto, host:port (the cluster's "
                    "GCS) or ray://host:port.",
                    target="address",
                )
            address = check_address(body.address)
            try:
                cluster_info(address)
            except RayUnavailable as exc:
                hint = (
                    ""
                    if isinstance(exc, RayConnectionTaken)
                    else " Start the cluster (ray start --head) or correct the address."
                )
                raise ValidationError(
                    f"Compute {name!r} was not created: {exc}.{hint}", target="address"
                ) from None
        elif body.address:
            raise ValidationError(
                f"address is for computes of type ray; compute {name!r} is {body.type}.",
                target="address",
            )
        record, created = self._store.put(
            name,
            type_=body.type,
            address=address,
            description=body.description,
            tags=body.tags,
            created_by=principal.name,
        )
        return self._out(record), created

    def get(self, name: str, *, ask_cluster: bool = True) -> ComputeOut:
        """The compute; a ``ray`` one with what its cluster has (or why it does not answer).

        Raises:
            ResourceNotFoundError: no such compute.
        """
        if name == LOCAL_COMPUTE:
            return self._local()
        record = self._store.get(name)
        if record is None:
            raise ResourceNotFoundError(
                f"No compute named {name!r}; the computes are listed by sluice compute list.",
                target="name",
            )
        out = self._out(record)
        if ask_cluster and record.type == "ray":
            try:
                out.cluster = cluster_info(record.address).to_dict()
            except RayUnavailable as exc:
                out.cluster = {"reachable": False, "address": record.address, "error": str(exc)}
        return out

    def list(self) -> list[ComputeOut]:
        return [self._local(), *(self._out(r) for r in self._store.list())]

    def delete(self, name: str, principal: Principal) -> None:
        principal.require(Action.MANAGE, WORKSPACE, what=f"compute {name!r}")
        if name == LOCAL_COMPUTE:
            raise ConflictError(f"{LOCAL_COMPUTE!r} is built in and cannot be deleted.")
        if not self._store.delete(name):
            raise ResourceNotFoundError(f"No compute named {name!r}.", target="name")

    def for_deployment(self, reference: str | None) -> JobCompute:
        """Where jobs of a deployment whose ``compute`` is ``reference`` run now."""
        name = compute_name(reference)
        if name is None or name == LOCAL_COMPUTE:
            return JobCompute(LOCAL_COMPUTE, "local", None, LOCAL_RUNS_ON)
        return _job_compute(name, self._store.get(name))

    def for_pipeline(self, spec: dict[str, Any]) -> JobCompute:
        """Where a pipeline deployment's steps run: its ``settings.default_compute``, else its
        ``compute``."""
        settings = spec.get("settings") or {}
        return self.for_deployment(settings.get("default_compute") or spec.get("compute"))

    def _local(self) -> ComputeOut:
        return ComputeOut(
            id=self._scope.compute_id(LOCAL_COMPUTE),
            name=LOCAL_COMPUTE,
            type="local",
            description="This server's own worker processes (built in).",
            runs_on=LOCAL_RUNS_ON,
        )

    def _out(self, record: ComputeRecord) -> ComputeOut:
        return ComputeOut(
            id=self._scope.compute_id(record.name),
            name=record.name,
            type=record.type,
            address=record.address or None,
            description=record.description,
            tags=record.tags,
            runs_on=_job_compute(record.name, record).runs_on,
            creation_context=CreationContext(
                created_at=record.created_at, created_by=record.created_by
            ),
        )


def _job_compute(name: str, record: ComputeRecord | None) -> JobCompute:
    """Where jobs of a deployment whose compute is the registered ``record`` (None: not
    registered) named ``name`` run."""
    if record is None:
        return JobCompute(
            name,
            "local",
            None,
            f"this server's worker processes: compute {name!r} is not registered (sluice "
            "compute create), so its jobs run locally",
        )
    if record.type != "ray":
        return JobCompute(name, "local", None, f"this server's worker processes (compute {name!r})")
    return JobCompute(
        name, "ray", record.address, f"Ray cluster at {record.address} (compute {name!r})"
    )
