"""The data-plane routes azure-ai-ml calls besides invoke (whose ``scoringUri`` is the REST
face's ``POST /endpoints/{name}/jobs``): discovery, run history (details, children, rundata),
resolved output URIs, ``batch_endpoints.list_jobs``, log files and operation status.

The discovery ``api`` is ``<server>/azureml``; the SDK appends ``/history/v1.0{ws}/...``,
``/data/v1.0{ws}/...`` and ``/mferp/managementfrontend{ws}/...`` to it. A batch job is shown
as a pipeline run with one child, ``<job>-batchscoring``, whose outputs are the job's, as
Azure shows one. Log-file links carry a signature instead of a token, since the SDK fetches
them without one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery

from sluiceway.errors import ResourceNotFoundError, ValidationError
from sluiceway.schemas.jobs import JobOut
from sluiceway.server.arm import shapes
from sluiceway.server.arm.management import WORKSPACE_PATH, context
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.workspace import Workspace
from sluiceway.services.signed_access import log_scope

API = "/azureml"
#: The log the SDK prints for a pipeline job with no ``user_logs/std_log*.txt``.
EXECUTION_LOG = "logs/azureml/executionlogs.txt"
#: Sluiceway's own log that it stands for: the job's progress as it runs.
PROGRESS_LOG = "job_progress_overview.txt"

public = APIRouter(prefix=API, tags=["azure ml"], generate_unique_id_function=shapes.operation_id)
router = APIRouter(prefix=API, tags=["azure ml"], generate_unique_id_function=shapes.operation_id)


def _dataplane_target(
    ws: WorkspaceDep,
    subscription: Annotated[str, Path()],
    group: Annotated[str, Path()],
    workspace: Annotated[str, Path()],
) -> None:
    """The workspace in the path is this one (the data plane takes no ARM api-version)."""
    scope = ws.settings.scope
    if not scope.is_named(subscription, group, workspace):
        raise ResourceNotFoundError(
            f"This server serves workspace {scope.prefix}, not the one in the path.",
            target="workspace",
        )


HISTORY = "/history/v1.0" + WORKSPACE_PATH
SCOPED = [Depends(_dataplane_target)]
# A log link's credential: its signature (with ``se``, ``sp`` and the identity it names),
# declared as the route's OpenAPI ``security``; checked by the route.
LOG_SIGNATURE = APIKeyQuery(
    name="sig",
    scheme_name="LogSignature",
    description="The signature of a log link from a run's details (`logFiles`).",
    auto_error=False,
)


@public.get("/discovery")
def discovery(ws: WorkspaceDep) -> JSONResponse:
    """Where the data-plane services are: all of them at ``<server>/azureml``."""
    ctx = context(ws)
    services = ("api", "catalog", "experimentation", "history", "modelmanagement", "pipelines")
    answer: dict[str, str] = {key: ctx.api_url for key in services}
    answer["workspaceId"] = ctx.workspace_id  # for `sluice azure env`
    return JSONResponse(answer)


def _job_of_run(ws: Workspace, run_id: str, caller: Any) -> tuple[JobOut, bool]:
    """The job a run id names, and whether it is the job's batch-scoring child."""
    try:
        return ws.jobs.get(run_id, caller), False
    except ResourceNotFoundError:
        if not run_id.endswith(shapes.CHILD_SUFFIX):
            raise
    return ws.jobs.get(run_id.removesuffix(shapes.CHILD_SUFFIX), caller), True


def _log_files(ws: Workspace, out: JobOut, caller: Any) -> dict[str, str]:
    """Signed links to the job's logs: each under its own name, and the progress log also as
    the execution log the SDK prints."""
    query = ws.signed.log_query(caller, out.name)
    base = f"{context(ws).api_url}/logs/{out.name}"
    files = {
        f"logs/{f.path}": f"{base}/{f.path}?{query}" for f in ws.jobs.list_logs(out.name, caller)
    }
    files[EXECUTION_LOG] = f"{base}/{PROGRESS_LOG}?{query}"
    return files


class FinalLooks:
    """Which finished runs an identity was last told were ``Finalizing``, for
    :func:`run_details`.

    ``jobs.stream`` reads a run's details once, then fetches and prints its logs only inside
    a poll loop that runs while the status is in progress or ``Finalizing``: a job that ended
    before that first read would show no log line. So a finished run answers ``Finalizing``
    once, and its true status to the next look (within :attr:`WINDOW` seconds, longer than
    the SDK's longest poll interval), which the SDK makes after printing the logs: every
    stream of a finished job prints its logs, and a stream that watched the job run polls
    once more and prints its last lines. Kept per process and bounded; with several API
    processes a stream may be told ``Finalizing`` once by each process it reaches."""

    WINDOW = 120.0
    LIMIT = 10_000

    def __init__(self) -> None:
        self._told: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def finalizing(self, key: tuple[str, str, str], terminal: bool) -> bool:
        """Whether to answer ``Finalizing`` for the run ``key`` names, finished or not."""
        now = time.monotonic()
        with self._lock:
            told = self._told.pop(key, None)
            answer = terminal and (told is None or now - told > self.WINDOW)
            if answer:
                self._told[key] = now
                while len(self._told) > self.LIMIT:
                    self._told.popitem(last=False)
        return answer


LOOKS = FinalLooks()


@router.get(HISTORY + "/runs/{run_id}/details", dependencies=SCOPED)
def run_details(run_id: str, ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    """A run's details with signed links to its logs; a finished run is ``Finalizing`` once
    before its true status (see :class:`FinalLooks`), so that ``jobs.stream`` prints its
    logs."""
    out, child = _job_of_run(ws, run_id, caller)
    files = _log_files(ws, out, caller)
    key = (ws.settings.scope.prefix, caller.id, run_id)
    status = "Finalizing" if LOOKS.finalizing(key, out.status.is_terminal) else None
    body = shapes.run(out, run_id, child=child, ctx=context(ws), log_files=files, status=status)
    return JSONResponse(body)


@router.get(HISTORY + "/runs/{run_id}", dependencies=SCOPED)
def get_run(run_id: str, ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    out, child = _job_of_run(ws, run_id, caller)
    return JSONResponse(shapes.run(out, run_id, child=child, ctx=context(ws), log_files={}))


@router.get(HISTORY + "/runs/{run_id}/children", dependencies=SCOPED)
def run_children(run_id: str, ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    out, child = _job_of_run(ws, run_id, caller)
    value = []
    if not child:
        child_id = out.name + shapes.CHILD_SUFFIX
        value.append(shapes.run(out, child_id, child=True, ctx=context(ws), log_files={}))
    return JSONResponse({"value": value, "nextLink": None})


@router.post(HISTORY + "/rundata", dependencies=SCOPED)
def run_data(
    ws: WorkspaceDep, caller: PrincipalDep, body: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    run_id = body.get("runId")
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError("runId: the run to read is needed.", target="runId")
    out, child = _job_of_run(ws, run_id, caller)
    metadata = shapes.run(out, run_id, child=child, ctx=context(ws), log_files={})
    return JSONResponse({"runMetadata": metadata, "runDefinition": None, "jobSpecification": None})


@router.post(
    "/data/v1.0" + WORKSPACE_PATH + "/dataversion/batchGetResolvedUris", dependencies=SCOPED
)
def resolve_uris(
    ws: WorkspaceDep, caller: PrincipalDep, body: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    """The datastore URIs of job outputs named by the asset ids run data gave."""
    values = body.get("values")
    if not isinstance(values, list):
        raise ValidationError("values: a list of asset ids is needed.", target="values")
    ctx = context(ws)
    resolved: dict[str, Any] = {}
    for asset_id in values:
        parsed = shapes.parse_output_asset(str(asset_id))
        if parsed is None:
            raise ValidationError(
                f"Asset id {asset_id!r} is not accepted: only job outputs "
                "(azureml://locations/.../data/azureml_<job>_output_data_<output>/versions/1) "
                "are resolved here.",
                target="values",
            )
        job_name, output = parsed
        out = ws.jobs.get(job_name, caller)
        io = out.outputs.get(output)
        place = shapes.output_datastore_path(io.path if io else None)
        if place is None:
            raise ResourceNotFoundError(
                f"Job {job_name!r} has no output {output!r} in a datastore.", target="values"
            )
        resolved[str(asset_id)] = {
            "type": io.type if io else "uri_folder",
            "uri": ctx.long_uri(*place),
        }
    return JSONResponse({"values": resolved})


@router.get(
    "/mferp/managementfrontend" + WORKSPACE_PATH + "/batchEndpoints/{endpoint}/jobs",
    dependencies=SCOPED,
)
def endpoint_jobs(endpoint: str, ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    """``batch_endpoints.list_jobs``: the endpoint's jobs the caller may read."""
    from sluiceway.auth.policy import Action, endpoint_scope

    caller.require(Action.READ, endpoint_scope(endpoint), what=f"endpoint {endpoint!r}")
    ws.endpoints.endpoint(endpoint)
    jobs = ws.jobs.list_all(caller, endpoint_name=endpoint)
    return JSONResponse({"value": [shapes.batch_job(j) for j in jobs], "nextLink": None})


@router.get("/operations/{resource:path}")
def operation(resource: str, ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    """An ARM create's operation: creates finish at once, so it reports the resource's state."""
    from sluiceway.auth.policy import Action, endpoint_scope

    parts = resource.split("/")
    if len(parts) >= 2:
        caller.require(Action.READ, endpoint_scope(parts[1]), what=f"endpoint {parts[1]!r}")
    if len(parts) == 2 and parts[0] == "batchEndpoints":
        state = ws.endpoints.get(parts[1]).provisioning_state
    elif len(parts) == 4 and parts[0] == "batchEndpoints" and parts[2] == "deployments":
        state = ws.endpoints.get_deployment(parts[1], parts[3]).provisioning_state
    else:
        raise ResourceNotFoundError(f"No operation {resource!r}.", target="operation")
    return JSONResponse({"name": resource, "status": state})


@public.get("/logs/{job}/{path:path}", dependencies=[Security(LOG_SIGNATURE)])
def log_file(job: str, path: str, request: Request, ws: WorkspaceDep) -> Response:
    """A job's log file through a signed link (the SDK sends no token for these)."""
    query = dict(request.query_params)
    caller, _ = ws.signed.principal(query, log_scope(job))
    return Response(ws.jobs.read_log(job, path, caller), media_type="text/plain; charset=utf-8")
