"""Environments: registered versions, deployments' references to them, and their builds.

A deployment names an environment (``azureml:<name>:<version>``, ``azureml:<name>@latest``) or
gives one inline; either way its *content* (see :mod:`sluiceway.environments.spec`) is pinned in
the deployment when it is created, and its build starts then, on a background thread, so the
request returns at once (``provisioning_state`` is ``Creating`` until the build ends). A job of
the deployment uses the build, or waits for it, or builds it if the server restarted meanwhile:
the cache's lock makes that one build whoever asks first.
"""

from __future__ import annotations

import functools
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from sluiceway.auth.principals import Principal
from sluiceway.environments.cache import BuildStatus, EnvironmentCache
from sluiceway.environments.spec import EnvironmentContent, content_of
from sluiceway.errors import ConflictError, ResourceNotFoundError, ValidationError
from sluiceway.schemas.common import CreationContext, WorkspaceScope
from sluiceway.schemas.environments import EnvironmentBuildOut, EnvironmentCreate, EnvironmentOut
from sluiceway.services.datastores import DatastoreService, storage_call
from sluiceway.services.registry import Registry
from sluiceway.services.version_refs import id_pattern, parse_version_reference
from sluiceway.storage.locations import Location
from sluiceway.storage.references import DatastorePathRef
from sluiceway.store.environments import EnvironmentRecord, EnvironmentStore

logger = logging.getLogger("sluiceway.environments")

ACCEPTED_REFERENCES = (
    "azureml:<name>:<version>, azureml:<name>@latest, <name>:<version>, or "
    "/subscriptions/.../workspaces/<workspace>/environments/<name>/versions/<version>"
)
_IDS = id_pattern("environments")
CURATED_PREFIX = "AzureML-"
MLFLOW_ENVIRONMENT_PROPERTY = "mlflow_environment"
"""The deployment property that chooses an MLflow deployment's environment when it names none:
``server`` (the default: the server's own, with warm spare workers) or ``model`` (built from
the model's ``requirements.txt`` or ``conda.yaml``, as Azure does for no-code deployments)."""
ENVIRONMENT_CONTENT = "_environment"
"""The key of a deployment's spec that holds its environment's content (not shown)."""
_INLINE_KEYS = (
    "name",
    "version",
    "description",
    "image",
    "conda_file",
    "requirements",
    "tags",
    "properties",
)


@dataclass(frozen=True)
class PinnedEnvironment:
    """An environment as a deployment keeps it: what it showed (a pinned reference or the
    inline definition) and the content it is built from."""

    shown: str | dict[str, Any]
    content: EnvironmentContent | None  # None: one of Azure's curated environments


class EnvironmentService:
    def __init__(
        self,
        store: EnvironmentStore,
        cache: EnvironmentCache,
        datastores: DatastoreService,
        registry: Registry,
        scope: WorkspaceScope,
    ) -> None:
        self._store = store
        self.cache = cache
        self._datastores = datastores
        self._registry = registry
        self._scope = scope
        self._builds = ThreadPoolExecutor(max_workers=1, thread_name_prefix="environment-build")

    # -- the resource -----------------------------------------------------------------------

    def create(self, raw: dict[str, Any], principal: Principal) -> tuple[EnvironmentRecord, bool]:
        """Register an environment version (the existing one when nothing changed).

        Raises:
            ValidationError: the definition cannot be built here; the message says why.
            ConflictError: the version exists with another definition.
        """
        try:
            body = EnvironmentCreate.model_validate(raw)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "environment"
            raise ValidationError(f"environment.{where}: {first['msg']}", target=where) from None
        spec, content = self._definition(
            body.model_dump(exclude={"name", "version", "build"}, exclude_none=True)
            | ({"build": body.build} if body.build else {}),
            principal,
            "environment",
        )
        record, created = self._store.create(
            body.name,
            body.version,
            spec,
            content.to_json(),
            content.content_hash(),
            principal.name,
        )
        if not created and body.version is not None and record.spec != spec:
            raise ConflictError(
                f"Environment {body.name}:{body.version} exists with another definition; "
                "versions do not change. Give a new version, or none to get the next one.",
                target="version",
            )
        return record, created

    def get(self, name: str, version: str | None = None) -> EnvironmentRecord:
        record = self._store.get(name, version) if version else self._store.latest(name)
        if record is None:
            which = f"{name}:{version}" if version else f"{name} (any version that is not archived)"
            raise ResourceNotFoundError(
                f"Environment {which} does not exist.", target="environment"
            )
        return record

    def versions(self, name: str) -> list[EnvironmentRecord]:
        records = self._store.versions(name)
        if not records:
            raise ResourceNotFoundError(f"Environment {name!r} does not exist.", target="name")
        return records

    def list_latest(self, *, archived: bool = False) -> list[EnvironmentRecord]:
        return self._store.list_latest(archived=archived)

    def archive(self, name: str, version: str | None, *, archived: bool = True) -> None:
        """Archive a version (or every version): ``@latest`` no longer finds it; deployments
        that pinned it keep it."""
        if not self._store.set_archived(name, version, archived):
            self.get(name, version)  # raises the 404

    def delete(self, name: str, version: str | None, used_by: list[str]) -> None:
        """Delete a version (or every version) that no deployment uses.

        Args:
            used_by: the deployments (``endpoint/deployment``) that pin it, from the caller.

        Raises:
            ConflictError: a deployment uses it.
        """
        self.get(name, version) if version else self.versions(name)
        if used_by:
            raise ConflictError(
                f"Environment {name}{':' + version if version else ''} is used by deployment(s) "
                f"{', '.join(used_by)}; delete or change them first, or archive it.",
                target="environment",
            )
        self._store.delete(name, version)

    def environment_out(self, record: EnvironmentRecord) -> EnvironmentOut:
        return EnvironmentOut.model_validate(
            {
                **record.spec,
                "id": self._scope.environment_id(record.name, record.version),
                "name": record.name,
                "version": record.version,
                "archived": record.archived,
                "build": self.build_out(record.content_hash),
                "creation_context": CreationContext(
                    created_at=record.created_at, created_by=record.created_by
                ),
            }
        )

    def build_log(self, record: EnvironmentRecord) -> str:
        return self.cache.log(record.content_hash)

    def build_log_by_hash(self, content_hash: str) -> str:
        """The log of a build by content hash.

        Raises:
            ResourceNotFoundError: no build of that hash has a log.
        """
        if re.fullmatch(r"[0-9a-f]{32}", content_hash):
            log = self.cache.log(content_hash)
            if log:
                return log
        raise ResourceNotFoundError(
            f"No environment build {content_hash!r} has a log; a deployment's "
            "environment_build.content_hash names its build.",
            target="content_hash",
        )

    # -- deployments and components ---------------------------------------------------------

    def pin(
        self, value: str | dict[str, Any], principal: Principal, where: str
    ) -> PinnedEnvironment:
        """The environment a deployment or component names, pinned: a reference to its
        version, or the inline definition (its wheels registered). One of Azure's curated
        environments (``AzureML-...``) that is not registered here is kept as named, without
        content: its packages are not known, and the deployment runs in the server's
        environment, as its jobs' logs say.

        Raises:
            ValidationError: not a reference nor a definition that can be built here.
            ResourceNotFoundError: no such environment.
        """
        if isinstance(value, str):
            name, version = self._parse_reference(value, where)
            if name.startswith(CURATED_PREFIX) and self._store.latest(name) is None:
                return PinnedEnvironment(value, None)  # runs in the server's environment
            record = self.get(name, version)
            return PinnedEnvironment(
                f"azureml:{record.name}:{record.version}",
                EnvironmentContent.from_json(record.content),
            )
        unknown = [str(k) for k in value if k not in (*_INLINE_KEYS, "build")]
        if unknown:
            raise ValidationError(
                f"{where}: unknown key {unknown[0]!r}; an inline environment takes "
                f"{', '.join(_INLINE_KEYS)}.",
                target=where,
            )
        spec, content = self._definition(dict(value), principal, where)
        return PinnedEnvironment(spec, content)

    def for_step(
        self, value: str | dict[str, Any], where: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A pipeline step's environment, for its job: its content (with its hash), or None
        and why it runs in the server's environment (an Azure curated environment, which
        cannot be rebuilt here).

        Raises:
            ValidationError: the environment cannot be built here, or its build failed.
            ResourceNotFoundError: no such environment.
        """
        if isinstance(value, str):
            name, version = self._parse_reference(value, f"{where}: environment")
            if name.startswith(CURATED_PREFIX) and self._store.latest(name) is None:
                return None, (
                    f"environment {value!r} is one of Azure's curated environments, whose "
                    "content is not known here: the step runs in the server's environment. "
                    "Register an environment of that name to run it in its own."
                )
            content = EnvironmentContent.from_json(self.get(name, version).content)
        else:
            content = content_of(value, where=f"{where}: environment")
        self.check_usable(content.to_json(), where)
        return {**content.to_json(), "hash": content.content_hash()}, None

    def from_model(self, model_path: str, model: str) -> dict[str, Any]:
        """An inline environment built from an MLflow model's own requirements: its folder's
        ``requirements.txt``, else its ``conda.yaml`` (what ``mlflow`` writes next to
        ``MLmodel``).

        Raises:
            ValidationError: the model has neither file, or one the server cannot honour.
        """
        where = f"{MLFLOW_ENVIRONMENT_PROPERTY}: model"
        ref = self._datastores.parse_reference(model_path)
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(f"model {model} is not in a datastore", target=where)
        folder = self._datastores.location(ref.datastore, ref.path)
        for name in ("requirements.txt", "conda.yaml"):
            file = folder.child(name)
            if not storage_call(f"model {model}'s {name}", where, file.is_file):
                continue
            text = storage_call(f"model {model}'s {name}", where, functools.partial(_read, file))
            description = f"built from model {model}'s {name}"
            if name == "requirements.txt":
                definition: dict[str, Any] = {"requirements": text.splitlines()}
            else:
                conda = yaml.safe_load(text)
                if not isinstance(conda, dict):
                    raise ValidationError(f"model {model}'s conda.yaml is not a mapping")
                definition = {"conda_file": conda}
            definition["description"] = description
            content_of(definition, where=f"model {model}'s {name}")  # refused now, not later
            return definition
        raise ValidationError(
            f"Deployment property {MLFLOW_ENVIRONMENT_PROPERTY}=model builds the environment "
            f"from the model's requirements, and model {model} has neither requirements.txt "
            "nor conda.yaml. Give the deployment an environment, or drop the property to run "
            "in the server's environment.",
            target="properties",
        )

    def build_out(self, content_hash: str) -> EnvironmentBuildOut:
        state = self.cache.state(content_hash)
        return EnvironmentBuildOut(
            status=state.status.value,
            content_hash=content_hash,
            log_tail=state.log_tail or None,
        )

    def deployment_build(self, content: dict[str, Any]) -> tuple[EnvironmentBuildOut, str]:
        """A deployment's environment build, and its ``provisioning_state`` (Creating while the
        environment builds), from one look at the cache."""
        build = self.build_out(EnvironmentContent.from_json(content).content_hash())
        if build.status == BuildStatus.READY.value:
            return build, "Succeeded"
        return build, "Failed" if build.status == BuildStatus.FAILED.value else "Creating"

    def start_build(self, content: EnvironmentContent) -> None:
        """Build in the background (again, if it failed before: the deployment was created
        again)."""
        self.cache.forget_failure(content.content_hash())
        self._builds.submit(self._build, content)

    def build_missing(self, contents: list[EnvironmentContent]) -> None:
        """Start the builds of ``contents`` that were never built (or were evicted): a server
        that stopped while building, say. Failed builds stay failed."""
        for content in contents:
            if self.cache.state(content.content_hash()).status is BuildStatus.ABSENT:
                self._builds.submit(self._build, content)

    def check_usable(self, content: dict[str, Any], what: str) -> None:
        """Refuse to start a job in an environment whose build failed.

        Raises:
            ConflictError: naming ``what`` and the end of the build log.
        """
        state = self.cache.state(EnvironmentContent.from_json(content).content_hash())
        if state.status is BuildStatus.FAILED:
            raise ConflictError(
                f"{what} is Failed: the build of its environment failed, so it cannot run jobs. "
                f"Fix the environment and create the deployment again. The end of the build "
                f"log:\n{state.log_tail}",
                target="environment",
            )

    def fetch_file(self, uri: str, folder: Path) -> Path:
        """The local file of an uploaded wheel (copied into ``folder`` when remote)."""
        ref = self._datastores.parse_reference(uri)
        if not isinstance(ref, DatastorePathRef):
            raise ValidationError(f"{uri!r} is not a datastore path", target="environment")
        location = self._datastores.location(ref.datastore, ref.path)
        local = location.local_path()
        if local is not None:
            return local
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / ref.path.rsplit("/", 1)[-1]
        with open(target, "wb") as out:
            for chunk in location.iter_bytes():
                out.write(chunk)
        return target

    def close(self) -> None:
        self._builds.shutdown(wait=False, cancel_futures=True)

    # -- inside -----------------------------------------------------------------------------

    def _build(self, content: EnvironmentContent) -> None:
        try:
            self.cache.build(content, self.fetch_file)
        except Exception:
            logger.exception("environment %s: the build could not run", content.content_hash())

    def _definition(
        self, spec: dict[str, Any], principal: Principal, where: str
    ) -> tuple[dict[str, Any], EnvironmentContent]:
        content = content_of(spec, where=where)  # checks everything before any copy is made
        registered = {
            uri: self._registry.register(uri, principal, target=f"{where}.conda_file")
            for uri in content.uploaded_files()
        }
        if not registered:
            return spec, content
        spec = _replace_lines(spec, registered)
        return spec, content_of(spec, where=where)

    def _parse_reference(self, value: str, where: str) -> tuple[str, str | None]:
        return parse_version_reference(
            value,
            _IDS,
            self._scope,
            where,
            what="an environment reference",
            accepted=f"{ACCEPTED_REFERENCES}, or the environment inline.",
        )


def _read(file: Location) -> str:
    return b"".join(file.iter_bytes()).decode("utf-8", errors="replace")


def _replace_lines(spec: dict[str, Any], new: dict[str, str]) -> dict[str, Any]:
    """The definition with each uploaded file's URI replaced by its registered copy's."""
    spec = dict(spec)
    if isinstance(spec.get("requirements"), list):
        spec["requirements"] = [new.get(str(line).strip(), line) for line in spec["requirements"]]
    conda = spec.get("conda_file")
    if isinstance(conda, dict):
        dependencies = []
        for entry in conda.get("dependencies") or []:
            if isinstance(entry, dict) and isinstance(entry.get("pip"), list):
                entry = {**entry, "pip": [new.get(str(p).strip(), p) for p in entry["pip"]]}
            dependencies.append(entry)
        spec["conda_file"] = {**conda, "dependencies": dependencies}
    return spec


__all__ = [
    "ACCEPTED_REFERENCES",
    "ENVIRONMENT_CONTENT",
    "MLFLOW_ENVIRONMENT_PROPERTY",
    "EnvironmentService",
    "PinnedEnvironment",
]
