"""``ml_client.batch_deployments``: what an endpoint runs.

Before a deployment is sent, what the server cannot read is made readable: an inline model
(``Model(path=...)`` or ``{"name", "path"}``) is uploaded and registered and referenced as
``azureml:<name>:<version>``, a local code folder is uploaded and sent as its datastore URI,
and a local conda file is read into the environment.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluiceway.entities.assets import Model
from sluiceway.entities.component import PipelineComponentBatchDeployment
from sluiceway.entities.deployment import BatchDeployment, EnvironmentLike, ModelLike
from sluiceway.entities.job import BatchJob
from sluiceway.errors import ValidationError
from sluiceway.schemas.endpoints import BatchDeploymentCreate
from sluiceway.sdk.asset_operations import ModelOperations
from sluiceway.sdk.component_operations import component_body
from sluiceway.sdk.connection import Connection, segment
from sluiceway.sdk.environment_operations import environment_body
from sluiceway.sdk.paths import local_path, model_reference
from sluiceway.sdk.poller import LROPoller
from sluiceway.sdk.uploads import Uploader
from sluiceway.sdk.validate import validate_shape

_INLINE_MODEL_KEYS = ("name", "version", "type", "path", "description", "tags", "properties")

AnyDeployment = BatchDeployment | PipelineComponentBatchDeployment


def deployment_from_rest(raw: Mapping[str, Any]) -> AnyDeployment:
    """The entity for a deployment the server returned, by its ``type``."""
    if raw.get("type") == "pipeline":
        return PipelineComponentBatchDeployment._from_rest(raw)
    return BatchDeployment._from_rest(raw)


def check_scoring_script(code: Path, script: str) -> None:
    """Compile the scoring script, as Azure's SDK does, so a syntax error shows up now.

    Raises:
        ValidationError: the script is missing or does not compile.
    """
    path = code / script
    if not path.is_file():
        raise ValidationError(
            f"code_configuration.scoring_script {script!r} is not in the code folder {str(code)!r}",
            target="code_configuration.scoring_script",
        )
    try:
        compile(path.read_bytes(), str(path), "exec")
    except (SyntaxError, ValueError) as exc:
        raise ValidationError(
            f"Failed to validate scoring script {str(path)!r}: {exc}. Fix it, or pass "
            "skip_script_validation=True.",
            target="code_configuration.scoring_script",
        ) from None


def _inline_model(value: Mapping[str, Any]) -> Model:
    unknown = [str(k) for k in value if k not in _INLINE_MODEL_KEYS]
    if unknown:
        raise ValidationError(
            f"model: unknown key {unknown[0]!r}; an inline model takes "
            f"{', '.join(_INLINE_MODEL_KEYS)}",
            target="model",
        )
    return Model(
        name=value.get("name"),
        version=value.get("version"),
        type=value.get("type"),
        path=value.get("path"),
        description=value.get("description"),
        tags=value.get("tags"),
        properties=value.get("properties"),
    )


def deployment_environment(
    environment: EnvironmentLike | None, uploader: Uploader
) -> str | dict[str, Any] | None:
    """The environment as the server takes it: a reference as it is, or the definition with
    its local files read in and its local wheels uploaded."""
    if environment is None or isinstance(environment, str):
        return environment
    return environment_body(environment, uploader)


class BatchDeploymentOperations:
    """``ml_client.batch_deployments``."""

    def __init__(self, connection: Connection, uploader: Uploader, models: ModelOperations) -> None:
        self._connection = connection
        self._uploader = uploader
        self._models = models

    def _route(self, endpoint_name: str, name: str | None = None) -> str:
        base = f"/batch-endpoints/{segment(endpoint_name)}/deployments"
        return base if name is None else f"{base}/{segment(name)}"

    def _model_for_server(self, deployment: BatchDeployment) -> str | None:
        model: ModelLike | None = deployment.model
        if model is None:
            return None
        if isinstance(model, str):
            return model_reference(model)
        if isinstance(model, Mapping):
            model = _inline_model(model)
        if model.path is None or model.id is not None:
            # A registered model (from ml_client.models) or one named by name and version.
            if not model.name:
                raise ValidationError(
                    "the deployment's model needs a name or a path", target="model"
                )
            return (
                f"azureml:{model.name}:{model.version}"
                if model.version
                else model_reference(model.name)
            )
        if not model.name:
            model = Model(
                name=f"{deployment.name}-model",
                version=model.version,
                type=model.type,
                path=model.path,
                description=model.description,
                tags=model.tags,
                properties=model.properties,
            )
        registered = self._models.register_inline(model)
        return f"azureml:{registered.name}:{registered.version}"

    def _code_for_server(self, deployment: BatchDeployment, *, validate_script: bool) -> str | None:
        config = deployment.code_configuration
        if config is None:
            return None
        if not config.code:
            raise ValidationError(
                "code_configuration needs code (the folder holding the scoring script)",
                target="code_configuration.code",
            )
        if not config.scoring_script:
            raise ValidationError(
                "code_configuration needs scoring_script",
                target="code_configuration.scoring_script",
            )
        local = local_path(config.code)
        if local is None:
            return config.code
        folder = local if local.is_absolute() else Path.cwd() / local
        if not folder.is_dir():
            raise ValidationError(
                f"code_configuration.code {config.code!r} is not a local folder (resolved to "
                f"{str(folder)!r}); give the folder holding the scoring script",
                target="code_configuration.code",
            )
        if validate_script:
            check_scoring_script(folder, config.scoring_script)
        return self._uploader.upload(folder)

    def _pipeline_body(self, deployment: AnyDeployment) -> dict[str, Any]:
        """A pipeline deployment's body; a local or inline component goes with its code."""
        if deployment.component is None:
            raise ValidationError(
                f"BatchDeployment {deployment.name!r} has type pipeline and needs a component",
                target="component",
            )
        component = component_body(deployment.component, self._uploader)
        if isinstance(deployment, PipelineComponentBatchDeployment):
            return deployment._to_create_body(component)
        return PipelineComponentBatchDeployment(
            name=deployment.name,
            endpoint_name=deployment.endpoint_name,
            description=deployment.description,
            tags=deployment.tags,
            properties=deployment.properties,
        )._to_create_body(component)

    def begin_create_or_update(
        self,
        deployment: AnyDeployment,
        *,
        set_default: bool = False,
        skip_script_validation: bool = False,
    ) -> LROPoller[AnyDeployment]:
        """Create or replace a deployment of ``deployment.endpoint_name``.

        An inline model is registered and local code uploaded first. The first deployment of
        an endpoint becomes its default; ``set_default=True`` makes this one the default.

        Raises:
            ValidationError: the deployment is malformed, its code folder or scoring script
                is missing, or the script does not compile.
            ResourceNotFoundError: the endpoint or the model does not exist.
        """
        if not deployment.name:
            raise ValidationError("BatchDeployment needs a name", target="name")
        if not deployment.endpoint_name:
            raise ValidationError(
                f"BatchDeployment {deployment.name!r} needs endpoint_name", target="endpoint_name"
            )
        if (
            isinstance(deployment, PipelineComponentBatchDeployment)
            or deployment.type == "pipeline"
        ):
            body = self._pipeline_body(deployment)
        else:
            code = self._code_for_server(deployment, validate_script=not skip_script_validation)
            model = self._model_for_server(deployment)
            body = deployment._to_create_body(
                model=model,
                code=code,
                environment=deployment_environment(deployment.environment, self._uploader),
            )
        checked = validate_shape(
            BatchDeploymentCreate, body, source=f"BatchDeployment {deployment.name!r}"
        )
        answer = self._connection.request(
            "PUT",
            self._route(deployment.endpoint_name, deployment.name),
            json=checked.model_dump(mode="json", exclude_unset=True),
            params={"set_default": "true"} if set_default else None,
            expected=(200, 201),
        )
        endpoint_name, name = deployment.endpoint_name, deployment.name
        return LROPoller(
            deployment_from_rest(answer),
            refresh=lambda: self.get(name, endpoint_name),
            finished=lambda d: getattr(d, "provisioning_state", None) != "Creating",
            interval=0.25,
        )

    def get(self, name: str, endpoint_name: str) -> AnyDeployment:
        return deployment_from_rest(
            self._connection.request("GET", self._route(endpoint_name, name), expected=(200,))
        )

    def list(self, endpoint_name: str) -> list[AnyDeployment]:
        answer = self._connection.request("GET", self._route(endpoint_name), expected=(200,))
        return [deployment_from_rest(item) for item in answer or []]

    def begin_delete(self, name: str, endpoint_name: str) -> LROPoller[None]:
        """Delete a deployment; the server refuses the default while others exist."""
        self._connection.request("DELETE", self._route(endpoint_name, name), expected=(200, 204))
        return LROPoller(None)

    def list_jobs(self, endpoint_name: str, name: str | None = None) -> builtins.list[BatchJob]:
        """Jobs of one deployment, or of the whole endpoint without ``name``; newest first."""
        route = (
            f"/batch-endpoints/{segment(endpoint_name)}/jobs"
            if name is None
            else f"{self._route(endpoint_name, name)}/jobs"
        )
        answer = self._connection.request("GET", route, expected=(200,))
        return [BatchJob._from_rest(item) for item in answer or []]
