"""Invoking a pipeline deployment: the request checked against the pipeline component.

The pipeline component declares the inputs and outputs an invocation may name. Every input
given must be declared; every required one must be given; a literal is converted to its
declared type (``"5"`` for an ``integer`` input becomes 5, ``"abc"`` is refused) and checked
against ``min``, ``max`` and ``enum``; data is resolved and checked (it exists, is of its type
and holds files) by the same resolver as a model deployment's, in every form it accepts: a
datastore path in any datastore, a data asset, or a storage URL, and the invoker must be allowed
to read it. Every output goes to its default folder, ``azureml/<job>/<output>/`` in the
deployment's default datastore, or to the folder the invocation names: either way the invoker
must be allowed to write it. Data the pipeline itself names (fixed inputs of its steps, their
code) was chosen by those who may manage the component and the deployment, and is not checked
against the invoker. Each problem is a 4xx that names the input or output, the value and
what is accepted, and no job is created.

The job's spec is a complete snapshot: each step's command, code folder and environment, and
each of its inputs resolved to a location, a literal value or another step's output, so the
scheduler needs nothing else and a later change to the deployment or component leaves a queued
job alone.
"""

from __future__ import annotations

import posixpath
from typing import Any

from sluiceway.auth.principals import Principal
from sluiceway.errors import ConflictError, ValidationError
from sluiceway.schemas.common import DEFAULT_DATASTORE, WorkspaceScope
from sluiceway.schemas.components import (
    ComponentInput,
    FixedData,
    LiteralBinding,
    ParentInput,
    PipelineComponentSpec,
    StepOutput,
    parse_input_binding,
    parse_output_binding,
)
from sluiceway.schemas.endpoints import PipelineDeploymentSettings
from sluiceway.schemas.invoke import InvokeInput, InvokeRequest
from sluiceway.services.assets import AssetService
from sluiceway.services.components import ComponentService, PipelinePlan, PipelineStepPlan
from sluiceway.services.environments import EnvironmentService
from sluiceway.services.invoke import job_folder
from sluiceway.services.resolver import InputResolver
from sluiceway.storage.references import DatastorePathRef, parse_model_reference, parse_reference
from sluiceway.store.endpoints import DeploymentRecord

_REST_NAMES = {
    "uri_folder": "UriFolder",
    "uri_file": "UriFile",
    "custom_model": "CustomModel",
    "mlflow_model": "MLFlowModel",
    "literal": "Literal",
}
_MODEL_SETTINGS = {
    "mini_batch_size": "MiniBatchSize",
    "instance_count": "Compute.InstanceCount",
    "output_file_name": "OutputFileName",
    "max_retries": "RetrySettings.MaxRetries",
    "timeout": "RetrySettings.Timeout",
    "error_threshold": "ErrorThreshold",
    "logging_level": "LoggingLevel",
}


def steps_folder(job_name: str) -> str:
    """Where the outputs that only pass between steps are kept, in the default datastore."""
    return f"{job_folder(job_name)}/steps"


def _declared(spec: PipelineComponentSpec) -> str:
    parts = []
    for name, declared in spec.inputs.items():
        extra = []
        if declared.optional:
            extra.append("optional")
        if declared.default is not None:
            extra.append(f"default {declared.default!r}")
        parts.append(f"{name} ({', '.join([declared.type.value, *extra])})")
    return ", ".join(parts) or "none"


class PipelineInvoker:
    """Builds the job spec of an invocation of a ``type: pipeline`` deployment."""

    def __init__(
        self,
        components: ComponentService,
        resolver: InputResolver,
        assets: AssetService,
        scope: WorkspaceScope,
        environments: EnvironmentService | None = None,
    ) -> None:
        self._environments = environments
        self._components = components
        self._resolver = resolver
        self._assets = assets
        self._scope = scope

    def job_spec(
        self,
        deployment: DeploymentRecord,
        request: InvokeRequest,
        job_name: str,
        principal: Principal,
        *,
        fresh: bool = False,
    ) -> dict[str, Any]:
        """The spec of a job that runs the deployment's pipeline on the request's inputs.

        ``fresh``: the server drew ``job_name`` just now, so its default outputs' folders are
        new (:meth:`InputResolver.new_job_folder`).

        Raises:
            ValidationError: an input or output is unknown, missing, or not accepted.
            PermissionDeniedError: ``principal`` may not read an input it gives or write an
                output location it names.
            ConflictError: an output folder already holds files.
            ResourceNotFoundError: a data asset, model or datastore does not exist.
        """
        record = self._components.resolve(str(deployment.spec["component"]))
        plan = self._components.plan(record)
        settings = PipelineDeploymentSettings.model_validate(deployment.spec.get("settings") or {})
        self._refuse_model_settings(deployment, request)
        inputs = self._inputs(plan, request, principal)
        outputs = self._outputs(plan, request, job_name, settings, principal, fresh=fresh)
        steps = [self._step(step, inputs, outputs, job_name) for step in plan.steps]
        return {
            "kind": "pipeline",
            "component": plan.ref,
            "inputs": {name: value for name, value in inputs.items() if value is not None},
            "outputs": outputs,
            "settings": {
                "continue_on_step_failure": settings.continue_on_step_failure,
                "max_concurrent_steps": settings.max_concurrent_steps,
                "default_compute": settings.default_compute,
                "default_datastore": settings.default_datastore or DEFAULT_DATASTORE,
            },
            "steps": steps,
            "job_folder": {"datastore": DEFAULT_DATASTORE, "path": job_folder(job_name)},
        }

    def _refuse_model_settings(self, deployment: DeploymentRecord, request: InvokeRequest) -> None:
        for field, rest_name in _MODEL_SETTINGS.items():
            if getattr(request.overrides, field) is not None:
                raise ValidationError(
                    f"properties.{rest_name} is a setting of model deployments; deployment "
                    f"{deployment.name!r} runs a pipeline component and takes none of them.",
                    target=f"properties.{rest_name}",
                )

    # -- inputs -----------------------------------------------------------------------------

    def _inputs(
        self, plan: PipelinePlan, request: InvokeRequest, principal: Principal
    ) -> dict[str, Any]:
        spec = plan.spec
        for name in request.inputs:
            if name not in spec.inputs:
                raise ValidationError(
                    f"Input {name!r} is not an input of pipeline component {plan.ref}; its "
                    f"inputs: {_declared(spec)}.",
                    target=f"InputData.{name}",
                )
        missing = [n for n, d in spec.inputs.items() if d.required and n not in request.inputs]
        if missing:
            raise ValidationError(
                f"Input {missing[0]!r} is required by pipeline component {plan.ref} and was not "
                f"given; its inputs: {_declared(spec)}.",
                target=f"InputData.{missing[0]}",
            )
        resolved: dict[str, Any] = {}
        for name, declared in spec.inputs.items():
            given = request.inputs.get(name)
            if given is None:
                resolved[name] = _default(declared)
            else:
                resolved[name] = self._input(name, declared, given, principal)
        return resolved

    def _input(
        self, name: str, declared: ComponentInput, given: InvokeInput, principal: Principal
    ) -> dict[str, Any]:
        where = f"InputData.{name}"
        got = _REST_NAMES.get(given.type, given.type)
        if declared.type.is_literal:
            if given.type != "literal":
                raise ValidationError(
                    f"Input {name!r} is a literal ({declared.type.value}); give it as "
                    f'{{"JobInputType": "Literal", "Value": ...}}, not as {got} data.',
                    target=where,
                )
            try:
                value = declared.check(given.value)
            except ValueError as exc:
                raise ValidationError(f"Input {name!r}: {exc}.", target=where) from None
            return _literal(declared, value)
        wanted = _REST_NAMES[declared.type.value]
        if given.type == "literal":
            raise ValidationError(
                f"Input {name!r} is {declared.type.value} data; give it as "
                f'{{"JobInputType": "{wanted}", "Uri": ...}}, not as the literal {given.value!r}.',
                target=where,
            )
        if given.type != declared.type.value:
            raise ValidationError(
                f"Input {name!r} is declared {declared.type.value}; got {got}. Give it as "
                f"JobInputType {wanted}.",
                target=where,
            )
        return self._data(name, declared, given.uri or "", principal)

    def _data(
        self, name: str, declared: ComponentInput, uri: str, reader: Principal | None
    ) -> dict[str, Any]:
        """A data or model input resolved to its location, checked to exist and, when
        ``reader`` is given, that it may read it."""
        if declared.type.is_model:
            try:
                ref = parse_model_reference(uri, self._scope)
            except ValidationError as exc:
                raise ValidationError(f"Input {name!r}: {exc.message}", target=name) from None
            model = self._assets.get("model", ref.name, ref.version)
            kind = "uri_folder" if model.path.endswith("/") else "uri_file"
            resolved = self._resolver.resolve(name, kind, model.path, reader=reader)
            return {
                **resolved.spec(),
                "type": declared.type.value,
                "uri": f"azureml:{model.name}:{model.version}",
            }
        resolved = self._resolver.resolve(name, declared.type.value, uri, reader=reader)
        return dict(resolved.spec())

    # -- outputs ----------------------------------------------------------------------------

    def _outputs(
        self,
        plan: PipelinePlan,
        request: InvokeRequest,
        job_name: str,
        settings: PipelineDeploymentSettings,
        principal: Principal,
        *,
        fresh: bool,
    ) -> dict[str, Any]:
        spec = plan.spec
        for name in request.outputs:
            if name not in spec.outputs:
                raise ValidationError(
                    f"Output {name!r} is not an output of pipeline component {plan.ref}; its "
                    f"outputs: {', '.join(spec.outputs) or 'none'}.",
                    target=f"OutputData.{name}",
                )
        datastore = settings.default_datastore or DEFAULT_DATASTORE
        outputs: dict[str, Any] = {}
        folders: dict[tuple[str, str], str] = {}
        for name in spec.outputs:
            where = f"OutputData.{name}"
            given = request.outputs.get(name)
            uri = (
                given.uri
                if given is not None and given.uri
                else f"azureml://datastores/{datastore}/paths/{job_folder(job_name)}/{name}/"
            )
            named = given is not None and bool(given.uri)
            ref = self._resolver.writable_output(
                where, uri, principal, named=named, what=f"output {name!r}"
            )
            new = self._resolver.new_job_folder(ref.datastore, ref.path, fresh and not named)
            location = new or self._resolver.output_location(ref.datastore, ref.path)
            key = (location.datastore, location.path)
            if key in folders:
                raise ValidationError(
                    f"{where}: {location.uri} is also output {folders[key]!r}; each output "
                    "needs a folder of its own.",
                    target=where,
                )
            folders[key] = name
            if new is None and self._resolver.exists(location, where) and location.list_files():
                raise ConflictError(
                    f"{where}: {location.uri} already holds files, and outputs are never "
                    "overwritten; choose another output path.",
                    target=where,
                )
            outputs[name] = {
                "name": name,
                "type": "uri_folder",
                "uri": location.uri + "/",
                "datastore": location.datastore,
                "path": location.path,
            }
        return outputs

    # -- steps ------------------------------------------------------------------------------

    def _step(
        self,
        plan: PipelineStepPlan,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        job_name: str,
    ) -> dict[str, Any]:
        step, command = plan.step, plan.command
        step_inputs: dict[str, Any] = {}
        for input_name, declared in command.inputs.items():
            at = f"jobs.{plan.name}.inputs.{input_name}"
            binding = parse_input_binding(step.inputs.get(input_name), at)
            value: dict[str, Any] | None
            if binding is None:
                value = _default(declared)
            elif isinstance(binding, ParentInput):
                value = inputs.get(binding.name)
                if value is None:
                    value = _default(declared)
                elif value["type"] == "literal":
                    try:
                        value = _literal(declared, declared.check(value["value"]))
                    except ValueError as exc:
                        raise ValidationError(
                            f"Input {binding.name!r}: step {plan.name!r} reads it as its input "
                            f"{input_name!r}, and {exc}.",
                            target=f"InputData.{binding.name}",
                        ) from None
            elif isinstance(binding, StepOutput):
                value = {"type": "step_output", "step": binding.step, "output": binding.name}
            elif isinstance(binding, LiteralBinding):
                value = _literal(declared, _converted(declared, binding.value, at))
            else:
                value = self._fixed(plan.name, input_name, declared, binding)
            if value is not None:
                step_inputs[input_name] = value
        step_outputs: dict[str, Any] = {}
        for output_name in command.outputs:
            at = f"jobs.{plan.name}.outputs.{output_name}"
            target = parse_output_binding(step.outputs.get(output_name), at)
            if target is not None:
                chosen = outputs[target.name]
                step_outputs[output_name] = {
                    "datastore": chosen["datastore"],
                    "path": chosen["path"],
                    "pipeline_output": target.name,
                }
            else:
                step_outputs[output_name] = {
                    "datastore": DEFAULT_DATASTORE,
                    "path": posixpath.join(steps_folder(job_name), plan.name, output_name),
                    "pipeline_output": None,
                }
        code = None
        if command.code is not None:
            ref = parse_reference(command.code, self._scope)
            assert isinstance(ref, DatastorePathRef)  # checked when the component was registered
            code = {"datastore": ref.datastore, "path": ref.path}
            location = self._resolver.output_location(ref.datastore, ref.path)
            if not self._resolver.exists(location, "component"):
                raise ValidationError(
                    f"Step {plan.name!r}: its code folder {location.uri} does not exist.",
                    target="component",
                )
        environment, note = (
            self._environments.for_step(command.environment, f"Step {plan.name!r}")
            if self._environments is not None and command.environment is not None
            else (None, None)
        )
        return {
            "name": plan.name,
            "display_name": step.display_name or command.display_name,
            "environment": environment,
            "environment_note": note,
            "component": plan.component,
            "command": command.command,
            "code": code,
            "environment_variables": {
                **command.environment_variables,
                **step.environment_variables,
            },
            "inputs": step_inputs,
            "outputs": step_outputs,
            "depends_on": list(plan.depends_on),
        }

    def _fixed(
        self, step: str, input_name: str, declared: ComponentInput, binding: FixedData
    ) -> dict[str, Any]:
        """Data or a model the pipeline names itself, resolved when the job is created."""
        try:
            return self._data(f"{step}.{input_name}", declared, binding.path, None)
        except ValidationError as exc:
            raise type(exc)(
                f"Step {step!r} of the pipeline reads {binding.path!r} as its input "
                f"{input_name!r}: {exc.message}",
                target=f"jobs.{step}.inputs.{input_name}",
            ) from None


def _converted(declared: ComponentInput, value: Any, where: str) -> Any:
    try:
        return declared.check(value)
    except ValueError as exc:
        raise ValidationError(f"{where}: {exc}.", target=where) from None


def _literal(declared: ComponentInput, value: Any) -> dict[str, Any]:
    return {"type": "literal", "value": value, "literal_type": declared.type.value}


def _default(declared: ComponentInput) -> dict[str, Any] | None:
    """The input's default as a literal input, or None when it has none (it is left out)."""
    return None if declared.default is None else _literal(declared, declared.default)


__all__ = ["PipelineInvoker", "steps_folder"]
