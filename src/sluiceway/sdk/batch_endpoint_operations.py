"""``ml_client.batch_endpoints``: create, read, delete and invoke batch endpoints."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sluiceway.entities.endpoint import BatchEndpoint
from sluiceway.entities.io import Input
from sluiceway.entities.job import BatchJob
from sluiceway.errors import PermissionDeniedError, ValidationError
from sluiceway.schemas.endpoints import BatchEndpointCreate
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.invoke import (
    InputValue,
    OutputValue,
    as_output,
    build_invoke_body,
    collect_inputs,
)
from sluiceway.sdk.paths import data_asset_pointer, local_path
from sluiceway.sdk.poller import LROPoller
from sluiceway.sdk.uploads import Uploader
from sluiceway.sdk.validate import validate_shape

DEPLOYMENT_HEADER = "azureml-model-deployment"


class BatchEndpointOperations:
    """``ml_client.batch_endpoints``."""

    def __init__(self, connection: Connection, uploader: Uploader) -> None:
        self._connection = connection
        self._uploader = uploader

    def begin_create_or_update(self, endpoint: BatchEndpoint) -> LROPoller[BatchEndpoint]:
        """Create the endpoint, or update its description, tags and default deployment.

        Raises:
            ValidationError: the endpoint is malformed (name, auth_mode, ...).
        """
        if not endpoint.name:
            raise ValidationError("BatchEndpoint needs a name", target="name")
        body = validate_shape(
            BatchEndpointCreate,
            endpoint._to_create_body(),
            source=f"BatchEndpoint {endpoint.name!r}",
        )
        answer = self._connection.request(
            "PUT",
            f"/batch-endpoints/{segment(endpoint.name)}",
            json=body.model_dump(mode="json", exclude_unset=True),
            expected=(200, 201),
        )
        return LROPoller(BatchEndpoint._from_rest(answer))

    def get(self, name: str) -> BatchEndpoint:
        return BatchEndpoint._from_rest(
            self._connection.request("GET", f"/batch-endpoints/{segment(name)}", expected=(200,))
        )

    def list(self) -> list[BatchEndpoint]:
        answer = self._connection.request("GET", "/batch-endpoints", expected=(200,))
        return [BatchEndpoint._from_rest(item) for item in answer or []]

    def begin_delete(self, name: str) -> LROPoller[None]:
        """Delete the endpoint and its deployments; its jobs and their outputs stay."""
        self._connection.request("DELETE", f"/batch-endpoints/{segment(name)}", expected=(200, 204))
        return LROPoller(None)

    def list_jobs(self, endpoint_name: str) -> builtins.list[BatchJob]:
        """The endpoint's jobs, newest first."""
        answer = self._connection.request(
            "GET", f"/batch-endpoints/{segment(endpoint_name)}/jobs", expected=(200,)
        )
        return [BatchJob._from_rest(item) for item in answer or []]

    # -- invoke ------------------------------------------------------------------------------

    def _data_asset_type(self, name: str, path: str) -> str:
        pointer = data_asset_pointer(path)
        if pointer is None:
            return "uri_folder"
        base = f"/data/{segment(pointer.name)}"
        route = (
            f"{base}/versions/{segment(pointer.version)}"
            if pointer.version is not None
            else f"{base}/labels/latest"
        )
        try:
            answer = self._connection.request("GET", route, expected=(200,))
        except PermissionDeniedError as exc:
            raise PermissionDeniedError(
                f"inputs.{name}: the type of data asset {path!r} is read from the workspace, "
                f"and {exc.message} Give the Input a type (uri_file or uri_folder) to invoke "
                "without reading the asset.",
                target=f"inputs.{name}",
            ) from None
        kind = answer.get("type") if isinstance(answer, dict) else None
        return str(kind) if kind else "uri_folder"

    def _resolve_input(self, name: str, value: Input) -> Input:
        """Upload a local path and settle a missing type; literals pass unchanged."""
        if value.is_literal:
            return value
        if not value.path:
            raise ValidationError(
                f"inputs.{name}: a data input needs a path (Input path can't be empty for batch "
                "endpoint invoke)",
                target=f"inputs.{name}",
            )
        local = local_path(value.path)
        if local is None:
            if value.type is None:
                return value._copy(type=self._data_asset_type(name, value.path))
            return value
        local = local if local.is_absolute() else Path.cwd() / local
        kind = value.type or ("uri_file" if local.is_file() else "uri_folder")
        if kind == "uri_folder" and not local.is_dir():
            raise ValidationError(
                f"inputs.{name}: There is no folder on target path: {local}",
                target=f"inputs.{name}",
            )
        if kind == "uri_file" and not local.is_file():
            raise ValidationError(
                f"inputs.{name}: There is no file on target path: {local}", target=f"inputs.{name}"
            )
        return value._copy(type=kind, path=self._uploader.upload(local))

    def invoke(
        self,
        endpoint_name: str,
        deployment_name: str | None = None,
        inputs: Mapping[str, InputValue] | None = None,
        input: InputValue | None = None,
        outputs: Mapping[str, OutputValue] | None = None,
        job_name: str | None = None,
        experiment_name: str | None = None,
        params_override: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> BatchJob:
        """Start a batch job on the endpoint (its default deployment unless one is named).

        Args:
            endpoint_name: The endpoint to invoke.
            deployment_name: A deployment of it to use instead of the default.
            inputs: Named inputs: ``Input`` objects, reference or local path strings, or
                literal values.
            input: The one data input of a model deployment (instead of ``inputs``).
            outputs: Named outputs: ``Output`` objects or datastore paths.
            job_name: A name for the job (default: a new uuid).
            experiment_name: Kept with the job.
            params_override: Azure's list of one-key dicts (``mini_batch_size``,
                ``compute.instance_count``, ``output_file_name``, ``retry_settings.*``,
                ``error_threshold``, ``logging_level``, ``output_dataset.*``).
            kwargs: Accepted for compatibility with Azure's signature and ignored.

        Returns:
            The queued job.

        Raises:
            ValidationError: an input, output or override is not accepted (locally or by the
                server, which checks them against the deployment).
            ResourceNotFoundError: no such endpoint or deployment.
        """
        named = collect_inputs(inputs, input)
        resolved = {name: self._resolve_input(name, value) for name, value in named.items()}
        output_values = {
            str(name): as_output(value, f"outputs.{name}")
            for name, value in (outputs or {}).items()
        }
        body = build_invoke_body(
            inputs=resolved,
            outputs=output_values,
            job_name=job_name,
            experiment_name=experiment_name,
            params_override=params_override,
        )
        headers = {DEPLOYMENT_HEADER: deployment_name} if deployment_name else None
        answer = self._connection.request(
            "POST",
            f"/endpoints/{segment(endpoint_name)}/jobs",
            json=body,
            headers=headers,
            expected=(200, 201),
        )
        return BatchJob._from_rest(answer)
