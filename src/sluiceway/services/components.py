"""Components: registered, versioned command and pipeline components.

Registering a pipeline checks all of its wiring up front, so that a deployment of it can only
fail at run time for reasons of the data: every step's component exists and is a command
component, every step input is one its component declares and is bound to something of a
fitting type, every required input is bound, every pipeline output is written by exactly one
step, and the steps have no cycle. A step that names a registered component by
``azureml:<name>@latest`` is pinned to the version that is latest now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluiceway.auth.principals import Principal
from sluiceway.errors import ConflictError, ResourceNotFoundError, ValidationError
from sluiceway.schemas.common import CreationContext, WorkspaceScope
from sluiceway.schemas.components import (
    CommandComponentSpec,
    ComponentInput,
    ComponentOut,
    ComponentSpec,
    FixedData,
    InputType,
    LiteralBinding,
    ParentInput,
    PipelineComponentSpec,
    PipelineStep,
    StepOutput,
    dump_component,
    parse_component,
    parse_input_binding,
    parse_output_binding,
)
from sluiceway.services.datastores import DatastoreService
from sluiceway.services.registry import Registry
from sluiceway.services.version_refs import id_pattern, parse_version_reference
from sluiceway.storage.references import (
    DataAssetRef,
    DatastorePathRef,
    LocalPathRef,
    parse_model_reference,
    parse_reference,
)
from sluiceway.store.components import ComponentRecord, ComponentStore

ACCEPTED_COMPONENT_REFERENCES = (
    "azureml:<name>:<version>, azureml:<name>@latest, <name>:<version>, or "
    "/subscriptions/.../workspaces/<workspace>/components/<name>/versions/<version>"
)
_IDS = id_pattern("components", labels=True)


@dataclass(frozen=True)
class ComponentRef:
    """A registered component by version, or its latest version (``version`` None)."""

    name: str
    version: str | None


@dataclass(frozen=True)
class PipelineStepPlan:
    """One step of a registered pipeline, its command component and what it depends on."""

    name: str
    step: PipelineStep
    command: CommandComponentSpec
    component: str  # the registered component it runs, or "inline"
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class PipelinePlan:
    """A pipeline component, with its steps in dependency order."""

    ref: str
    spec: PipelineComponentSpec
    steps: tuple[PipelineStepPlan, ...]


def parse_component_reference(value: str, scope: WorkspaceScope, where: str) -> ComponentRef:
    """Read ``azureml:<name>:<version>``, ``azureml:<name>@latest`` or a component id.

    Raises:
        ValidationError: the value is none of those forms, or names another workspace.
    """
    name, version = parse_version_reference(
        value,
        _IDS,
        scope,
        where,
        what="a component reference",
        accepted=ACCEPTED_COMPONENT_REFERENCES,
    )
    return ComponentRef(name, version)


class ComponentService:
    def __init__(
        self,
        store: ComponentStore,
        datastores: DatastoreService,
        scope: WorkspaceScope,
        registry: Registry,
    ) -> None:
        self._store = store
        self._datastores = datastores
        self._scope = scope
        self._registry = registry

    # -- registration -----------------------------------------------------------------------

    def create(
        self,
        raw: Any,
        principal: Principal,
        *,
        where: str = "component",
        default_name: str | None = None,
        kind: str | None = None,
    ) -> tuple[ComponentRecord, bool]:
        """Register a component version from its YAML mapping.

        Without a version the latest version is reused when it is the same component, and the
        next number is taken otherwise. With ``kind`` the component must be of that type.

        Raises:
            ValidationError: the component or its wiring is not valid, naming the key.
            ResourceNotFoundError: a step names a component that does not exist.
            ConflictError: that version exists with other content.
        """
        spec = parse_component(raw, where)
        if kind is not None and spec.type != kind:
            raise ValidationError(
                f"{where}.type: the component is type {spec.type}; {kind} is needed here (a "
                "pipeline deployment runs a pipeline component).",
                target=f"{where}.type",
            )
        name = spec.name or default_name
        if name is None:
            raise ValidationError(f"{where}.name: a component needs a name", target=f"{where}.name")
        stored = self._normalise(spec, where, principal)
        stored["name"] = name
        try:
            record, created = self._store.create(
                name, spec.version, stored["type"], stored, principal.name
            )
        except Exception as exc:  # another registration of this name took the version first
            try:
                record, created = self._store.create(
                    name, spec.version, stored["type"], stored, principal.name
                )
            except Exception:
                raise ConflictError(
                    f"Component {name!r} was registered by another request at the same time; "
                    "try again.",
                    target=f"{where}.version",
                ) from exc
        if not created and spec.version is not None:
            ours = {k: v for k, v in stored.items() if k != "version"}
            theirs = {k: v for k, v in record.spec.items() if k != "version"}
            if ours != theirs:
                raise ConflictError(
                    f"Component {name}:{spec.version} already exists with other content; give "
                    "a new version, or leave the version out to get the next one.",
                    target=f"{where}.version",
                )
        return record, created

    def _normalise(self, spec: ComponentSpec, where: str, principal: Principal) -> dict[str, Any]:
        if isinstance(spec, CommandComponentSpec):
            return dump_component(self._with_code(spec, where, principal))
        steps = {}
        for name, step in spec.jobs.items():
            at = f"{where}.jobs.{name}.component"
            if isinstance(step.component, str):
                record = self._command(step.component, at)
                component: str | CommandComponentSpec = f"azureml:{record.name}:{record.version}"
            else:
                component = self._with_code(step.component, at, principal)
            steps[name] = step.model_copy(update={"component": component})
        pinned = spec.model_copy(update={"jobs": steps})
        self._plan(pinned, "(new)", where)  # checks the wiring
        return dump_component(pinned)

    def _with_code(
        self, spec: CommandComponentSpec, where: str, principal: Principal
    ) -> CommandComponentSpec:
        """The component with its ``code`` checked and copied into the registry, where no
        caller can change it."""
        if spec.code is None:
            return spec
        at = f"{where}.code"
        ref = parse_reference(spec.code, self._scope)
        if isinstance(ref, LocalPathRef):
            raise ValidationError(
                f"{at}: {spec.code!r} is a local folder; the server does not read its own disk "
                "for a caller. The CLI and SDK upload it; over REST give "
                "azureml://datastores/<datastore>/paths/<path>.",
                target=at,
            )
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(
                f"{at}: {spec.code!r} must be a datastore folder "
                "(azureml://datastores/<datastore>/paths/<path>).",
                target=at,
            )
        location = self._datastores.location(ref.datastore, ref.path)
        if not location.is_dir():
            raise ValidationError(f"{at}: {spec.code!r} is not an existing folder.", target=at)
        code = self._registry.register(location.uri + "/", principal, target=at)
        return spec.model_copy(update={"code": code})

    def _command(self, reference: str, where: str) -> ComponentRecord:
        record = self.resolve(reference, where)
        if record.type != "command":
            raise ValidationError(
                f"{where}: {reference!r} is a {record.type} component; a step runs a command "
                "component.",
                target=where,
            )
        return record

    # -- the wiring -------------------------------------------------------------------------

    def plan(self, record: ComponentRecord) -> PipelinePlan:
        """The steps of a registered pipeline component, in dependency order."""
        spec = parse_component(record.spec)
        if not isinstance(spec, PipelineComponentSpec):
            raise ValidationError(
                f"Component {record.name}:{record.version} is a command component; a pipeline "
                "deployment runs a pipeline component (type: pipeline).",
                target="component",
            )
        return self._plan(spec, f"azureml:{record.name}:{record.version}", "component")

    def _plan(self, spec: PipelineComponentSpec, ref: str, where: str) -> PipelinePlan:
        commands: dict[str, tuple[CommandComponentSpec, str]] = {}
        for name, step in spec.jobs.items():
            if isinstance(step.component, str):
                record = self._command(step.component, f"{where}.jobs.{name}.component")
                command = parse_component(record.spec)
                assert isinstance(command, CommandComponentSpec)
                commands[name] = (command, f"azureml:{record.name}:{record.version}")
            else:
                label = f"{step.component.name} (inline)" if step.component.name else "inline"
                commands[name] = (step.component, label)
        depends: dict[str, set[str]] = {}
        written: dict[str, str] = {}
        for name, step in spec.jobs.items():
            command = commands[name][0]
            depends[name] = self._check_inputs(spec, name, step, command, commands, where)
            for output, target in self._check_outputs(spec, name, step, command, where).items():
                if target in written:
                    raise ValidationError(
                        f"{where}.outputs.{target}: written by two steps, {written[target]} and "
                        f"{name}.{output}; a pipeline output comes from one step.",
                        target=f"{where}.outputs.{target}",
                    )
                written[target] = f"{name}.{output}"
        for output in spec.outputs:
            if output not in written:
                raise ValidationError(
                    f"{where}.outputs.{output}: no step writes it; bind a step output to "
                    f"${{{{parent.outputs.{output}}}}}.",
                    target=f"{where}.outputs.{output}",
                )
        order = _dependency_order(depends, where)
        steps = tuple(
            PipelineStepPlan(
                name=name,
                step=spec.jobs[name],
                command=commands[name][0],
                component=commands[name][1],
                depends_on=tuple(sorted(depends[name])),
            )
            for name in order
        )
        return PipelinePlan(ref=ref, spec=spec, steps=steps)

    def _check_inputs(
        self,
        spec: PipelineComponentSpec,
        name: str,
        step: PipelineStep,
        command: CommandComponentSpec,
        commands: dict[str, tuple[CommandComponentSpec, str]],
        where: str,
    ) -> set[str]:
        depends: set[str] = set()
        bound: set[str] = set()
        for input_name, value in step.inputs.items():
            at = f"{where}.jobs.{name}.inputs.{input_name}"
            declared = command.inputs.get(input_name)
            if declared is None:
                raise ValidationError(
                    f"{at}: the step's component has no input {input_name!r}; its inputs: "
                    f"{', '.join(command.inputs) or 'none'}.",
                    target=at,
                )
            binding = parse_input_binding(value, at)
            if binding is None:
                continue
            bound.add(input_name)
            if isinstance(binding, ParentInput):
                parent = spec.inputs.get(binding.name)
                if parent is None:
                    raise ValidationError(
                        f"{at}: the pipeline has no input {binding.name!r}; its inputs: "
                        f"{', '.join(spec.inputs) or 'none'}.",
                        target=at,
                    )
                _check_fit(parent, declared, at, f"pipeline input {binding.name!r}")
                if declared.required and parent.optional and parent.default is None:
                    raise ValidationError(
                        f"{at}: the step needs this input, but pipeline input {binding.name!r} "
                        "is optional with no default; make it required or give it a default.",
                        target=at,
                    )
            elif isinstance(binding, StepOutput):
                if binding.step == name or binding.step not in spec.jobs:
                    raise ValidationError(
                        f"{at}: {binding.step!r} is not another step of the pipeline; its "
                        f"steps: {', '.join(spec.jobs)}.",
                        target=at,
                    )
                producer = commands[binding.step][0]
                if binding.name not in producer.outputs:
                    raise ValidationError(
                        f"{at}: step {binding.step!r} has no output {binding.name!r}; its "
                        f"outputs: {', '.join(producer.outputs) or 'none'}.",
                        target=at,
                    )
                if declared.type.is_literal or declared.type is InputType.URI_FILE:
                    raise ValidationError(
                        f"{at}: a step output is a folder, but input {input_name!r} is "
                        f"{declared.type.value}.",
                        target=at,
                    )
                depends.add(binding.step)
            elif isinstance(binding, LiteralBinding):
                if not declared.type.is_literal:
                    raise ValidationError(
                        f"{at}: {binding.value!r} is a literal, but input {input_name!r} is "
                        f"{declared.type.value} (data); bind it to data.",
                        target=at,
                    )
                try:
                    declared.check(binding.value)
                except ValueError as exc:
                    raise ValidationError(f"{at}: {exc}", target=at) from None
            else:
                self._check_fixed(binding, declared, at)
        for input_name, declared in command.inputs.items():
            if declared.required and input_name not in bound:
                at = f"{where}.jobs.{name}.inputs.{input_name}"
                raise ValidationError(
                    f"{at}: the step's component needs input {input_name!r} "
                    f"({declared.type.value}); bind it.",
                    target=at,
                )
        return depends

    def _check_fixed(self, binding: FixedData, declared: ComponentInput, at: str) -> None:
        if declared.type.is_literal:
            raise ValidationError(
                f"{at}: input is {declared.type.value}; a {{type, path}} mapping binds data.",
                target=at,
            )
        if binding.type is not None and binding.type != declared.type.value:
            raise ValidationError(
                f"{at}: type {binding.type!r} does not match the input's type "
                f"{declared.type.value}.",
                target=at,
            )
        if declared.type.is_model:
            try:
                parse_model_reference(binding.path, self._scope)
            except ValidationError as exc:
                raise ValidationError(f"{at}: {exc.message}", target=at) from None
            return
        try:
            ref = parse_reference(binding.path, self._scope)
        except ValidationError as exc:
            raise ValidationError(f"{at}: {exc.message}", target=at) from None
        if isinstance(ref, LocalPathRef):
            raise ValidationError(
                f"{at}: {binding.path!r} is a local path; name a data asset or a datastore "
                "path (azureml://datastores/<datastore>/paths/<path>).",
                target=at,
            )
        if not isinstance(ref, DatastorePathRef | DataAssetRef):
            return  # a storage URL: the resolver decides when the pipeline runs

    def _check_outputs(
        self,
        spec: PipelineComponentSpec,
        name: str,
        step: PipelineStep,
        command: CommandComponentSpec,
        where: str,
    ) -> dict[str, str]:
        """The step's outputs that go to pipeline outputs: step output -> pipeline output."""
        targets = {}
        for output, value in step.outputs.items():
            at = f"{where}.jobs.{name}.outputs.{output}"
            if output not in command.outputs:
                raise ValidationError(
                    f"{at}: the step's component has no output {output!r}; its outputs: "
                    f"{', '.join(command.outputs) or 'none'}.",
                    target=at,
                )
            binding = parse_output_binding(value, at)
            if binding is None:
                continue
            if binding.name not in spec.outputs:
                raise ValidationError(
                    f"{at}: the pipeline has no output {binding.name!r}; its outputs: "
                    f"{', '.join(spec.outputs) or 'none'}.",
                    target=at,
                )
            targets[output] = binding.name
        return targets

    # -- lookup -----------------------------------------------------------------------------

    def resolve(self, reference: str, where: str = "component") -> ComponentRecord:
        """The component a reference names (its latest version for ``@latest``)."""
        ref = parse_component_reference(reference, self._scope, where)
        return self.get(ref.name, ref.version)

    def get(self, name: str, version: str | None = None) -> ComponentRecord:
        record = self._store.get(name, version) if version else self._store.latest(name)
        if record is None:
            which = f"{name}:{version}" if version else f"{name} (any version)"
            raise ResourceNotFoundError(f"Component {which} does not exist.", target="component")
        return record

    def versions(self, name: str) -> list[ComponentRecord]:
        records = self._store.versions(name)
        if not records:
            raise ResourceNotFoundError(f"Component {name!r} does not exist.", target="component")
        return records

    def list_latest(self) -> list[ComponentRecord]:
        return self._store.list_latest()

    def component_id(self, name: str, version: str) -> str:
        return f"{self._scope.prefix}/components/{name}/versions/{version}"

    def component_out(self, record: ComponentRecord) -> ComponentOut:
        return ComponentOut.model_validate(
            {
                **record.spec,
                "id": self.component_id(record.name, record.version),
                "name": record.name,
                "version": record.version,
                "type": record.type,
                "creation_context": CreationContext(
                    created_at=record.created_at, created_by=record.created_by
                ),
            }
        )


def _check_fit(parent: ComponentInput, step: ComponentInput, at: str, what: str) -> None:
    """Whether a pipeline input can feed a step input."""
    p, s = parent.type, step.type
    if p.is_literal != s.is_literal:
        raise ValidationError(
            f"{at}: {what} is {p.value}, but the step's input is {s.value}: it needs "
            f"{'a literal' if s.is_literal else 'data'}.",
            target=at,
        )
    fits = p == s or (
        s.is_literal
        and (s is InputType.STRING or (s is InputType.NUMBER and p is InputType.INTEGER))
    )
    if not fits:
        raise ValidationError(
            f"{at}: {what} is {p.value}, which does not fit the step's {s.value} input.",
            target=at,
        )


def _dependency_order(depends: dict[str, set[str]], where: str) -> list[str]:
    """The steps in an order where each comes after those it needs (declared order otherwise)."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(depends)
    while remaining:
        ready = [n for n in remaining if depends[n] <= placed]
        if not ready:
            raise ValidationError(
                f"{where}.jobs: the steps {', '.join(remaining)} cannot be ordered: their inputs "
                "read each other's outputs in a cycle. A step runs after the steps whose outputs "
                "it reads.",
                target=f"{where}.jobs",
            )
        for name in ready:
            order.append(name)
            placed.add(name)
        remaining = [n for n in remaining if n not in placed]
    return order
