"""Jobs: status, progress, outputs and logs."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from sluiceway.schemas.jobs import JobFile, JobOut, JobOutputListing
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.routers.datastores import file_response
from sluiceway.services.jobs import check_limit

router = APIRouter(tags=["jobs"])


@router.get("/jobs")
def list_jobs(
    ws: WorkspaceDep,
    endpoint_name: str | None = None,
    deployment_name: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[JobOut]:
    return ws.jobs.list_all(
        endpoint_name=endpoint_name,
        deployment_name=deployment_name,
        status=status,
        limit=check_limit(limit),
    )


@router.get("/jobs/{name}")
def get_job(name: str, ws: WorkspaceDep) -> JobOut:
    return ws.jobs.get(name)


@router.get("/jobs/{name}/outputs/{output}")
def list_output(name: str, output: str, ws: WorkspaceDep) -> JobOutputListing:
    return ws.jobs.list_output(name, output)


@router.get("/jobs/{name}/outputs/{output}/files/{path:path}")
def get_output_file(name: str, output: str, path: str, ws: WorkspaceDep) -> Response:
    return file_response(ws.jobs.output_file(name, output, path))


@router.get("/jobs/{name}/logs")
def list_logs(name: str, ws: WorkspaceDep) -> list[JobFile]:
    return ws.jobs.list_logs(name)


@router.get("/jobs/{name}/logs/{path:path}")
def get_log(name: str, path: str, ws: WorkspaceDep) -> PlainTextResponse:
    location = ws.jobs.log_file(name, path)
    with location.open_read() as fh:
        return PlainTextResponse(fh.read().decode("utf-8", errors="replace"))
