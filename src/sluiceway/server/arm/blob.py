"""A blob-service face over the datastores this server serves (local, S3, and Azure ones served
over plain http, such as an Azurite without TLS, which the SDK cannot reach): the seven
Azure Blob operations azure-ai-ml and azure-storage-blob use for uploads and downloads.

URLs are path-style, ``/azureml/blob/{account}/{container}/{blob}``, where the container is a
datastore's name and ``{account}`` is what the SDK builds from the datastore's
``accountName`` (``<workspace>.blob.local``). Operations: Get Blob Properties (HEAD), Get Blob
(ranged), Put Blob, Put Block, Put Block List, Set Blob Metadata (the SDK's upload
confirmation) and List Blobs, plus Get Container Properties.

A request is authorised by a SAS from the datastore's ``listSecrets`` (signed by this server
for one identity and its own data rights) or by a Sluiceway bearer token; the identity's
roles are checked as on the REST file routes, and writes go through the same file service
(job folders are the server's, ``LocalUpload/`` is write-once). Shared-key signatures are
refused: no account key of this server is ever handed out. Errors have Azure Storage's XML
shape and ``x-ms-error-code``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from email.utils import formatdate
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from sluiceway.auth.policy import Action, datastore_scope
from sluiceway.auth.principals import Principal
from sluiceway.errors import (
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
    ResourceNotFoundError,
    SluicewayError,
    UnsupportedError,
    ValidationError,
)
from sluiceway.schemas.common import DEFAULT_DATASTORE
from sluiceway.server.arm.management import blob_face
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.workspace import Workspace
from sluiceway.services.datastores import storage_call
from sluiceway.services.signed_access import blob_scope, require_permission
from sluiceway.storage.locations import Location
from sluiceway.storage.reserved import UPLOAD_FOLDER

public = APIRouter(prefix="/azureml/blob", include_in_schema=False)

STORAGE_VERSION = "2025-01-05"
SPOOL_BYTES = 8 << 20
_BLOCK_ID = re.compile(r"<(?:Latest|Uncommitted|Committed)>([^<]*)</")
_UPLOAD = re.compile(rf"^{UPLOAD_FOLDER}/(?P<hash>[0-9a-f]{{64}})/(?P<name>[^/]+)(?:/.*)?$")
SUPPORTED = (
    "Get Blob Properties (HEAD), Get Blob (GET, ranged), Put Blob (PUT), Put Block "
    "(PUT comp=block), Put Block List (PUT comp=blocklist), Set Blob Metadata (PUT "
    "comp=metadata, upload confirmation), List Blobs (GET restype=container&comp=list), Get "
    "Container Properties"
)

_CODES = {
    400: "InvalidInput",
    401: "NoAuthenticationInformation",
    403: "AuthorizationFailure",
    404: "BlobNotFound",
    409: "BlobAlreadyExists",
}


def storage_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(
        body,
        status_code=status,
        media_type="application/xml",
        # A refusal may come before the request's body was read: close the connection
        # rather than leave the unread body on it.
        headers={"x-ms-error-code": code, "x-ms-version": STORAGE_VERSION, "Connection": "close"},
    )


def _from(exc: SluicewayError) -> Response:
    status = exc.status_code if exc.status_code < 500 else 400
    code = _CODES.get(status, "InvalidInput")
    if isinstance(exc, AuthenticationError) and "signature" in exc.message.lower():
        status, code = 403, "AuthenticationFailed"
    if isinstance(exc, PermissionDeniedError):
        code = "AuthorizationPermissionMismatch"
    return storage_error(status, code, exc.message)


def _caller(ws: Workspace, request: Request, datastore: str, letter: str, what: str) -> Principal:
    """Who the request acts for, with the right ``letter`` on ``datastore``.

    Raises:
        AuthenticationError: no SAS or token, a shared key, or a bad one.
        PermissionDeniedError: the SAS or the identity's roles do not allow it.
    """
    query = dict(request.query_params)
    authorization = request.headers.get("authorization")
    if "sig" in query:
        caller, grant = ws.signed.principal(query, blob_scope(datastore))
        require_permission(grant, letter, what)
    elif authorization and authorization.lower().startswith("bearer "):
        caller = ws.authenticate(authorization)
    elif authorization:
        raise AuthenticationError(
            "Shared-key signatures are not accepted by Sluiceway's blob face: use the SAS the "
            "datastore's listSecrets answers, or a bearer token."
        )
    else:
        raise AuthenticationError(
            "A SAS (from the datastore's listSecrets) or a bearer token is needed."
        )
    action = Action.READ_DATA if letter in "rl" else Action.WRITE_DATA
    caller.require(action, datastore_scope(datastore), what=what)
    return caller


def _location(ws: Workspace, datastore: str, blob: str) -> Location:
    out = ws.datastores.get(datastore)
    if not blob_face(out):
        raise UnsupportedError(
            f"Datastore {datastore!r} is in Azure storage served over https; reach it there "
            "(with the SAS of its listSecrets), not through this server's blob face (which "
            "serves local, S3 and plain-http Azure datastores).",
            target="container",
        )
    return ws.datastores.location(datastore, blob)


def _headers(location: Location, size: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    mtime = None
    local = location.local_path()
    if local is not None:
        mtime = local.stat().st_mtime
    etag = hashlib.md5(f"{location.uri}:{size}:{mtime}".encode(), usedforsecurity=False)
    return {
        "Content-Length": str(size),
        "Content-Type": "application/octet-stream",
        "ETag": f'"0x{etag.hexdigest()[:16].upper()}"',
        "Last-Modified": formatdate(mtime, usegmt=True),
        "x-ms-blob-type": "BlockBlob",
        "x-ms-version": STORAGE_VERSION,
        "Accept-Ranges": "bytes",
        "x-ms-creation-time": formatdate(mtime, usegmt=True),
        "x-ms-lease-state": "available",
        "x-ms-lease-status": "unlocked",
        "x-ms-server-encrypted": "false",
        **(extra or {}),
    }


def _confirmation(ws: Workspace, datastore: str, blob: str) -> dict[str, str]:
    """The upload-confirmation metadata of a blob in a recorded azure-ai-ml upload."""
    found = _UPLOAD.match(blob)
    if datastore != DEFAULT_DATASTORE or found is None:
        return {}
    if not ws.assets.upload_confirmed(found["hash"], found["name"]):
        return {}
    return {"x-ms-meta-upload_status": "completed"}


def _ok(status: int = 201, **extra: str) -> Response:
    return Response(
        status_code=status,
        headers={
            "x-ms-version": STORAGE_VERSION,
            "x-ms-request-server-encrypted": "false",
            "Last-Modified": formatdate(usegmt=True),
            "ETag": '"0x0"',
            **extra,
        },
    )


@public.api_route("/{account}/{container}", methods=["GET", "HEAD", "PUT", "DELETE"])
def container_operation(
    account: str, container: str, request: Request, ws: WorkspaceDep
) -> Response:
    q = request.query_params
    try:
        if q.get("restype") != "container":
            raise ValidationError(
                f"Container operations need restype=container; supported: {SUPPORTED}."
            )
        if request.method == "GET" and q.get("comp") == "list":
            _caller(ws, request, container, "l", f"list datastore {container!r}")
            return _list(ws, container, q.get("prefix") or "", q.get("include") or "")
        if request.method in ("GET", "HEAD") and q.get("comp") is None:
            _caller(ws, request, container, "r", f"read datastore {container!r}")
            ws.datastores.get(container)
            return _ok(200)
        raise UnsupportedError(
            f"{request.method} on a container is not supported; supported: {SUPPORTED}."
        )
    except SluicewayError as exc:
        return _from(exc)


def _list(ws: Workspace, container: str, prefix: str, include: str) -> Response:
    folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    base = _location(ws, container, folder)
    entries = []
    if storage_call(base.uri, "prefix", base.exists):
        entries = storage_call(base.uri, "prefix", base.list_files)
        if storage_call(base.uri, "prefix", base.is_file):
            entries = [type(e)(base.path.rsplit("/", 1)[-1], e.size) for e in entries]
            folder = folder.rsplit("/", 1)[0] if "/" in folder else ""
    items = []
    for entry in entries:
        name = f"{folder}/{entry.path}" if folder else entry.path
        if not name.startswith(prefix):
            continue
        meta = ""
        if "metadata" in include:
            found = _confirmation(ws, container, name)
            meta = (
                "<Metadata>"
                + "".join(
                    f"<{k[len('x-ms-meta-') :]}>{escape(v)}</{k[len('x-ms-meta-') :]}>"
                    for k, v in found.items()
                )
                + "</Metadata>"
            )
        items.append(
            f"<Blob><Name>{escape(name)}</Name><Properties>"
            f"<Content-Length>{entry.size}</Content-Length><BlobType>BlockBlob</BlobType>"
            f"<Last-Modified>{formatdate(usegmt=True)}</Last-Modified>"
            f"<Content-Type>application/octet-stream</Content-Type>"
            f"</Properties>{meta}</Blob>"
        )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ContainerName="{escape(container)}">'
        f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(items)}</Blobs><NextMarker />"
        "</EnumerationResults>"
    )
    return Response(xml, media_type="application/xml", headers={"x-ms-version": STORAGE_VERSION})


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    if not header:
        return None
    found = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
    if found is None:
        raise ValidationError(f"Range {header!r} is not accepted; use bytes=<start>-[<end>].")
    start = int(found.group(1))
    end = min(int(found.group(2)) if found.group(2) else size - 1, size - 1)
    if start >= size and size > 0:
        raise ValidationError(f"Range {header!r} starts past the blob's {size} bytes.")
    return start, end


@public.api_route("/{account}/{container}/{blob:path}", methods=["GET", "HEAD", "PUT", "DELETE"])
async def blob_operation(
    account: str, container: str, blob: str, request: Request, ws: WorkspaceDep
) -> Response:
    try:
        if request.method in ("GET", "HEAD"):
            return await run_in_threadpool(_read, ws, request, container, blob)
        if request.method == "PUT":
            return await _write(ws, request, container, blob)
        raise UnsupportedError(
            f"{request.method} on a blob is not supported; supported: {SUPPORTED}."
        )
    except SluicewayError as exc:
        return _from(exc)


def _read(ws: Workspace, request: Request, container: str, blob: str) -> Response:
    if request.query_params.get("comp"):
        raise UnsupportedError(
            f"GET comp={request.query_params['comp']} is not supported; supported: {SUPPORTED}."
        )
    _caller(ws, request, container, "r", f"read {blob!r}")
    location = _location(ws, container, blob)
    if not location.path or not storage_call(location.uri, "path", location.is_file):
        raise ResourceNotFoundError(f"The blob {blob!r} does not exist.")
    size = int(
        storage_call(location.uri, "path", lambda: location.backend.fs.size(location.full_path))
    )
    headers = _headers(location, size, _confirmation(ws, container, location.path))
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    wanted = _range(request.headers.get("x-ms-range") or request.headers.get("range"), size)
    if wanted is None:
        return StreamingResponse(location.iter_bytes(), headers=headers)
    start, end = wanted
    with location.open_read() as fh:
        fh.seek(start)
        data = fh.read(max(end - start + 1, 0))
    headers["Content-Length"] = str(len(data))
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data, status_code=206, headers=headers)


def _blocks_dir(ws: Workspace, container: str, blob: str) -> Path:
    key = hashlib.sha256(f"{container}\n{blob}".encode()).hexdigest()
    return ws.settings.effective_staging_dir / "blob-blocks" / key


async def _write(ws: Workspace, request: Request, container: str, blob: str) -> Response:
    comp = request.query_params.get("comp")
    if comp == "metadata":
        return await run_in_threadpool(_set_metadata, ws, request, container, blob)
    if comp not in (None, "block", "blocklist"):
        raise UnsupportedError(f"PUT comp={comp} is not supported; supported: {SUPPORTED}.")
    caller = _caller(ws, request, container, "w", f"write {blob!r}")
    location = _location(ws, container, blob)
    if comp == "block":
        block_id = request.query_params.get("blockid") or ""
        if not block_id or len(block_id) > 128:
            raise ValidationError("Put Block needs a blockid of at most 64 bytes (base64).")
        blocks = _blocks_dir(ws, container, location.path)
        blocks.mkdir(parents=True, exist_ok=True)
        part = blocks / hashlib.sha256(block_id.encode()).hexdigest()
        with open(part.with_suffix(".tmp"), "wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        part.with_suffix(".tmp").replace(part)
        return _ok(201)
    folder: Path | None = None
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
        if comp == "blocklist":
            listing = (await request.body()).decode("utf-8", "replace")
            folder = _blocks_dir(ws, container, location.path)
            for block_id in _BLOCK_ID.findall(listing):
                part = folder / hashlib.sha256(block_id.encode()).hexdigest()
                if not part.exists():
                    raise ValidationError(
                        f"Block {block_id!r} was not uploaded (InvalidBlockList)."
                    )
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, spool)
        else:
            async for chunk in request.stream():
                spool.write(chunk)
        spool.seek(0)
        exists = await run_in_threadpool(storage_call, location.uri, "path", location.is_file)
        if exists and request.headers.get("if-none-match") == "*":
            found = _confirmation(ws, container, location.path)
            if found:
                raise ConflictError(f"The blob {blob!r} already exists.")
        await run_in_threadpool(
            ws.files.write, container, location.path, spool, caller, overwrite=True
        )
    if comp == "blocklist" and folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return _ok(201)


def _set_metadata(ws: Workspace, request: Request, container: str, blob: str) -> Response:
    """Set Blob Metadata: the SDK's upload confirmation, which records the upload."""
    caller = _caller(ws, request, container, "w", f"confirm the upload of {blob!r}")
    meta: dict[str, Any] = {
        k.lower()[len("x-ms-meta-") :]: v
        for k, v in request.headers.items()
        if k.lower().startswith("x-ms-meta-")
    }
    location = _location(ws, container, blob)
    found = _UPLOAD.match(location.path)
    if meta.get("upload_status") != "completed" or container != DEFAULT_DATASTORE or found is None:
        raise UnsupportedError(
            "Blob metadata is kept only as the upload confirmation of azure-ai-ml "
            f"(x-ms-meta-upload_status: completed on {UPLOAD_FOLDER}/<sha256>/<name>/... of "
            "the default datastore)."
        )
    if not storage_call(location.uri, "path", location.is_file):
        raise ResourceNotFoundError(f"The blob {blob!r} does not exist.")
    ws.assets.record_azureml_upload(found["hash"], found["name"], caller)
    return _ok(200)
