"""The management (ARM-shaped) routes azure-ai-ml calls, under
``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/
workspaces/{ws}``.

Every route calls the same services as the REST face, with the same role checks: a route here
only translates the ARM body into the service's request and its answer into the ARM shape
(:mod:`sluiceway.server.arm.shapes`). Creates are synchronous; an ARM create still answers
``Azure-AsyncOperation`` so that the SDK's ``begin_create_or_update(...).result()`` polls an
operation that reports the resource's state.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluiceway.auth.policy import Action
from sluiceway.errors import ResourceNotFoundError, UnsupportedError, ValidationError
from sluiceway.schemas.assets import DataCreate, ModelCreate
from sluiceway.schemas.datastores import DatastoreCreate, DatastoreOut
from sluiceway.schemas.endpoints import (
    BatchDeploymentCreate,
    BatchEndpointCreate,
    EndpointDefaults,
)
from sluiceway.server.access import ANY_IDENTITY, allowed
from sluiceway.server.arm import shapes
from sluiceway.server.deps import PrincipalDep, WorkspaceDep
from sluiceway.server.methods import allowed_methods
from sluiceway.server.workspace import Workspace
from sluiceway.services.assets import Kind
from sluiceway.storage.datastores.azure import blob_endpoint
from sluiceway.storage.retired import gen1_refusal, is_gen1_type

WORKSPACE_PATH = (
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
    "Microsoft.MachineLearningServices/workspaces/{workspace}"
)
_API_VERSION = re.compile(r"^(20\d\d)-\d\d-\d\d(-preview)?$")
SUPPORTED = (
    "workspaces (GET), datastores (GET, list, PUT, listSecrets), data and models (containers "
    "and versions: GET, list, PUT), batchEndpoints and batchEndpoints/deployments (GET, list, "
    "PUT, DELETE), jobs (GET)"
)


def target(
    ws: WorkspaceDep,
    subscription: Annotated[str, Path()],
    group: Annotated[str, Path()],
    workspace: Annotated[str, Path()],
    api_version: Annotated[
        str, Query(alias="api-version", description="An ARM date version, as azure-ai-ml sends.")
    ],
) -> None:
    """The path names this workspace, and the ``api-version`` is an ARM date version.

    Raises:
        ResourceNotFoundError: another subscription, resource group or workspace.
        ValidationError: an ``api-version`` not of the form ``YYYY-MM-DD[-preview]``.
    """
    scope = ws.settings.scope
    if not scope.is_named(subscription, group, workspace):
        raise ResourceNotFoundError(
            f"Workspace /subscriptions/{subscription}/resourceGroups/{group}/.../workspaces/"
            f"{workspace} is not served here; this server serves {scope.prefix}.",
            target="workspace",
        )
    version = api_version
    match = _API_VERSION.match(version)
    if match is None or int(match.group(1)) < 2020:
        raise ValidationError(
            f"api-version {version!r} is not accepted: the management API takes ARM date "
            "versions from 2020 on (YYYY-MM-DD or YYYY-MM-DD-preview), as azure-ai-ml sends.",
            target="api-version",
        )


router = APIRouter(
    prefix=WORKSPACE_PATH,
    tags=["azure ml"],
    dependencies=[Depends(target)],
    generate_unique_id_function=shapes.operation_id,
)


# A PUT answers 201 with what it made, or 200 with what existed (updated, or the same).
CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "Created.", "content": {"application/json": {"schema": {}}}}
}
# A DELETE answers 200 with no body, as ARM does.
DELETED: dict[int | str, dict[str, Any]] = {200: {"description": "Deleted."}}


def context(ws: Workspace) -> shapes.ArmContext:
    return shapes.ArmContext(ws.base_url, ws.settings.scope)


def blob_face(out: DatastoreOut) -> bool:
    """Whether the SDK reaches this datastore through the server's blob face: every datastore
    but an Azure one it can reach itself, which is one served over https (the SDK builds every
    blob URL as ``https://...``; an emulator served over plain http is reached through the
    server)."""
    if out.type not in ("azure_blob", "azure_data_lake_gen2"):
        return True
    return direct_url(out) is None


def direct_url(out: DatastoreOut) -> str | None:
    """The https blob service URL of an Azure datastore, or None when it is served over http."""
    try:
        url = blob_endpoint(out.account_name or "", out.endpoint, out.protocol)
    except ValidationError:  # not a URL the SDK could reach: the server serves it
        return None
    return url if url.startswith("https://") else None


def _props(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
        raise ValidationError(
            "The body must be a JSON object with a 'properties' object, as ARM takes it.",
            target="properties",
        )
    props: dict[str, Any] = body.get("properties") or {}
    return props


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{where} must be an object of strings.", target=where)
    return {str(k): str(v) for k, v in value.items()}


# -- workspace ---------------------------------------------------------------------------------


@router.get("", openapi_extra=ANY_IDENTITY)
def get_workspace(ws: WorkspaceDep) -> JSONResponse:
    """The workspace, to any identity: the SDK reads it (for its discovery URL) before it
    streams or downloads a job, which an invoker of one endpoint does too. It holds only the
    coordinates the URL names and the public discovery URL."""
    return JSONResponse(shapes.workspace(context(ws)))


# -- datastores --------------------------------------------------------------------------------


@router.get("/datastores", openapi_extra=ANY_IDENTITY)
def list_datastores(
    ws: WorkspaceDep, caller: PrincipalDep, isDefault: str | None = None
) -> JSONResponse:
    """The datastores the caller may read; ``isDefault=true``: only the default one."""
    ctx = context(ws)
    found = ws.datastores.list_all(caller)
    if (isDefault or "").lower() == "true":
        found = [d for d in found if d.is_default]
    value = [_datastore(ctx, d) for d in found]
    return JSONResponse({"value": value, "nextLink": None})


@router.get("/datastores/{name}", dependencies=[allowed(Action.READ, datastore="name")])
def get_datastore(name: str, ws: WorkspaceDep) -> JSONResponse:
    return JSONResponse(_datastore(context(ws), ws.datastores.get(name)))


def _datastore(ctx: shapes.ArmContext, out: DatastoreOut) -> dict[str, Any]:
    return shapes.datastore(ctx, out, direct=None if blob_face(out) else direct_url(out))


_ARM_CREDENTIALS = {"accountkey": "key", "sas": "sasToken"}


@router.put("/datastores/{name}", responses=CREATED)
def put_datastore(
    name: str,
    ws: WorkspaceDep,
    caller: PrincipalDep,
    body: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Register an Azure Blob or ADLS Gen2 datastore in ARM's shape (``datastoreType``,
    ``accountName``, ``containerName`` or ``filesystem``, ``credentials``)."""
    props = _props(body)
    kind = str(props.get("datastoreType") or "")
    if is_gen1_type(kind):
        raise gen1_refusal(f"datastoreType {kind!r}", target="properties.datastoreType")
    types = {"AzureBlob": "azure_blob", "AzureDataLakeGen2": "azure_data_lake_gen2"}
    if kind not in types:
        raise UnsupportedError(
            f"properties.datastoreType {kind!r} is not accepted here; accepted: "
            "AzureBlob, AzureDataLakeGen2 (other types: `sluice datastore create`).",
            target="properties.datastoreType",
        )
    credentials: dict[str, str] | None = None
    cred = props.get("credentials") or {}
    ctype = str(cred.get("credentialsType") or "None").lower()
    if ctype in _ARM_CREDENTIALS:
        secret = (cred.get("secrets") or {}).get(_ARM_CREDENTIALS[ctype])
        if not secret:
            raise ValidationError(
                f"properties.credentials.secrets.{_ARM_CREDENTIALS[ctype]} is needed for "
                f"credentialsType {cred.get('credentialsType')}.",
                target="properties.credentials",
            )
        credentials = {"account_key" if ctype == "accountkey" else "sas_token": str(secret)}
    elif ctype != "none":
        raise UnsupportedError(
            f"credentialsType {cred.get('credentialsType')!r} is not accepted; accepted: "
            "AccountKey, Sas, None.",
            target="properties.credentials",
        )
    create = DatastoreCreate(
        name=name,
        type=types[kind],
        description=props.get("description"),
        tags=_strings(props.get("tags"), "properties.tags"),
        account_name=props.get("accountName"),
        container_name=props.get("containerName"),
        filesystem=props.get("filesystem"),
        endpoint=props.get("endpoint"),
        protocol=props.get("protocol"),
        credentials=credentials,
    )
    out, created = ws.datastores.create_or_update(name, create, caller)
    answer = _datastore(context(ws), out)
    return JSONResponse(answer, status_code=201 if created else 200)


@router.post("/datastores/{name}/listSecrets")
def list_secrets(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    """A SAS for the caller's own data rights on the datastore, valid an hour; never a stored
    credential. For a datastore of the blob face, the server signs it; for an Azure Blob
    datastore with an account key that the SDK reaches directly, it is a container SAS made
    from that key (read and list, and create, write and add with ``write data``). The caller's
    rights are checked before the datastore is looked up, so that one without any learns
    nothing of which datastores exist."""
    permissions = ws.signed.datastore_permissions(caller, name)
    out = ws.datastores.get(name)
    if blob_face(out):
        sas, expiry = ws.signed.datastore_sas(caller, name)
    else:
        sas, expiry = _azure_sas(ws, out, permissions)
    return JSONResponse({"secretsType": "Sas", "sasToken": sas, "expiry": expiry})


SAS_LIFETIME = timedelta(hours=1)


def _azure_sas(ws: Workspace, out: DatastoreOut, permissions: str) -> tuple[str, str]:
    """A container SAS of an Azure Blob datastore, signed with its account key, with
    ``permissions`` (the caller's: ``r``/``l`` to read, ``c``/``w`` to write)."""
    backend = ws.datastores.backend(out.name)
    key = (getattr(backend, "credentials", None) or {}).get("account_key")
    if out.type != "azure_blob" or not key:
        raise UnsupportedError(
            f"listSecrets is not offered for datastore {out.name!r}: a SAS is made only for an "
            "Azure Blob datastore with an account key (the key itself never leaves the "
            f"server); this one is {out.type} with {out.credentials.get('type', 'none')} "
            "credentials. Reach it with the caller's own Azure credential, or through "
            "`sluice` and the REST file routes.",
            target="name",
        )
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    writes = "w" in permissions
    # The SDK reaches the store over https only; an emulator (Azurite) behind a TLS front
    # sees plain http, so its SAS also allows http.
    origin = urlsplit(direct_url(out) or "")[:2]
    emulated = any(urlsplit(e)[:2] == origin for e in ws.settings.emulator_endpoints)
    expiry = datetime.now(UTC).replace(microsecond=0) + SAS_LIFETIME
    sas = generate_container_sas(
        out.account_name or "",
        out.container_name or "",
        account_key=key,
        permission=ContainerSasPermissions(
            read="r" in permissions,
            list="l" in permissions,
            add=writes,
            create=writes,
            write=writes,
        ),
        expiry=expiry,
        protocol="https,http" if emulated else "https",
    )
    return sas, expiry.isoformat().replace("+00:00", "Z")


# -- batch endpoints and deployments -----------------------------------------------------------


def _operation(ws: Workspace, path: str) -> dict[str, str]:
    return {"Azure-AsyncOperation": f"{ws.base_url}/azureml/operations/{path}"}


@router.get("/batchEndpoints", openapi_extra=ANY_IDENTITY)
def list_endpoints(ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    """The endpoints the caller may read."""
    value = [shapes.endpoint(e) for e in ws.endpoints.list_all(caller)]
    return JSONResponse({"value": value, "nextLink": None})


@router.get("/batchEndpoints/{name}", dependencies=[allowed(Action.READ, endpoint="name")])
def get_endpoint(name: str, ws: WorkspaceDep) -> JSONResponse:
    return JSONResponse(shapes.endpoint(ws.endpoints.get(name)))


@router.put("/batchEndpoints/{name}", responses=CREATED)
def put_endpoint(
    name: str,
    ws: WorkspaceDep,
    caller: PrincipalDep,
    body: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Create an endpoint (``manage`` on the workspace) or update one (``manage`` on it)."""
    props = _props(body)
    auth_mode = str(props.get("authMode") or "AADToken")
    if auth_mode.lower() != "aadtoken":
        raise UnsupportedError(
            f"properties.authMode {auth_mode!r} is not accepted; accepted: AADToken.",
            target="properties.authMode",
        )
    defaults = props.get("defaults") or {}
    create = BatchEndpointCreate(
        name=name,
        description=props.get("description"),
        tags=_strings(body.get("tags"), "tags"),
        defaults=EndpointDefaults(deployment_name=defaults.get("deploymentName")),
        properties=_strings(props.get("properties"), "properties.properties"),
    )
    out, created = ws.endpoints.create_or_update(create, caller)
    return JSONResponse(
        shapes.endpoint(out),
        status_code=201 if created else 200,
        headers=_operation(ws, f"batchEndpoints/{name}"),
    )


@router.delete(
    "/batchEndpoints/{name}",
    dependencies=[allowed(Action.MANAGE, endpoint="name")],
    responses=DELETED,
    response_class=Response,
)
def delete_endpoint(name: str, ws: WorkspaceDep) -> Response:
    ws.endpoints.delete(name)
    return Response(status_code=200)


READ_ENDPOINT = [allowed(Action.READ, endpoint="endpoint")]
MANAGE_ENDPOINT = [allowed(Action.MANAGE, endpoint="endpoint")]


@router.get("/batchEndpoints/{endpoint}/deployments", dependencies=READ_ENDPOINT)
def list_deployments(endpoint: str, ws: WorkspaceDep) -> JSONResponse:
    ctx = context(ws)
    value = [shapes.deployment(ctx, d) for d in ws.endpoints.list_deployments(endpoint)]
    return JSONResponse({"value": value, "nextLink": None})


@router.get("/batchEndpoints/{endpoint}/deployments/{name}", dependencies=READ_ENDPOINT)
def get_deployment(endpoint: str, name: str, ws: WorkspaceDep) -> JSONResponse:
    out = ws.endpoints.get_deployment(endpoint, name)
    return JSONResponse(shapes.deployment(context(ws), out))


def _reference(value: Any, where: str) -> str | None:
    """An ARM asset id (``.../models/n/versions/v``) or ``azureml:`` reference as the
    ``azureml:name:version`` form the services take."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("assetId")
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{where} must name an asset by its id.", target=where)
    found = re.search(r"/(?:models|components)/([^/]+)/versions/([^/]+)$", value)
    return f"azureml:{found.group(1)}:{found.group(2)}" if found else value


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    from sluiceway.schemas.invoke import parse_timeout

    return parse_timeout(value, "properties.retrySettings.timeout")


@router.put(
    "/batchEndpoints/{endpoint}/deployments/{name}",
    dependencies=MANAGE_ENDPOINT,
    responses=CREATED,
)
def put_deployment(
    endpoint: str,
    name: str,
    ws: WorkspaceDep,
    caller: PrincipalDep,
    body: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Create or update a model deployment (a registered model; MLflow models need no code)
    or a pipeline deployment (a registered pipeline component)."""
    props = _props(body)
    if props.get("codeConfiguration") or props.get("environmentId"):
        raise UnsupportedError(
            "codeConfiguration and environmentId are not accepted through the management API "
            "yet: code and environment assets are not served in the ARM dialect. Deploy an "
            "MLflow model (no code), or create the deployment with `sluice batch-deployment "
            "create` or sluiceway.MLClient.",
            target="properties.codeConfiguration",
        )
    pipeline = props.get("deploymentConfiguration") or {}
    settings: dict[str, Any] = {}
    fields: dict[str, Any] = {
        "name": name,
        "endpoint_name": endpoint,
        "description": props.get("description"),
        "tags": _strings(body.get("tags"), "tags"),
        "properties": _strings(props.get("properties"), "properties.properties"),
        "compute": props.get("compute"),
    }
    if pipeline:
        fields["type"] = "pipeline"
        fields["component"] = _reference(
            pipeline.get("componentId"), "properties.deploymentConfiguration.componentId"
        )
    else:
        fields["model"] = _reference(props.get("model"), "properties.model")
        retry = props.get("retrySettings") or {}
        for key, value in {
            "mini_batch_size": props.get("miniBatchSize"),
            "max_concurrency_per_instance": props.get("maxConcurrencyPerInstance"),
            "output_action": props.get("outputAction"),
            "output_file_name": props.get("outputFileName"),
            "error_threshold": props.get("errorThreshold"),
            "logging_level": (props.get("loggingLevel") or "").lower() or None,
        }.items():
            if value is not None:
                settings[key] = value
        retry_settings = {
            k: v
            for k, v in {
                "max_retries": retry.get("maxRetries"),
                "timeout": _seconds(retry.get("timeout")),
            }.items()
            if v is not None
        }
        if retry_settings:
            settings["retry_settings"] = retry_settings
        fields["settings"] = settings
    instances = (props.get("resources") or {}).get("instanceCount")
    if instances is not None:
        fields["resources"] = {"instance_count": instances}
    create = BatchDeploymentCreate.model_validate(fields)
    out, created = ws.endpoints.create_or_update_deployment(
        endpoint, name, create, caller, set_default=False
    )
    return JSONResponse(
        shapes.deployment(context(ws), out),
        status_code=201 if created else 200,
        headers=_operation(ws, f"batchEndpoints/{endpoint}/deployments/{name}"),
    )


@router.delete(
    "/batchEndpoints/{endpoint}/deployments/{name}",
    dependencies=MANAGE_ENDPOINT,
    responses=DELETED,
    response_class=Response,
)
def delete_deployment(endpoint: str, name: str, ws: WorkspaceDep) -> Response:
    ws.endpoints.delete_deployment(endpoint, name)
    return Response(status_code=200)


# -- jobs --------------------------------------------------------------------------------------


@router.get("/jobs/{name}")
def get_job(name: str, ws: WorkspaceDep, caller: PrincipalDep) -> JSONResponse:
    return JSONResponse(shapes.job(ws.jobs.get(name, caller)))


# -- data and models ---------------------------------------------------------------------------


# The asset types of the path, which only ``data`` and ``models`` match: any other (computes,
# environments, ...) is left to :func:`unsupported`, which names what is supported.
class _AssetType(StringConvertor):
    regex = "data|models"


register_url_convertor("arm_asset_type", _AssetType())
AssetType = Literal["data", "models"]
_KINDS: dict[str, Kind] = {"data": "data", "models": "model"}


def _kind(kind: str) -> Kind:
    return _KINDS[kind]


def _version_out(ws: Workspace, kind: AssetType, name: str, version: str | None) -> dict[str, Any]:
    return shapes.asset_version(ws.assets.out(ws.assets.get(_kind(kind), name, version)))


@router.get("/{kind:arm_asset_type}/{name}", dependencies=[allowed(Action.READ)])
def get_container(kind: AssetType, name: str, ws: WorkspaceDep) -> JSONResponse:
    out = ws.assets.out(ws.assets.get(_kind(kind), name))
    return JSONResponse(shapes.data_container(context(ws), name, out, kind))


@router.get("/{kind:arm_asset_type}", dependencies=[allowed(Action.READ)])
def list_containers(kind: AssetType, ws: WorkspaceDep) -> JSONResponse:
    ctx = context(ws)
    value = []
    for record in ws.assets.list_latest(_kind(kind)):
        value.append(shapes.data_container(ctx, record.name, ws.assets.out(record), kind))
    return JSONResponse({"value": value, "nextLink": None})


@router.get("/{kind:arm_asset_type}/{name}/versions", dependencies=[allowed(Action.READ)])
def list_versions(kind: AssetType, name: str, ws: WorkspaceDep) -> JSONResponse:
    records = ws.assets.versions(_kind(kind), name)
    value = [shapes.asset_version(ws.assets.out(r)) for r in records]
    return JSONResponse({"value": value, "nextLink": None})


@router.get("/{kind:arm_asset_type}/{name}/versions/{version}", dependencies=[allowed(Action.READ)])
def get_version(kind: AssetType, name: str, version: str, ws: WorkspaceDep) -> JSONResponse:
    return JSONResponse(_version_out(ws, kind, name, version))


@router.put(
    "/{kind:arm_asset_type}/{name}/versions/{version}",
    dependencies=[allowed(Action.MANAGE)],
    responses=CREATED,
)
def put_version(
    kind: AssetType,
    name: str,
    version: str,
    ws: WorkspaceDep,
    caller: PrincipalDep,
    body: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Register a data or model version: ``properties.dataUri``/``dataType`` or
    ``properties.modelUri``/``modelType``."""
    props = _props(body)
    common: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": props.get("description"),
        "tags": _strings(props.get("tags"), "properties.tags"),
        "properties": _strings(props.get("properties"), "properties.properties"),
    }
    if kind == "data":
        data = DataCreate(
            **common, type=props.get("dataType") or "uri_folder", path=props.get("dataUri") or ""
        )
        out, created = ws.assets.create_data(data, caller)
        answer = shapes.data_version(out)
    else:
        model = ModelCreate(
            **common,
            type=props.get("modelType") or "custom_model",
            path=props.get("modelUri") or "",
        )
        model_out, created = ws.assets.create_model(model, caller)
        answer = shapes.model_version(model_out)
    return JSONResponse(answer, status_code=201 if created else 200)


# -- everything else ---------------------------------------------------------------------------


otherwise = APIRouter(prefix=WORKSPACE_PATH, include_in_schema=False)


@otherwise.api_route("/{rest:path}", methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
def unsupported(rest: str, request: Request, ws: WorkspaceDep) -> None:
    """What no route of the management API serves: a 405 where another method would be
    served (before any token, as the REST face's), otherwise Azure's error naming what is
    supported (to a caller with a token, for this workspace)."""
    if allowed_methods(request.app, request.scope):
        raise StarletteHTTPException(405)
    ws.authenticate(request.headers.get("authorization"))
    params = request.path_params
    version = request.query_params.get("api-version", "")
    target(ws, params["subscription"], params["group"], params["workspace"], version)
    raise UnsupportedError(
        f"{request.method} .../workspaces/{{ws}}/{rest} is not supported by Sluiceway's "
        f"management API; supported: {SUPPORTED}.",
        target=rest.split("/")[0] or "resource",
    )
