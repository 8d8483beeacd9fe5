"""Jobs: status, progress, outputs and logs; cancel, and rerun of the failed files.

The job service decides who may see and cancel a job: its invoker, and those with ``read jobs``
or ``cancel jobs`` on its endpoint.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import PlainTextResponse

from sluiceway.schemas.jobs import JobFile, JobOut, JobOutputListing
from sluiceway.server.access import ANY_IDENTITY
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.routers.datastores import FILE_ANSWER, file_response
from sluiceway.services.jobs import check_limit

router = APIRouter(tags=["jobs"])


@router.get("/jobs", openapi_extra=ANY_IDENTITY)
def list_jobs(
    ws: WorkspaceDep,
    caller: PrincipalDep,
    endpoint_name: str | None = None,
    deployment_name: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[JobOut]:
    """The newest jobs the caller may read."""
    return ws.jobs.list_all(
        caller,
        endpoint_name=endpoint_name,
        deployment_name=deployment_name,
        status=status,
        limit=check_limit(limit),
    )


@router.get("/jobs/{name}")
def get_job(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> JobOut:
    return ws.jobs.get(name, caller)


@router.get("/jobs/{name}/outputs/{output}")
def list_output(name: str, output: str, ws: WorkspaceDep, caller: PrincipalDep) -> JobOutputListing:
    return ws.jobs.list_output(name, output, caller)


@router.get(
    "/jobs/{name}/outputs/{output}/files/{path:path}",
    response_class=Response,
    responses=FILE_ANSWER,
)
def get_output_file(
    name: str, output: str, path: str, ws: WorkspaceDep, caller: PrincipalDep
) -> Response:
    return file_response(ws.jobs.output_file(name, output, path, caller))


@router.get("/jobs/{name}/logs")
def list_logs(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> list[JobFile]:
    return ws.jobs.list_logs(name, caller)


@router.get("/jobs/{name}/logs/{path:path}", response_class=PlainTextResponse)
def get_log(
    name: str, path: str, ws: WorkspaceDep, caller: PrincipalDep, offset: int = 0
) -> Response:
    """The log file's text from byte ``offset`` on; a client following a log asks again from
    its offset plus the bytes it got."""
    text = ws.jobs.read_log(name, path, caller, offset)
    return Response(text, media_type="text/plain; charset=utf-8")


@router.post("/jobs/{name}/cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel_job(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> JobOut:
    """Cancel a job: a queued one ends ``Canceled`` at once, a running one goes to
    ``CancelRequested`` until its workers are stopped."""
    return ws.jobs.cancel(name, caller)


@router.post("/jobs/{name}/rerun-failed", status_code=status.HTTP_201_CREATED)
def rerun_failed(name: str, ws: WorkspaceDep, principal: PrincipalDep) -> JobOut:
    """A new job over exactly the files that failed in job ``name``."""
    record = ws.jobs.rerun_failed(name, principal)
    ws.job_queued()
    return ws.jobs.job_out(record)
