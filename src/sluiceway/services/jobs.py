"""Jobs as users see them: the job resource, its progress, outputs and logs."""

from __future__ import annotations

import posixpath
from typing import Any

from sluiceway.clock import utcnow
from sluiceway.errors import ResourceNotFoundError, ValidationError
from sluiceway.schemas.common import CreationContext, WorkspaceScope
from sluiceway.schemas.jobs import JobError, JobFile, JobIO, JobOut, JobOutputListing, JobProgress
from sluiceway.services.datastores import DatastoreService
from sluiceway.storage.locations import Location
from sluiceway.storage.references import normalise_datastore_path
from sluiceway.store.jobs import JobRecord, JobStore, MiniBatchCounts

_REST_TYPES = {"uri_folder": "UriFolder", "uri_file": "UriFile", "literal": "Literal"}
_PROVISIONING = {"Completed": "Succeeded", "Failed": "Failed", "Canceled": "Canceled"}


class JobService:
    def __init__(
        self, store: JobStore, datastores: DatastoreService, scope: WorkspaceScope, base_url: str
    ) -> None:
        self._store = store
        self._datastores = datastores
        self._scope = scope
        self._base_url = base_url.rstrip("/")

    def record(self, name: str) -> JobRecord:
        record = self._store.get(name)
        if record is None:
            raise ResourceNotFoundError(f"Job {name!r} does not exist.", target="job")
        return record

    def get(self, name: str) -> JobOut:
        return self.job_out(self.record(name))

    def list_all(
        self,
        *,
        endpoint_name: str | None = None,
        deployment_name: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[JobOut]:
        records = self._store.list_all(
            endpoint_name=endpoint_name,
            deployment_name=deployment_name,
            status=status,
            limit=limit,
        )
        return [self.job_out(r) for r in records]

    # -- outputs and logs -------------------------------------------------------------------

    def output_location(self, name: str, output: str) -> Location:
        record = self.record(name)
        spec = record.spec.get("outputs", {}).get(output)
        if spec is None:
            known = ", ".join(record.spec.get("outputs", {})) or "none"
            raise ResourceNotFoundError(
                f"Job {name!r} has no output {output!r}; its outputs: {known}.", target="output"
            )
        return self._datastores.location(spec["datastore"], spec["path"])

    def list_output(self, name: str, output: str) -> JobOutputListing:
        location = self.output_location(name, output)
        record = self.record(name)
        spec = record.spec["outputs"][output]
        files = self._own_files(location, spec) if location.exists() else []
        return JobOutputListing(output_name=output, uri=location.uri, files=files)

    def _own_files(self, location: Location, spec: dict[str, Any]) -> list[JobFile]:
        """A uri_file output is its one file; a folder lists everything in it."""
        if spec.get("type") == "uri_file":
            target = location.child(spec["file_name"])
            if not target.is_file():
                return []
            return [JobFile(path=e.path, size=e.size) for e in target.list_files()]
        return [JobFile(path=e.path, size=e.size) for e in location.list_files()]

    def output_file(self, name: str, output: str, path: str) -> Location:
        return self._file_in(self.output_location(name, output), path)

    def logs_location(self, name: str) -> Location:
        folder = self.record(name).spec.get("job_folder")
        if not folder:
            raise ResourceNotFoundError(f"Job {name!r} has no logs.", target="job")
        return self._datastores.location(
            folder["datastore"], posixpath.join(folder["path"], "logs")
        )

    def list_logs(self, name: str) -> list[JobFile]:
        location = self.logs_location(name)
        if not location.exists():
            return []
        return [JobFile(path=e.path, size=e.size) for e in location.list_files()]

    def log_file(self, name: str, path: str) -> Location:
        return self._file_in(self.logs_location(name), path)

    def _file_in(self, folder: Location, path: str) -> Location:
        relative, _ = normalise_datastore_path(path)
        target = folder.child(relative)
        if not relative or not target.is_file():
            raise ResourceNotFoundError(f"No file {path!r} in {folder.uri}.", target="path")
        return target

    # -- the resource -----------------------------------------------------------------------

    def progress(self, record: JobRecord, counts: MiniBatchCounts) -> JobProgress:
        elapsed = None
        rate = None
        eta = None
        if record.started_at is not None:
            end = record.ended_at or utcnow()
            elapsed = max((end - record.started_at).total_seconds(), 0.0)
            done = counts.succeeded + counts.failed
            if elapsed > 0 and counts.items_succeeded:
                rate = counts.items_succeeded / elapsed
            if done and counts.total and not record.status.is_terminal and elapsed > 0:
                eta = elapsed / done * (counts.total - done)
        return JobProgress(
            mini_batches_total=counts.total,
            mini_batches_pending=counts.pending,
            mini_batches_running=counts.running,
            mini_batches_succeeded=counts.succeeded,
            mini_batches_failed=counts.failed,
            mini_batches_retried=counts.retried,
            items_total=counts.items_total,
            items_succeeded=counts.items_succeeded,
            items_failed=counts.items_failed,
            started_at=record.started_at,
            elapsed_seconds=elapsed,
            items_per_second=rate,
            eta_seconds=eta,
        )

    def job_out(self, record: JobRecord) -> JobOut:
        spec = record.spec
        inputs = {
            name: JobIO(type=i["type"], path=i.get("uri"), value=i.get("value"), mode=i.get("mode"))
            for name, i in spec.get("inputs", {}).items()
        }
        outputs = {
            name: JobIO(type=o["type"], path=self._output_uri(o), mode=o.get("mode"))
            for name, o in spec.get("outputs", {}).items()
        }
        link = f"{self._base_url}/jobs/{record.name}"
        error = JobError.model_validate(record.error) if record.error else None
        properties: dict[str, Any] = {
            "status": record.status.value,
            "provisioningState": _PROVISIONING.get(record.status.value, "InProgress"),
            "InputData": {
                name: (
                    {"JobInputType": "Literal", "Value": i.value}
                    if i.type == "literal"
                    else {"JobInputType": _REST_TYPES.get(i.type, i.type), "Uri": i.path}
                )
                for name, i in inputs.items()
            },
            "OutputData": {
                name: {"JobOutputType": _REST_TYPES.get(o.type, o.type), "Uri": o.path}
                for name, o in outputs.items()
            },
            "interactionEndpoints": {"Studio": {"endpoint": link}},
            "properties": spec.get("properties", {}),
        }
        first_output = next(iter(spec.get("outputs", {}).values()), None)
        if first_output is not None:
            properties["output"] = {
                "datastoreId": self._scope.datastore_id(first_output["datastore"]),
                "path": first_output["path"],
            }
        return JobOut(
            id=self._scope.job_id(record.name),
            name=record.name,
            display_name=record.name,
            experiment_name=record.experiment_name,
            status=record.status,
            endpoint_name=record.endpoint_name,
            deployment_name=record.deployment_name,
            inputs=inputs,
            outputs=outputs,
            settings=spec.get("settings", {}),
            progress=self.progress(record, self._store.counts(record.name)),
            error=error,
            creation_context=CreationContext(
                created_at=record.created_at, created_by=record.invoker
            ),
            start_time=record.started_at,
            end_time=record.ended_at,
            services={"Studio": {"endpoint": link}},
            properties=properties,
        )

    @staticmethod
    def _output_uri(output: dict[str, Any]) -> str:
        if output.get("type") == "uri_file":
            return str(output["uri"])
        return f"azureml://datastores/{output['datastore']}/paths/{output['path']}/"


def check_limit(limit: int) -> int:
    if not 1 <= limit <= 1000:
        raise ValidationError(f"limit {limit} is not valid: use 1 to 1000.", target="limit")
    return limit
