"""Batch endpoints and their deployments."""

from __future__ import annotations

import posixpath
from typing import Any

from sluiceway.auth.policy import WORKSPACE, Action, endpoint_scope
from sluiceway.auth.principals import Principal
from sluiceway.environments.spec import EnvironmentContent
from sluiceway.errors import ConflictError, ResourceNotFoundError, UnsupportedError, ValidationError
from sluiceway.schemas.common import CreationContext, WorkspaceScope
from sluiceway.schemas.endpoints import (
    BatchDeploymentCreate,
    BatchDeploymentOut,
    BatchEndpointCreate,
    BatchEndpointOut,
    BatchEndpointPatch,
    EndpointDefaults,
    ModelDeploymentSettings,
    PipelineDeploymentSettings,
)
from sluiceway.services.assets import AssetService
from sluiceway.services.capacity import check_job_workers
from sluiceway.services.components import ComponentService
from sluiceway.services.computes import ComputeService
from sluiceway.services.datastores import DatastoreService
from sluiceway.services.environments import (
    ENVIRONMENT_CONTENT,
    MLFLOW_ENVIRONMENT_PROPERTY,
    EnvironmentService,
)
from sluiceway.services.registry import Registry
from sluiceway.storage.references import DatastorePathRef, parse_model_reference, parse_reference
from sluiceway.store.endpoints import DeploymentRecord, EndpointRecord, EndpointStore


class EndpointService:
    def __init__(
        self,
        store: EndpointStore,
        assets: AssetService,
        datastores: DatastoreService,
        scope: WorkspaceScope,
        base_url: str,
        registry: Registry,
        components: ComponentService | None = None,
        max_workers_per_job: int | None = None,
        environments: EnvironmentService | None = None,
        computes: ComputeService | None = None,
    ) -> None:
        self._environments = environments
        self._computes = computes
        self._store = store
        self._max_workers = max_workers_per_job
        self._assets = assets
        self._datastores = datastores
        self._scope = scope
        self._base_url = base_url.rstrip("/")
        self._registry = registry
        self._components = components

    # -- endpoints --------------------------------------------------------------------------

    def endpoint(self, name: str) -> EndpointRecord:
        record = self._store.get(name)
        if record is None:
            raise ResourceNotFoundError(
                f"Batch endpoint {name!r} does not exist.", target="endpoint"
            )
        return record

    def create_or_update(
        self, body: BatchEndpointCreate, principal: Principal
    ) -> tuple[BatchEndpointOut, bool]:
        """Create an endpoint, or update the one of that name.

        Raises:
            PermissionDeniedError: the caller may not manage the workspace (a new endpoint) or
                this endpoint (an existing one).
            ResourceNotFoundError: ``defaults.deployment_name`` is not a deployment of it.
        """
        existing = self._store.get(body.name)
        if existing is None:
            principal.require(Action.MANAGE, WORKSPACE, what=f"new endpoint {body.name!r}")
        else:
            principal.require(Action.MANAGE, endpoint_scope(body.name))
        default = body.defaults.deployment_name
        if default is not None:
            if existing is None:
                self._no_deployments(body.name, default)
            self.deployment(body.name, default)
        elif existing is not None:
            default = existing.default_deployment
        record, created = self._store.upsert(
            body.name,
            description=body.description,
            tags=body.tags,
            properties=body.properties,
            auth_mode=body.auth_mode,
            default_deployment=default,
            created_by=principal.name,
        )
        return self.endpoint_out(record), created

    def _no_deployments(self, endpoint: str, deployment: str) -> None:
        raise ValidationError(
            f"defaults.deployment_name {deployment!r} does not exist: endpoint {endpoint!r} has no "
            "deployments yet. Create the endpoint, then its deployment.",
            target="defaults.deployment_name",
        )

    def update(self, name: str, changes: BatchEndpointPatch) -> BatchEndpointOut:
        """Change the ``description``, ``tags`` or ``defaults.deployment_name`` given.

        Raises:
            ResourceNotFoundError: no such endpoint, or ``defaults.deployment_name`` is not
                one of its deployments.
        """
        record = self.endpoint(name)
        given = changes.model_fields_set
        default = record.default_deployment
        if "defaults" in given:
            default = changes.defaults.deployment_name if changes.defaults else None
            if default is not None:
                self.deployment(name, default)
        updated, _ = self._store.upsert(
            name,
            description=changes.description if "description" in given else record.description,
            tags=(changes.tags or {}) if "tags" in given else record.tags,
            properties=record.properties,
            auth_mode=record.auth_mode,
            default_deployment=default,
            created_by=record.created_by,
        )
        return self.endpoint_out(updated)

    def get(self, name: str) -> BatchEndpointOut:
        return self.endpoint_out(self.endpoint(name))

    def list_all(self, principal: Principal) -> list[BatchEndpointOut]:
        """The endpoints ``principal`` may read."""
        readable = principal.grants.scopes_allowing(Action.READ, "endpoint")
        return [
            self.endpoint_out(r)
            for r in self._store.list_all()
            if readable is None or r.name in readable
        ]

    def delete(self, name: str) -> None:
        self.endpoint(name)
        self._store.delete(name)

    def endpoint_out(self, record: EndpointRecord) -> BatchEndpointOut:
        return BatchEndpointOut(
            id=self._scope.endpoint_id(record.name),
            name=record.name,
            description=record.description,
            tags=record.tags,
            auth_mode=record.auth_mode,
            defaults=EndpointDefaults(deployment_name=record.default_deployment),
            properties=record.properties,
            scoring_uri=f"{self._base_url}/endpoints/{record.name}/jobs",
            openapi_uri=f"{self._base_url}/openapi.json",
            creation_context=CreationContext(
                created_at=record.created_at, created_by=record.created_by
            ),
        )

    # -- deployments ------------------------------------------------------------------------

    def deployment(self, endpoint: str, name: str) -> DeploymentRecord:
        record = self._store.get_deployment(endpoint, name)
        if record is None:
            known = [d.name for d in self._store.list_deployments(endpoint)]
            raise ResourceNotFoundError(
                f"Deployment {name!r} not found for endpoint {endpoint!r}; its deployments: "
                f"{', '.join(known) or 'none'}.",
                target="deployment",
            )
        return record

    def create_or_update_deployment(
        self,
        endpoint: str,
        name: str,
        body: BatchDeploymentCreate,
        principal: Principal,
        *,
        set_default: bool,
    ) -> tuple[BatchDeploymentOut, bool]:
        if body.name != name or body.endpoint_name != endpoint:
            raise ValidationError(
                f"The body names deployment {body.endpoint_name}/{body.name}, but the URL names "
                f"{endpoint}/{name}.",
                target="name",
            )
        self.endpoint(endpoint)
        if body.type == "model":
            spec = self._model_spec(body, principal)
        else:
            spec = self._pipeline_spec(body, principal)
        record, created = self._store.upsert_deployment(
            endpoint,
            name,
            type=body.type,
            spec=spec,
            created_by=principal.name,
            make_default=set_default,
        )
        content = spec.get(ENVIRONMENT_CONTENT)
        if content is not None and self._environments is not None:
            self._environments.start_build(EnvironmentContent.from_json(content))
        return self.deployment_out(record), created

    def _pipeline_spec(self, body: BatchDeploymentCreate, principal: Principal) -> dict[str, Any]:
        """A pipeline deployment: its component registered (when inline) and pinned."""
        if self._components is None:
            raise UnsupportedError(
                f"Deployment {body.name!r} has type 'pipeline', and this server runs no pipeline "
                "components. Accepted: type 'model'.",
                target="type",
            )
        for key in ("model", "code_configuration"):
            if getattr(body, key) is not None:
                raise ValidationError(
                    f"{key!r} belongs to model deployments; a pipeline deployment runs its "
                    "component's steps.",
                    target=key,
                )
        if body.component is None:
            raise ValidationError(
                "A pipeline deployment needs 'component': azureml:<name>:<version>, "
                "azureml:<name>@latest, or the component inline.",
                target="component",
            )
        settings = body.settings
        if isinstance(settings, PipelineDeploymentSettings) and settings.default_datastore:
            self._datastores.record(settings.default_datastore)
        if isinstance(body.component, str):
            record = self._components.resolve(body.component)
            self._components.plan(record)  # a pipeline component, wired completely
        else:
            # An inline component is registered in the workspace like any other.
            principal.require(Action.MANAGE, WORKSPACE, what=f"inline component of {body.name!r}")
            record, _ = self._components.create(
                body.component,
                principal,
                where="component",
                default_name=f"{body.name}-component",
                kind="pipeline",
            )
        spec = body.model_dump(
            mode="json", exclude={"name", "endpoint_name", "type", "model", "code_configuration"}
        )
        spec["component"] = f"azureml:{record.name}:{record.version}"
        return spec

    def _model_spec(self, body: BatchDeploymentCreate, principal: Principal) -> dict[str, Any]:
        if body.model is None:
            raise ValidationError("A model deployment needs 'model'.", target="model")
        if body.component is not None:
            raise ValidationError(
                "'component' belongs to pipeline deployments, not to type 'model'.",
                target="component",
            )
        ref = parse_model_reference(body.model, self._scope)
        model = self._assets.get("model", ref.name, ref.version)
        if body.code_configuration is None and model.type != "mlflow_model":
            raise ValidationError(
                f"Model {model.name}:{model.version} is a {model.type}: its deployment needs "
                "code_configuration with a scoring_script (only mlflow_model runs without one).",
                target="code_configuration",
            )
        if body.code_configuration is not None:
            self._check_code(body.code_configuration.code, body.code_configuration.scoring_script)
        if (
            isinstance(body.settings, ModelDeploymentSettings)
            and body.settings.include_input_columns
            and body.code_configuration is not None
        ):
            raise ValidationError(
                "settings.include_input_columns applies to MLflow deployments without a scoring "
                "script; a scoring script's run() returns the columns it wants.",
                target="settings.include_input_columns",
            )
        if isinstance(body.settings, ModelDeploymentSettings):
            check_job_workers(
                body.resources.instance_count,
                body.settings.max_concurrency_per_instance,
                self._max_workers,
                target="resources.instance_count",
                what="resources.instance_count",
            )
        spec = body.model_dump(mode="json", exclude={"name", "endpoint_name", "type"})
        spec["model"] = f"azureml:{model.name}:{model.version}"
        environment = body.environment
        choice = body.properties.get(MLFLOW_ENVIRONMENT_PROPERTY, "server")
        if choice not in ("server", "model"):
            raise ValidationError(
                f"properties.{MLFLOW_ENVIRONMENT_PROPERTY} {choice!r} is not accepted; "
                "accepted: server (the server's environment) or model (built from the model's "
                "requirements.txt or conda.yaml).",
                target=f"properties.{MLFLOW_ENVIRONMENT_PROPERTY}",
            )
        if choice == "model":
            if model.type != "mlflow_model" or environment is not None:
                raise ValidationError(
                    f"properties.{MLFLOW_ENVIRONMENT_PROPERTY}=model applies to an MLflow "
                    "model deployment without an environment; this one "
                    + ("names an environment." if environment is not None else "is not one."),
                    target=f"properties.{MLFLOW_ENVIRONMENT_PROPERTY}",
                )
            if self._environments is not None:
                environment = self._environments.from_model(
                    model.path, f"{model.name}:{model.version}"
                )
        if environment is not None and self._environments is not None:
            pinned = self._environments.pin(environment, principal, "environment")
            spec["environment"] = pinned.shown
            if pinned.content is not None:
                spec[ENVIRONMENT_CONTENT] = pinned.content.to_json()
        if body.code_configuration is not None:  # copied where no caller can change it
            spec["code_configuration"]["code"] = self._registry.register(
                body.code_configuration.code, principal, target="code_configuration.code"
            )
        return spec

    def _check_code(self, code: str, script: str) -> None:
        ref = parse_reference(code, self._scope)
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(
                f"code_configuration.code {code!r} must be an uploaded folder "
                "(azureml://datastores/<ds>/paths/<p>); the CLI and SDK upload local folders.",
                target="code_configuration.code",
            )
        folder = self._datastores.location(ref.datastore, ref.path)
        normal = posixpath.normpath(script)
        if normal.startswith("..") or posixpath.isabs(normal):
            raise ValidationError(
                f"scoring_script {script!r} must be inside the code folder.",
                target="code_configuration.scoring_script",
            )
        if not folder.child(normal).is_file():
            raise ValidationError(
                f"scoring_script {script!r} is not in the code folder {code!r}.",
                target="code_configuration.scoring_script",
            )

    def get_deployment(self, endpoint: str, name: str) -> BatchDeploymentOut:
        self.endpoint(endpoint)
        return self.deployment_out(self.deployment(endpoint, name))

    def list_deployments(self, endpoint: str) -> list[BatchDeploymentOut]:
        self.endpoint(endpoint)
        return [self.deployment_out(r) for r in self._store.list_deployments(endpoint)]

    def environment_users(self, pinned: str) -> list[str]:
        """The deployments (``endpoint/deployment``) whose environment is ``pinned``
        (``azureml:<name>:<version>``), or any version of it (``azureml:<name>:``)."""
        found = []
        for endpoint in self._store.list_all():
            for deployment in self._store.list_deployments(endpoint.name):
                value = deployment.spec.get("environment")
                if isinstance(value, str) and (
                    value == pinned or (pinned.endswith(":") and value.startswith(pinned))
                ):
                    found.append(f"{endpoint.name}/{deployment.name}")
        return found

    def environment_contents(self) -> list[EnvironmentContent]:
        """The environments deployments use."""
        found = []
        for endpoint in self._store.list_all():
            for deployment in self._store.list_deployments(endpoint.name):
                content = deployment.spec.get(ENVIRONMENT_CONTENT)
                if content is not None:
                    found.append(EnvironmentContent.from_json(content))
        return found

    def environment_hashes(self) -> set[str]:
        """The content hashes of the environments deployments use (never evicted)."""
        return {content.content_hash() for content in self.environment_contents()}

    def delete_deployment(self, endpoint: str, name: str) -> None:
        record = self.endpoint(endpoint)
        self.deployment(endpoint, name)
        others = [d for d in self._store.list_deployments(endpoint) if d.name != name]
        if record.default_deployment == name and others:
            raise ConflictError(
                f"Deployment {name!r} is the default of endpoint {endpoint!r}; make another "
                f"deployment the default first (sluice batch-endpoint update -n {endpoint} --set "
                "defaults.deployment_name=<name>).",
                target="deployment",
            )
        self._store.delete_deployment(endpoint, name)

    def deployment_out(self, record: DeploymentRecord) -> BatchDeploymentOut:
        content = record.spec.get(ENVIRONMENT_CONTENT)
        build = None
        state = "Succeeded"
        if content is not None and self._environments is not None:
            build, state = self._environments.deployment_build(content)
        runs_on = None
        if self._computes is not None and record.type == "model":
            runs_on = self._computes.for_deployment(record.spec.get("compute")).runs_on
        elif self._computes is not None and record.type == "pipeline":
            runs_on = self._computes.for_pipeline(record.spec).runs_on
        return BatchDeploymentOut.model_validate(
            {
                **{k: v for k, v in record.spec.items() if k != ENVIRONMENT_CONTENT},
                "provisioning_state": state,
                "environment_build": build,
                "runs_on": runs_on,
                "id": self._scope.deployment_id(record.endpoint_name, record.name),
                "name": record.name,
                "endpoint_name": record.endpoint_name,
                "type": record.type,
                "creation_context": CreationContext(
                    created_at=record.created_at, created_by=record.created_by
                ),
            }
        )
