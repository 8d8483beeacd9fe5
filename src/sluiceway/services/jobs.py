"""Jobs as users see them: the job resource, its progress, outputs and logs; cancelling a job
and rerunning the files that failed in one.

A job belongs to its invoker. Anyone may read and cancel the jobs they started; reading
another identity's job (its resource, outputs and logs) needs ``read jobs`` on the job's
endpoint, and cancelling it ``cancel jobs``. Lists hold only the jobs the caller may read.
"""

from __future__ import annotations

import copy
import json
import posixpath
import uuid
from typing import Any

from sluiceway.auth.policy import Action, endpoint_scope
from sluiceway.auth.principals import Principal
from sluiceway.clock import utcnow
from sluiceway.errors import ConflictError, ResourceNotFoundError, ValidationError
from sluiceway.scheduler.commit import COMMIT_RECORD
from sluiceway.schemas.common import DEFAULT_DATASTORE, CreationContext, WorkspaceScope
from sluiceway.schemas.jobs import (
    JobError,
    JobFile,
    JobIO,
    JobOut,
    JobOutputListing,
    JobProgress,
    JobStatus,
    MiniBatchStatus,
)
from sluiceway.services.data_access import require_read, require_write
from sluiceway.services.datastores import DatastoreService, storage_call
from sluiceway.services.invoke import job_folder
from sluiceway.services.steps import describe_steps
from sluiceway.storage.locations import FileEntry, Location
from sluiceway.storage.paths import check_relative_path
from sluiceway.storage.redaction import redact_url
from sluiceway.store.jobs import (
    JobRecord,
    JobStore,
    JobVisibility,
    MiniBatchCounts,
    MiniBatchSpan,
)
from sluiceway.store.steps import StepStore

ERRORS_FILE = "errors.jsonl"

_REST_TYPES = {
    "uri_folder": "UriFolder",
    "uri_file": "UriFile",
    "literal": "Literal",
    "custom_model": "CustomModel",
    "mlflow_model": "MLFlowModel",
}
_PROVISIONING = {"Completed": "Succeeded", "Failed": "Failed", "Canceled": "Canceled"}


class JobService:
    def __init__(
        self,
        store: JobStore,
        datastores: DatastoreService,
        scope: WorkspaceScope,
        base_url: str,
        *,
        steps: StepStore | None = None,
    ) -> None:
        self._store = store
        self._steps = steps  # a pipeline job's steps
        self._datastores = datastores
        self._scope = scope
        self._base_url = base_url.rstrip("/")

    def record(self, name: str) -> JobRecord:
        record = self._store.get(name)
        if record is None:
            raise ResourceNotFoundError(f"Job {name!r} does not exist.", target="job")
        return record

    def readable(self, name: str, principal: Principal) -> JobRecord:
        """The job, if ``principal`` started it or may read the jobs of its endpoint.

        Raises:
            ResourceNotFoundError: there is no such job.
            PermissionDeniedError: it is another identity's job, and the caller may not read
                the jobs of its endpoint.
        """
        record = self.record(name)
        if record.invoker_id != principal.id:
            principal.require(
                Action.READ_JOBS,
                endpoint_scope(record.endpoint_name),
                what=f"job {name!r}, started by another identity",
            )
        return record

    def get(self, name: str, principal: Principal) -> JobOut:
        return self.job_out(self.readable(name, principal))

    def list_all(
        self,
        principal: Principal,
        *,
        endpoint_name: str | None = None,
        deployment_name: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[JobOut]:
        """The newest jobs ``principal`` may read: its own, and those of the endpoints on
        which it may read jobs."""
        endpoints = principal.grants.scopes_allowing(Action.READ_JOBS, "endpoint")
        visible = None if endpoints is None else JobVisibility(principal.id, frozenset(endpoints))
        records = self._store.list_all(
            endpoint_name=endpoint_name,
            deployment_name=deployment_name,
            status=status,
            limit=limit,
            visible=visible,
        )
        return [self.job_out(r) for r in records]

    # -- cancel and rerun -------------------------------------------------------------------

    def cancel(self, name: str, principal: Principal) -> JobOut:
        """Cancel a job: a queued one ends ``Canceled`` at once; a running one goes to
        ``CancelRequested`` and its scheduler stops its workers and ends it ``Canceled``.
        Cancelling a canceled job again changes nothing.

        Raises:
            ResourceNotFoundError: there is no such job.
            PermissionDeniedError: it is another identity's job, and the caller may not cancel
                the jobs of its endpoint.
            ConflictError: the job already ended ``Completed`` or ``Failed``.
        """
        found = self.record(name)
        if found.invoker_id != principal.id:
            principal.require(
                Action.CANCEL_JOBS,
                endpoint_scope(found.endpoint_name),
                what=f"job {name!r}, started by another identity",
            )
        record = self._store.request_cancel(name)
        if record is None:
            raise ResourceNotFoundError(f"Job {name!r} does not exist.", target="job")
        if record.status in (JobStatus.COMPLETED, JobStatus.FAILED):
            raise ConflictError(
                f"Job {name!r} already ended {record.status.value}; only a job that has not "
                "ended can be canceled.",
                target="name",
            )
        return self.job_out(record)

    def rerun_failed(self, name: str, principal: Principal) -> JobRecord:
        """Queue a new job over exactly the files that failed in job ``name``: the same input,
        deployment (as the job ran it) and settings, with its outputs in the new job's own
        default location.

        The caller must be allowed to read the job, to invoke its endpoint and to read its
        input, as if it invoked the endpoint on those files itself.

        Raises:
            ResourceNotFoundError: there is no such job.
            PermissionDeniedError: the caller may not read the job, invoke its endpoint or
                read its input.
            ConflictError: the job has not ended, or no file failed in it.
            ValidationError: the job is not a model deployment's job.
        """
        record = self.readable(name, principal)
        principal.require(
            Action.INVOKE, endpoint_scope(record.endpoint_name), what=f"a rerun of job {name!r}"
        )
        if not record.status.is_terminal:
            raise ConflictError(
                f"Job {name!r} is {record.status.value}; rerun its failed files once it has ended.",
                target="name",
            )
        if record.spec.get("kind") != "model" or len(record.spec.get("inputs", {})) != 1:
            raise ValidationError(
                f"Job {name!r} is not a model deployment's job; only the failed files of a "
                "model deployment's job can be rerun.",
                target="name",
            )
        failed = self._store.mini_batches(name, MiniBatchStatus.FAILED)
        files = [f for m in failed for f in m.files]
        if not files:
            raise ConflictError(
                f"No file failed in job {name!r} (it ended {record.status.value}); there is "
                "nothing to rerun.",
                target="name",
            )
        new_name = str(uuid.uuid4())
        spec = copy.deepcopy(record.spec)
        ((input_name, input_spec),) = spec["inputs"].items()
        require_read(
            principal, self._datastores.stored_location(input_spec), f"input {input_name!r}"
        )
        for output in spec["outputs"]:
            require_write(principal, DEFAULT_DATASTORE, f"output {output!r}")
        input_spec["files"] = files
        folder = job_folder(new_name)
        spec["outputs"] = {
            output: {
                "name": output,
                "type": "uri_folder",
                "uri": f"azureml://datastores/{DEFAULT_DATASTORE}/paths/{folder}/{output}/",
                "datastore": DEFAULT_DATASTORE,
                "path": f"{folder}/{output}",
                "file_name": value["file_name"],
            }
            for output, value in spec["outputs"].items()
        }
        spec["job_folder"] = {"datastore": DEFAULT_DATASTORE, "path": folder}
        spec["rerun_of"] = name
        return self._store.create(
            new_name,
            endpoint_name=record.endpoint_name,
            deployment_name=record.deployment_name,
            spec=spec,
            invoker=principal.name,
            invoker_id=principal.id,
            experiment_name=record.experiment_name,
        )

    def timeline(self, name: str, principal: Principal) -> list[MiniBatchSpan]:
        """The job's mini-batches, with the worker and times of their latest attempt."""
        return self._store.spans(self.readable(name, principal).name)

    # -- outputs and logs -------------------------------------------------------------------

    def _output_location(self, record: JobRecord, output: str, principal: Principal) -> Location:
        """Where the job's output is, if ``principal`` may read the data there: reading a job
        does not, by itself, read the datastores its outputs went to.

        Raises:
            ResourceNotFoundError: the job has no such output.
            PermissionDeniedError: the caller may not read data in the output's datastore.
        """
        spec = record.spec.get("outputs", {}).get(output)
        if spec is None:
            known = ", ".join(record.spec.get("outputs", {})) or "none"
            raise ResourceNotFoundError(
                f"Job {record.name!r} has no output {output!r}; its outputs: {known}.",
                target="output",
            )
        location = self._datastores.location(spec["datastore"], spec["path"])
        require_read(principal, location, f"output {output!r} of job {record.name!r}")
        return location

    def _output_files(self, record: JobRecord, output: str, location: Location) -> set[str] | None:
        """The files of an output that is not a whole folder of its own, relative to its
        folder; None when every file below the folder is the output's.

        A ``uri_file`` output is its one file. An output whose folder is a datastore's root
        (which invocations no longer accept) is the files its job committed there, as the
        job's commit record lists them: never the whole datastore.
        """
        spec = record.spec["outputs"][output]
        if spec.get("type") == "uri_file":
            return {str(spec["file_name"])}
        if location.path:
            return None
        folder = record.spec.get("job_folder")
        if not folder:
            return set()
        commit = self._datastores.location(folder["datastore"], folder["path"]).child(COMMIT_RECORD)
        if not storage_call(commit.uri, "output", commit.is_file):
            return set()
        with commit.open_read() as fh:
            committed = json.loads(fh.read())
        if committed.get("output") != location.uri:
            return set()
        return {str(f) for f in committed.get("files", [])} | {ERRORS_FILE}

    def list_output(self, name: str, output: str, principal: Principal) -> JobOutputListing:
        record = self.readable(name, principal)
        location = self._output_location(record, output, principal)

        def own_files() -> list[JobFile]:
            if not location.exists():
                return []
            allowed = self._output_files(record, output, location)
            if allowed is None:
                return [JobFile(path=e.path, size=e.size) for e in location.list_files()]
            entries = []
            for relative in sorted(allowed):
                target = location.child(relative)
                if target.is_file():
                    entries += [FileEntry(relative, e.size) for e in target.list_files()]
            return [JobFile(path=e.path, size=e.size) for e in entries]

        files = storage_call(location.uri, output, own_files)
        return JobOutputListing(output_name=output, uri=location.uri, files=files)

    def output_file(self, name: str, output: str, path: str, principal: Principal) -> Location:
        record = self.readable(name, principal)
        location = self._output_location(record, output, principal)
        relative, _ = check_relative_path(path)
        allowed = self._output_files(record, output, location)
        if allowed is not None and relative not in allowed:
            raise ResourceNotFoundError(
                f"No file {path!r} in output {output!r} of job {name!r}.", target="path"
            )
        return self._file_in(location, path)

    def _logs_location(self, record: JobRecord) -> Location:
        folder = record.spec.get("job_folder")
        if not folder:
            raise ResourceNotFoundError(f"Job {record.name!r} has no logs.", target="job")
        return self._datastores.location(
            folder["datastore"], posixpath.join(folder["path"], "logs")
        )

    def list_logs(self, name: str, principal: Principal) -> list[JobFile]:
        location = self._logs_location(self.readable(name, principal))
        if not storage_call(location.uri, "logs", location.exists):
            return []
        entries = storage_call(location.uri, "logs", location.list_files)
        return [JobFile(path=e.path, size=e.size) for e in entries]

    def read_log(
        self, name: str, path: str, principal: Principal, offset: int = 0, limit: int = -1
    ) -> bytes:
        """A log file's bytes from ``offset`` on (empty past its end), at most ``limit`` of them
        when it is not negative, so a client that follows a log fetches only what was added.

        Raises:
            ValidationError: ``offset`` is negative.
            ResourceNotFoundError: no such job or log file.
            PermissionDeniedError: the caller may not read the job.
        """
        if offset < 0:
            raise ValidationError(
                f"offset {offset} is not valid: give a byte offset of 0 or more.", target="offset"
            )
        folder = self._logs_location(self.readable(name, principal))
        target = self._file_in(folder, path)

        def read() -> bytes:
            with target.open_read() as fh:
                fh.seek(offset)
                data: bytes = fh.read(limit)
            return data

        return storage_call(target.uri, "path", read)

    def _file_in(self, folder: Location, path: str) -> Location:
        relative, _ = check_relative_path(path)
        target = folder.child(relative)
        if not relative or not storage_call(target.uri, "path", target.is_file):
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

    def status_detail(self, record: JobRecord, counts: MiniBatchCounts) -> str | None:
        """A sentence on how the job stands, beyond its status: failed files, a cancel."""
        status = record.status
        if status is JobStatus.CANCEL_REQUESTED:
            return "A cancel was requested; the job's workers are being stopped."
        if status is JobStatus.CANCELED:
            return "The job was canceled; nothing was committed to its outputs."
        if status is JobStatus.FAILED and record.error:
            return str(record.error.get("message") or "") or None
        if not counts.failed:
            return None
        where = ERRORS_FILE
        output = next(iter(record.spec.get("outputs", {}).values()), None)
        if output is not None and "datastore" in output and status.is_terminal:
            location = self._datastores.location(output["datastore"], output["path"])
            where = location.child(ERRORS_FILE).uri
        verb = "failed" if status.is_terminal else "have failed so far"
        detail = (
            f"{counts.items_failed} of {counts.items_total} files {verb} after their last "
            f"retry ({counts.failed} mini-batches); they are listed in {where} and in the "
            f"job's logs/{ERRORS_FILE}."
        )
        failed = self._store.mini_batches(record.name, MiniBatchStatus.FAILED)
        first = failed[0].error if failed else None
        if first and first.get("type"):
            detail += f" First error: {first['type']}: {first.get('message')}"
        return detail

    def created_out(self, record: JobRecord) -> JobOut:
        """A job just queued, as the REST API shows it: it has no mini-batches yet."""
        return self.job_out(record, MiniBatchCounts())

    def job_out(self, record: JobRecord, counts: MiniBatchCounts | None = None) -> JobOut:
        """The job as the REST API shows it; ``counts`` when known (a job just created has
        no mini-batches yet), else read from the store."""
        spec = record.spec
        inputs = {
            name: JobIO(
                type=i["type"],
                path=redact_url(i.get("uri")),
                value=i.get("value"),
                mode=i.get("mode"),
            )
            for name, i in spec.get("inputs", {}).items()
        }
        outputs = {
            name: JobIO(type=o["type"], path=self._output_uri(o), mode=o.get("mode"))
            for name, o in spec.get("outputs", {}).items()
        }
        link = f"{self._base_url}/ui/jobs/{record.name}"  # the studio's job page
        if counts is None:
            counts = self._store.counts(record.name)
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
        if spec.get("rerun_of"):
            properties["rerunOf"] = spec["rerun_of"]
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
            progress=self.progress(record, counts),
            status_detail=self.status_detail(record, counts),
            steps=(
                describe_steps(spec, self._steps.steps(record.name))
                if self._steps is not None and spec.get("kind") == "pipeline"
                else []
            ),
            error=error,
            creation_context=CreationContext(
                created_at=record.created_at, created_by=record.invoker
            ),
            start_time=record.started_at,
            end_time=record.ended_at,
            services={"Studio": {"endpoint": link}},
            properties=properties,
            compute=(spec.get("compute") or {}).get("name"),
            runs_on=(spec.get("compute") or {}).get("runs_on"),
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
