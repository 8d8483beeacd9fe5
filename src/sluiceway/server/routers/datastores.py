"""Datastores, their files, and the record of finished local uploads."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from sluiceway.auth.policy import Action
from sluiceway.schemas.assets import UploadRecord
from sluiceway.schemas.datastores import DatastoreCreate, DatastoreOut
from sluiceway.server.access import ANY_IDENTITY, allowed
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.openapi import also_200
from sluiceway.services.datastores import storage_call
from sluiceway.storage.locations import Location

router = APIRouter(tags=["datastores"])

SPOOL_BYTES = 8 << 20


@router.get("/datastores", openapi_extra=ANY_IDENTITY)
def list_datastores(ws: WorkspaceDep, caller: PrincipalDep) -> list[DatastoreOut]:
    """The datastores the caller may read."""
    return ws.datastores.list_all(caller)


@router.get("/datastores/{name}", dependencies=[allowed(Action.READ, datastore="name")])
def get_datastore(name: str, ws: WorkspaceDep) -> DatastoreOut:
    return ws.datastores.get(name)


@router.put("/datastores/{name}", status_code=201, responses=also_200(DatastoreOut))
def put_datastore(
    name: str, body: DatastoreCreate, response: Response, ws: WorkspaceDep, caller: PrincipalDep
) -> DatastoreOut:
    """Register a datastore (201) or replace its settings (200); credentials are never echoed.

    A new datastore needs ``manage`` on the workspace, replacing one ``manage`` on it."""
    out, created = ws.datastores.create_or_update(name, body, caller)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.delete(
    "/datastores/{name}",
    status_code=204,
    dependencies=[allowed(Action.MANAGE, datastore="name")],
)
def delete_datastore(name: str, ws: WorkspaceDep) -> Response:
    """Forget a datastore; the files in it stay."""
    ws.datastores.delete(name)
    return Response(status_code=204)


# File routes answer with the file's bytes, and PUT takes them as its body.
_BYTES = {"schema": {"type": "string", "format": "binary"}}
FILE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file's bytes.", "content": {"application/octet-stream": _BYTES}}
}


@router.put(
    "/datastores/{name}/files/{path:path}",
    dependencies=[allowed(Action.WRITE_DATA, datastore="name")],
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/octet-stream": _BYTES}}
    },
)
async def put_file(
    name: str,
    path: str,
    request: Request,
    ws: WorkspaceDep,
    caller: PrincipalDep,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write one file: the request body is the file's bytes.

    An existing file is replaced only by the identity that wrote it, with ``overwrite=true``
    (409 otherwise); the same bytes again change nothing. Job folders (``azureml/``) and the
    registry (``azureml-registry/``) of the default datastore are the server's (403), and
    ``LocalUpload/`` is write-once.
    """
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        written, size = await run_in_threadpool(
            ws.files.write, name, path, spool, caller, overwrite=overwrite
        )
    return {"path": written, "size": size}


@router.get(
    "/datastores/{name}/files/{path:path}",
    dependencies=[allowed(Action.READ_DATA, datastore="name")],
    response_class=Response,
    responses=FILE_ANSWER,
)
def get_file(name: str, path: str, ws: WorkspaceDep) -> Response:
    location = ws.datastores.location(name, path)
    return file_response(location)


def file_response(location: Location) -> Response:
    from sluiceway.errors import ResourceNotFoundError

    if not location.path or not storage_call(location.uri, "path", location.is_file):
        raise ResourceNotFoundError(f"No file at {location.uri}.", target="path")
    return StreamingResponse(location.iter_bytes(), media_type="application/octet-stream")


@router.get("/datastores/{name}/list", dependencies=[allowed(Action.READ_DATA, datastore="name")])
def list_files(name: str, ws: WorkspaceDep, path: str = "") -> list[dict[str, Any]]:
    """Files under ``path``, recursively, with paths relative to the datastore's root."""
    location = ws.datastores.location(name, path)
    if not storage_call(location.uri, "path", location.exists):
        return []
    entries = storage_call(location.uri, "path", location.list_files)
    if storage_call(location.uri, "path", location.is_file):
        return [{"path": location.path, "size": entries[0].size}]
    prefix = f"{location.path}/" if location.path else ""
    return [{"path": prefix + e.path, "size": e.size} for e in entries]


@router.get("/uploads/{content_hash}")
def get_upload(
    content_hash: str, ws: WorkspaceDep, caller: PrincipalDep, name: str | None = None
) -> UploadRecord:
    """A finished upload (of that ``name``, if given), if the caller may read the datastore it
    is in."""
    name, path = ws.assets.get_upload(content_hash, caller, name)
    return UploadRecord(name=name, path=path)


@router.put("/uploads/{content_hash}")
def put_upload(
    content_hash: str, body: UploadRecord, ws: WorkspaceDep, caller: PrincipalDep
) -> UploadRecord:
    """Record a finished upload; the caller must be allowed to write where it is."""
    ws.assets.record_upload(content_hash, body.name, body.path, caller)
    return body
