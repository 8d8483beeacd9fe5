"""Studio pages of jobs: the filtered list with live statuses, and a job's page, whose progress,
timeline, steps, errors, outputs and logs update while it runs (htmx polls fragments of it).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from sluiceway.auth.policy import Action, endpoint_scope
from sluiceway.clock import utcnow
from sluiceway.errors import ResourceNotFoundError, SluicewayError
from sluiceway.schemas.jobs import JobOut, JobStatus
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.routers.datastores import file_response
from sluiceway.server.ui.render import SECURITY_HEADERS, StudioRoute, page
from sluiceway.server.ui.session import FormDep, Viewer, ViewerDep

router = APIRouter(route_class=StudioRoute, include_in_schema=False)

OVERVIEW_LOG = "job_progress_overview.txt"
ERRORS_LOG = "errors.jsonl"
MAX_ERRORS = 200
MAX_FILES = 500
MAX_LOG_CHUNK = 256 << 10
_DATASTORE_URI = re.compile(r"azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)")


def datastore_link(uri: str | None) -> str | None:
    """The studio page of the datastore folder an ``azureml://datastores/...`` URI names."""
    match = _DATASTORE_URI.fullmatch(uri or "")
    if match is None:
        return None
    return f"/ui/datastores/{quote(match['ds'])}?path={quote(match['path'].strip('/'))}"


# -- the list ---------------------------------------------------------------------------------


def _filtered(
    ws: WorkspaceDep, who: Viewer, endpoint: str, status: str, invoker: str
) -> list[JobOut]:
    jobs = ws.jobs.list_all(
        who.principal, endpoint_name=endpoint or None, status=status or None, limit=200
    )
    if invoker:
        jobs = [j for j in jobs if j.creation_context and j.creation_context.created_by == invoker]
    return jobs


def _list_context(
    ws: WorkspaceDep, who: Viewer, endpoint: str, status: str, invoker: str
) -> dict[str, Any]:
    jobs = _filtered(ws, who, endpoint, status, invoker)
    query = "&".join(
        f"{k}={quote(v)}"
        for k, v in (("endpoint", endpoint), ("status", status), ("invoker", invoker))
        if v
    )
    return {
        "viewer": who,
        "nav": "jobs",
        "jobs": jobs,
        "live": any(not j.status.is_terminal for j in jobs),
        "query": query,
        "filters": {"endpoint": endpoint, "status": status, "invoker": invoker},
        "statuses": [s.value for s in JobStatus],
        "endpoints": [e.name for e in ws.endpoints.list_all(who.principal)],
    }


@router.get("/ui/jobs")
def jobs_page(
    request: Request,
    ws: WorkspaceDep,
    who: ViewerDep,
    endpoint: str = "",
    status: str = "",
    invoker: str = "",
) -> Response:
    return page(request, "jobs.html", _list_context(ws, who, endpoint, status, invoker))


@router.get("/ui/jobs/rows")
def job_rows(
    request: Request,
    ws: WorkspaceDep,
    who: ViewerDep,
    endpoint: str = "",
    status: str = "",
    invoker: str = "",
) -> Response:
    return page(request, "_job_rows.html", _list_context(ws, who, endpoint, status, invoker))


# -- a job ------------------------------------------------------------------------------------


def _errors(ws: WorkspaceDep, who: Viewer, name: str) -> list[dict[str, Any]]:
    try:
        text = ws.jobs.read_log(name, ERRORS_LOG, who.principal).decode("utf-8", "replace")
    except SluicewayError:
        return []
    rows = []
    for line in text.splitlines()[:MAX_ERRORS]:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            rows.append(item)
    return rows


def _timeline(ws: WorkspaceDep, who: Viewer, job: JobOut) -> dict[str, Any] | None:
    """Mini-batches per worker, laid out on a time axis (SVG coordinates, in per cent)."""
    spans = [s for s in ws.jobs.timeline(job.name, who.principal) if s.started_at is not None]
    if not spans:
        return None
    start = min(s.started_at for s in spans if s.started_at is not None)
    now = utcnow()
    end = max((s.ended_at or now) for s in spans)
    total = max((end - start).total_seconds(), 0.001)
    # A mini-batch shows the worker that ran it once it has ended; while it runs, where the
    # scheduler sent it (the pool). Bars of one name that overlap in time go to lanes of their
    # own.
    lanes: dict[str, list[dict[str, Any]]] = {}
    ends: dict[str, list[float]] = {}
    for s in sorted(spans, key=lambda span: (span.worker or "?", span.started_at or start)):
        assert s.started_at is not None
        began = (s.started_at - start).total_seconds()
        finished = ((s.ended_at or now) - start).total_seconds()
        worker = s.worker or "?"
        free = ends.setdefault(worker, [])
        slot = next((i for i, end in enumerate(free) if end <= began + 0.01), len(free))
        if slot == len(free):
            free.append(finished)
        free[slot] = finished
        lanes.setdefault(f"{worker} {slot + 1}", []).append(
            {
                "index": s.index,
                "status": s.status.value,
                "attempts": s.attempts,
                "x": round(began / total * 100, 2),
                "width": max(round((finished - began) / total * 100, 2), 0.4),
                "seconds": round(finished - began, 1),
            }
        )
    return {"lanes": lanes, "seconds": round(total, 1)}


def _graph(ws: WorkspaceDep, who: Viewer, job: JobOut) -> dict[str, Any] | None:
    """A pipeline job's steps as a layered graph: columns by dependency depth."""
    if not job.steps:
        return None
    record = ws.jobs.readable(job.name, who.principal)
    depends = {
        str(step["name"]): [str(d) for d in step.get("depends_on", [])]
        for step in record.spec.get("steps", [])
    }
    depth: dict[str, int] = {}
    for step in job.steps:  # dependency order
        depth[step.name] = 1 + max(
            (depth.get(d, 0) for d in depends.get(step.name, [])), default=-1
        )
    columns: dict[int, list[str]] = {}
    for step in job.steps:
        columns.setdefault(depth[step.name], []).append(step.name)
    width, height, gap_x, gap_y = 150, 44, 60, 20
    nodes = {}
    for column, names in columns.items():
        for row, name in enumerate(names):
            nodes[name] = {"x": 10 + column * (width + gap_x), "y": 10 + row * (height + gap_y)}
    status = {s.name: s.status.value for s in job.steps}
    edges = [
        {
            "x1": nodes[d]["x"] + width,
            "y1": nodes[d]["y"] + height // 2,
            "x2": nodes[n]["x"],
            "y2": nodes[n]["y"] + height // 2,
        }
        for n, ds in depends.items()
        if n in nodes
        for d in ds
        if d in nodes
    ]
    return {
        "nodes": [
            {"name": n, "status": status.get(n, "NotStarted"), **xy} for n, xy in nodes.items()
        ],
        "edges": edges,
        "node_width": width,
        "node_height": height,
        "width": 20 + len(columns) * (width + gap_x),
        "height": 20 + max(len(c) for c in columns.values()) * (height + gap_y),
    }


def _outputs(ws: WorkspaceDep, who: Viewer, job: JobOut) -> list[dict[str, Any]]:
    outputs = []
    for name, output in job.outputs.items():
        files: list[Any] = []
        if job.status is JobStatus.COMPLETED:
            try:
                files = ws.jobs.list_output(job.name, name, who.principal).files[:MAX_FILES]
            except SluicewayError:
                files = []
        outputs.append(
            {"name": name, "io": output, "link": datastore_link(output.path), "files": files}
        )
    return outputs


def _live_context(ws: WorkspaceDep, who: Viewer, name: str) -> dict[str, Any]:
    job = ws.jobs.get(name, who.principal)
    scope = endpoint_scope(job.endpoint_name)
    mine = bool(job.creation_context and job.creation_context.created_by == who.name)
    progress = job.progress
    done = progress.mini_batches_succeeded + progress.mini_batches_failed
    try:
        logs = [f.path for f in ws.jobs.list_logs(name, who.principal)]
    except SluicewayError:
        logs = []
    return {
        "viewer": who,
        "job": job,
        "done": done,
        "percent": round(done / progress.mini_batches_total * 100)
        if progress.mini_batches_total
        else 0,
        "can_cancel": not job.status.is_terminal
        and job.status is not JobStatus.CANCEL_REQUESTED
        and (mine or who.can(Action.CANCEL_JOBS, scope)),
        "can_rerun": job.status.is_terminal
        and progress.items_failed > 0
        and not job.steps
        and who.can(Action.INVOKE, scope),
        "errors": _errors(ws, who, name),
        "timeline": _timeline(ws, who, job),
        "graph": _graph(ws, who, job),
        "outputs": _outputs(ws, who, job),
        "logs": logs,
        "inputs": {k: {"io": v, "link": datastore_link(v.path)} for k, v in job.inputs.items()},
    }


@router.get("/ui/jobs/{name}")
def job_page(
    name: str, request: Request, ws: WorkspaceDep, who: ViewerDep, log: str = ""
) -> Response:
    context = _live_context(ws, who, name)
    logs: list[str] = context["logs"]
    chosen = log if log in logs else (OVERVIEW_LOG if OVERVIEW_LOG in logs else "")
    if not chosen and logs:
        chosen = logs[0]
    return page(
        request,
        "job.html",
        {**context, "nav": "jobs", "log": chosen or OVERVIEW_LOG},
    )


@router.get("/ui/jobs/{name}/live")
def job_live(name: str, request: Request, ws: WorkspaceDep, who: ViewerDep) -> Response:
    return page(request, "_job_live.html", _live_context(ws, who, name))


@router.get("/ui/jobs/{name}/log")
def job_log(
    name: str, request: Request, ws: WorkspaceDep, who: ViewerDep, path: str, offset: int = 0
) -> Response:
    """What a log file gained since ``offset``, and the poller that asks for more while the job
    runs: the page appends it below what it has."""
    ended = ws.jobs.get(name, who.principal).status.is_terminal
    try:
        data = ws.jobs.read_log(name, path, who.principal, offset, limit=MAX_LOG_CHUNK)
    except ResourceNotFoundError:
        data = b""
    more = len(data) == MAX_LOG_CHUNK
    if not ended and not more:
        data = data[: data.rfind(b"\n") + 1]  # whole lines only, while it grows
    return page(
        request,
        "_log_chunk.html",
        {
            "job": name,
            "path": path,
            "text": data.decode("utf-8", "replace"),
            "offset": offset + len(data),
            "follow": not ended or more,
            "more": more,
        },
    )


@router.get("/ui/jobs/{name}/outputs/{output}/files/{path:path}")
def download_output(
    name: str, output: str, path: str, ws: WorkspaceDep, who: ViewerDep
) -> Response:
    response = file_response(ws.jobs.output_file(name, output, path, who.principal))
    filename = path.rsplit("/", 1)[-1]
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return response


@router.post("/ui/jobs/{name}/cancel")
def cancel_job(name: str, ws: WorkspaceDep, who: ViewerDep, _: FormDep) -> Response:
    job = ws.jobs.cancel(name, who.principal)
    return RedirectResponse(f"/ui/jobs/{job.name}", status_code=303, headers=SECURITY_HEADERS)


@router.post("/ui/jobs/{name}/rerun-failed")
def rerun_failed(name: str, ws: WorkspaceDep, who: ViewerDep, _: FormDep) -> Response:
    record = ws.jobs.rerun_failed(name, who.principal)
    ws.job_queued()
    return RedirectResponse(f"/ui/jobs/{record.name}", status_code=303, headers=SECURITY_HEADERS)
