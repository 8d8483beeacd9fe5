"""Invoke: turn an invoke body into a queued job, or into a clear error and nothing at all.

Everything is checked before the job row is written: the deployment, each input (the invoker
may read it; it must exist, be of its type and hold files), the output location (the invoker may
write a location it names) and the overrides. The job's ``spec`` holds
the resolved locations and the effective settings, so the scheduler needs nothing else, and a
later change to the deployment does not change a job already queued.
"""

from __future__ import annotations

import posixpath
import re
import sys
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sluiceway.auth.principals import Principal
from sluiceway.environments.cache import python_matches
from sluiceway.environments.spec import EnvironmentContent
from sluiceway.errors import ConflictError, ValidationError
from sluiceway.executors.base import ScorerKind
from sluiceway.schemas.common import DEFAULT_DATASTORE, WorkspaceScope
from sluiceway.schemas.endpoints import LoggingLevel, ModelDeploymentSettings, OutputAction
from sluiceway.schemas.invoke import InvokeOutput, InvokeRequest
from sluiceway.services.assets import AssetService
from sluiceway.services.capacity import check_job_workers
from sluiceway.services.computes import ComputeService
from sluiceway.services.endpoints import EndpointService
from sluiceway.services.environments import ENVIRONMENT_CONTENT, EnvironmentService
from sluiceway.services.resolver import InputResolver
from sluiceway.storage.locations import Location
from sluiceway.storage.references import DatastorePathRef, parse_model_reference, parse_reference
from sluiceway.store.endpoints import DeploymentRecord
from sluiceway.store.jobs import JobRecord, JobStore

if TYPE_CHECKING:
    from sluiceway.services.pipeline_invoke import PipelineInvoker

NO_ROUTE = (
    "No valid deployments to route to. Please check that the endpoint has at least one deployment "
    "with positive weight values or use a deployment specific header to route."
)
DEFAULT_OUTPUT_NAME = "score"
JOB_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}")  # the jobs table's name holds 64


def job_folder(job_name: str) -> str:
    """The job's own folder in the default datastore: logs, mini-batch parts, default outputs."""
    return f"azureml/{job_name}"


class InvokeService:
    def __init__(
        self,
        endpoints: EndpointService,
        assets: AssetService,
        resolver: InputResolver,
        jobs: JobStore,
        scope: WorkspaceScope,
        pipelines: PipelineInvoker | None = None,
        max_workers_per_job: int | None = None,
        environments: EnvironmentService | None = None,
        computes: ComputeService | None = None,
    ) -> None:
        self._computes = computes
        self._max_workers = max_workers_per_job
        self._environments = environments
        self._endpoints = endpoints
        self._assets = assets
        self._resolver = resolver
        self._jobs = jobs
        self._scope = scope
        self._pipelines = pipelines

    def invoke(
        self,
        endpoint_name: str,
        request: InvokeRequest,
        principal: Principal,
        *,
        deployment_name: str | None = None,
    ) -> JobRecord:
        """Check the request against the endpoint's deployment and queue a job.

        The caller's ``invoke`` on the endpoint is checked by the route; here, that it may read
        every input and write every output location, the default ones in the job's folder too
        (the job writes there on its invoker's behalf). The job's logs are written on the
        job's behalf.

        Raises:
            ResourceNotFoundError: the endpoint, the deployment or a data asset does not exist.
            ValidationError: the request does not fit the deployment, naming the field.
            PermissionDeniedError: the caller may not read an input or write an output,
                naming it.
            ConflictError: a job with the requested name exists.
        """
        # One database transaction for the reads and the insert (on PostgreSQL; SQLite reads
        # one snapshot and writes once): see Database.unit.
        with self._jobs.unit():
            return self._invoke(endpoint_name, request, principal, deployment_name)

    def _invoke(
        self,
        endpoint_name: str,
        request: InvokeRequest,
        principal: Principal,
        deployment_name: str | None,
    ) -> JobRecord:
        endpoint = self._endpoints.endpoint(endpoint_name)
        name = deployment_name or endpoint.default_deployment
        if not name:
            raise ValidationError(NO_ROUTE, target="azureml-model-deployment")
        deployment = self._endpoints.deployment(endpoint_name, name)
        job_name = self._job_name(request.job_name)
        fresh = request.job_name is None  # a uuid4 drawn just now: its folder is new
        if deployment.type == "pipeline" and self._pipelines is not None:
            spec = self._pipelines.job_spec(deployment, request, job_name, principal, fresh=fresh)
            self._pipeline_compute(deployment, spec)
        else:
            spec = self._model_job_spec(deployment, request, job_name, principal, fresh=fresh)
        if request.properties:
            spec["properties"] = request.properties
        return self._jobs.create(
            job_name,
            endpoint_name=endpoint_name,
            deployment_name=name,
            spec=spec,
            invoker=principal.name,
            invoker_id=principal.id,
            experiment_name=request.experiment_name or endpoint_name,
        )

    def _pipeline_compute(self, deployment: DeploymentRecord, spec: dict[str, Any]) -> None:
        """Record where the pipeline's steps run (its ``settings.default_compute``, else its
        ``compute``); on a Ray compute, a step's environment whose ``python=`` the cluster
        cannot run is refused."""
        if self._computes is None:
            return
        compute = self._computes.for_pipeline(deployment.spec)
        spec["compute"] = compute.spec() | {"runs_on": compute.runs_on}
        if compute.type != "ray":
            return
        for step in spec["steps"]:
            content = step.get("environment")
            if content:
                _check_cluster_python(
                    f"Step {step['name']!r} of deployment {deployment.name!r}",
                    compute.name,
                    content.get("python"),
                    target=f"jobs.{step['name']}.environment",
                )

    def _job_name(self, requested: str | None) -> str:
        if requested is None:
            return str(uuid.uuid4())
        if not JOB_NAME_RE.fullmatch(requested):
            raise ValidationError(
                f"Job name {requested!r} is not valid: use up to 64 letters, digits, '-' and '_', "
                "starting with a letter or digit.",
                target="name",
            )
        if self._jobs.exists(requested):
            raise ConflictError(
                f"A job named {requested!r} already exists; job names are unique.", target="name"
            )
        return requested

    # -- model deployments ------------------------------------------------------------------

    def _model_job_spec(
        self,
        deployment: DeploymentRecord,
        request: InvokeRequest,
        job_name: str,
        principal: Principal,
        *,
        fresh: bool,
    ) -> dict[str, Any]:
        literals = [i.name for i in request.inputs.values() if i.type == "literal"]
        if literals:
            raise ValidationError(
                f"Deployment {deployment.name!r} is a model deployment, which takes one data input "
                f"and no literal inputs; got literal input(s) {', '.join(literals)}.",
                target=f"InputData.{literals[0]}",
            )
        if len(request.inputs) != 1:
            got = ", ".join(request.inputs) or "none"
            raise ValidationError(
                f"A model deployment takes exactly one data input (uri_folder or uri_file); got: "
                f"{got}.",
                target="InputData",
            )
        compute = (
            self._computes.for_deployment(deployment.spec.get("compute"))
            if self._computes is not None
            else None
        )
        content = deployment.spec.get(ENVIRONMENT_CONTENT)
        if compute is not None and compute.type == "ray" and content is not None:
            _check_cluster_python(
                f"Deployment {deployment.name!r}", compute.name, content.get("python")
            )
        environment = self._environment(deployment)
        (given,) = request.inputs.values()
        resolved = self._resolver.resolve(given.name, given.type, given.uri or "", reader=principal)
        settings = self._settings(deployment, request)
        output = self._output(request.outputs, job_name, settings, principal, fresh=fresh)
        model_ref = parse_model_reference(str(deployment.spec["model"]), self._scope)
        model = self._assets.get("model", model_ref.name, model_ref.version)
        model_location = self._datastore_ref(model.path, "model")
        code = deployment.spec.get("code_configuration")
        code_spec = None
        if code:
            code_ref = self._datastore_ref(str(code["code"]), "code_configuration.code")
            code_spec = {
                "datastore": code_ref.datastore,
                "path": code_ref.path,
                "scoring_script": code["scoring_script"],
            }
        return {
            "kind": "model",
            "compute": compute.spec() | {"runs_on": compute.runs_on} if compute else None,
            "inputs": {resolved.name: resolved.spec()},
            "outputs": {output["name"]: output},
            "settings": settings,
            "scorer": (ScorerKind.SCORING_SCRIPT if code_spec else ScorerKind.MLFLOW).value,
            "model": {
                "ref": f"azureml:{model.name}:{model.version}",
                "type": model.type,
                "datastore": model_location.datastore,
                "path": model_location.path,
            },
            "code": code_spec,
            "environment": environment,
            "environment_note": self._environment_note(deployment),
            "job_folder": {"datastore": DEFAULT_DATASTORE, "path": job_folder(job_name)},
        }

    @staticmethod
    def _environment_note(deployment: DeploymentRecord) -> str | None:
        named = deployment.spec.get("environment")
        if isinstance(named, str) and deployment.spec.get(ENVIRONMENT_CONTENT) is None:
            return (
                f"Environment {named!r} is one of Azure's curated environments, whose content "
                "is not known here: the workers run in the server's environment."
            )
        return None

    def _environment(self, deployment: DeploymentRecord) -> dict[str, Any] | None:
        """The content of the deployment's environment, for the job; refused when its build
        failed."""
        content = deployment.spec.get(ENVIRONMENT_CONTENT)
        if content is None:
            return None
        if self._environments is not None:
            self._environments.check_usable(
                content, f"Deployment {deployment.endpoint_name}/{deployment.name}"
            )
        return {**content, "hash": EnvironmentContent.from_json(content).content_hash()}

    def _datastore_ref(self, uri: str, what: str) -> DatastorePathRef:
        ref = parse_reference(uri, self._scope)
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(
                f"The deployment's {what} {uri!r} is not in a datastore.", target=what
            )
        return ref

    def _settings(self, deployment: DeploymentRecord, request: InvokeRequest) -> dict[str, Any]:
        """The deployment's settings with the invocation's overrides, checked like the YAML's."""
        o = request.overrides
        base = ModelDeploymentSettings.model_validate(deployment.spec.get("settings") or {})
        changes: dict[str, Any] = {}
        if o.mini_batch_size is not None:
            changes["mini_batch_size"] = o.mini_batch_size
        if o.output_file_name is not None:
            changes["output_file_name"] = o.output_file_name
        if o.error_threshold is not None:
            changes["error_threshold"] = o.error_threshold
        if o.logging_level is not None:
            changes["logging_level"] = o.logging_level
        retry = base.retry_settings.model_dump()
        if o.max_retries is not None:
            retry["max_retries"] = o.max_retries
        if o.timeout is not None:
            retry["timeout"] = o.timeout
        merged = {**base.model_dump(mode="json"), **changes, "retry_settings": retry}
        try:
            settings = ModelDeploymentSettings.model_validate(merged)
        except Exception as exc:
            raise ValidationError(
                f"The invocation's settings are not valid: {exc}", target="properties"
            ) from None
        instance_count = o.instance_count
        if instance_count is None:
            instance_count = int((deployment.spec.get("resources") or {}).get("instance_count", 1))
        if instance_count < 1:
            raise ValidationError(
                f"Compute.InstanceCount {instance_count} is not valid: it must be at least 1.",
                target="properties.Compute.InstanceCount",
            )
        check_job_workers(
            instance_count,
            settings.max_concurrency_per_instance,
            self._max_workers,
            target="properties.Compute.InstanceCount",
            what="Compute.InstanceCount",
        )
        return {
            "mini_batch_size": settings.mini_batch_size,
            "instance_count": instance_count,
            "max_concurrency_per_instance": settings.max_concurrency_per_instance,
            "output_action": settings.output_action.value,
            "output_file_name": settings.effective_output_file_name,
            "max_retries": settings.retry_settings.max_retries,
            "timeout": settings.retry_settings.timeout,
            "error_threshold": settings.error_threshold,
            "logging_level": LoggingLevel(settings.logging_level).value,
            "environment_variables": settings.environment_variables,
            "output_format": settings.output_format.value,
            "include_input_columns": settings.include_input_columns,
        }

    def _output(
        self,
        outputs: dict[str, InvokeOutput],
        job_name: str,
        settings: dict[str, Any],
        principal: Principal,
        *,
        fresh: bool,
    ) -> dict[str, Any]:
        """The one output of a model deployment: a folder, and the file written in it.

        The default output of a job whose name was drawn just now (``fresh``) is not looked
        for in storage: see :meth:`InputResolver.new_job_folder`."""
        if len(outputs) > 1:
            raise ValidationError(
                f"A model deployment has one output; got {', '.join(outputs)}.", target="OutputData"
            )
        given = next(
            iter(outputs.values()), InvokeOutput(name=DEFAULT_OUTPUT_NAME, type="uri_folder")
        )
        named = given.uri is not None
        if given.uri is None:
            given = replace(
                given,
                uri=f"azureml://datastores/{DEFAULT_DATASTORE}/paths/"
                f"{job_folder(job_name)}/{DEFAULT_OUTPUT_NAME}/",
            )
        where = f"OutputData.{given.name}"
        ref = self._resolver.writable_output(
            where,
            given.uri or "",
            principal,
            named=named,
            folder=given.type != "uri_file",
            what=f"output {given.name!r}",
        )
        folder, file_name = ref.path, str(settings["output_file_name"])
        if given.type == "uri_file":
            if ref.is_folder_hint or not ref.path:
                raise ValidationError(
                    f"{where}.Uri {given.uri!r} ends with '/', but a UriFile output names a file.",
                    target=where,
                )
            folder, file_name = posixpath.dirname(ref.path), posixpath.basename(ref.path)
            settings["output_file_name"] = file_name
        location = self._resolver.new_job_folder(ref.datastore, folder, fresh and not named)
        if location is None:
            location = self._resolver.output_location(ref.datastore, folder)
            self._check_output_file(location, file_name, settings, where)
        return {
            "name": given.name,
            "type": given.type,
            "uri": given.uri,
            "datastore": location.datastore,
            "path": location.path,
            "file_name": file_name,
        }

    def _check_output_file(
        self, location: Location, file_name: str, settings: dict[str, Any], where: str
    ) -> None:
        if settings["output_action"] == OutputAction.APPEND_ROW.value:
            target = location.child(file_name)
            if self._resolver.exists(target, where):
                raise ConflictError(
                    f"{where}: {target.uri} already exists, and outputs are never overwritten; "
                    "choose another output path or file name.",
                    target=where,
                )


def _check_cluster_python(
    whose: str, compute: str, wanted: str | None, *, target: str = "environment"
) -> None:
    """Refuse an environment whose ``python=`` a Ray compute cannot run: its actors run the
    cluster's Python, which is this server's (Ray runs a driver and the cluster's workers on
    one Python version).

    Args:
        whose: what names the environment, for the message ("Deployment 'x'").

    Raises:
        ValidationError: naming the version asked for and the cluster's.
    """
    have = ".".join(str(v) for v in sys.version_info[:3])
    if wanted is None or python_matches(have, wanted):
        return
    raise ValidationError(
        f"{whose}'s environment asks for python={wanted}, and it runs on the "
        f"Ray compute {compute!r}, whose actors run the cluster's Python, {have} (Ray runs the "
        "cluster's workers and this server, its driver, on one Python version). Ask for "
        f"python={'.'.join(have.split('.')[:2])} in the environment, or leave python out.",
        target=target,
    )
