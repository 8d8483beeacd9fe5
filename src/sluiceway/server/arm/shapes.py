"""The Azure Resource Manager shapes of Sluiceway's resources, as azure-ai-ml reads them.

Each function turns what a service answers (the REST face's ``...Out`` models) into the JSON
the ARM dialect answers: one service layer, two shapes. The fields are those the SDK reads
(``reference/azure-ai-ml-wire.md``): without ``datastoreType`` a datastore crashes it, a data
version needs its ``id``, a job needs ``jobType``, ``status``, ``services`` and ``properties``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi.routing import APIRoute

from sluiceway.schemas.assets import DataOut, ModelOut
from sluiceway.schemas.common import CreationContext, WorkspaceScope
from sluiceway.schemas.datastores import DatastoreOut
from sluiceway.schemas.endpoints import BatchDeploymentOut, BatchEndpointOut
from sluiceway.schemas.jobs import JobIO, JobOut, JobStatus

PROVIDER = "Microsoft.MachineLearningServices"
LOCATION = "local"
#: The cloud's ``suffixes.storage``: the SDK builds blob URLs as
#: ``https://{accountName}.blob.{suffix}``.
STORAGE_SUFFIX = "local"
#: The cloud's portal; the SDK derives the invoke token's audience from it
#: (``https://ml.azure.`` + the portal's host from its third label on).
PORTAL = "https://portal.sluiceway.localhost/"
AML_AUDIENCE = "https://ml.azure.localhost"
#: What a job of the batch-scoring kind reports as its single child run.
CHILD_SUFFIX = "-batchscoring"

# Statuses the SDK does not wait on (``jobs.stream`` stops, ``jobs.download`` refuses) are
# reported as the nearest one it knows: a finalizing job is still running.
_STATUS = {JobStatus.FINALIZING: "Running"}
_DATASTORE_TYPES = {"azure_blob": "AzureBlob", "azure_data_lake_gen2": "AzureDataLakeGen2"}
_SHORT_URI = re.compile(r"^azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$")


@dataclass(frozen=True)
class ArmContext:
    """Where this server is, as the SDK needs it in its answers."""

    base_url: str
    scope: WorkspaceScope

    @property
    def workspace_id(self) -> str:
        return self.scope.prefix

    @property
    def api_url(self) -> str:
        """The discovery ``api``: base of run history, data and MFE data-plane routes."""
        return f"{self.base_url}/azureml"

    @property
    def blob_account(self) -> str:
        """The datastore ``accountName`` that makes the SDK's blob URL this server's blob face:
        ``https://{host:port}/azureml/blob/{workspace}.blob.local``."""
        netloc = urlsplit(self.base_url).netloc
        return f"{netloc}/azureml/blob/{self.scope.workspace_name}"

    def long_uri(self, datastore: str, path: str) -> str:
        s = self.scope
        return (
            f"azureml://subscriptions/{s.subscription_id}/resourcegroups/{s.resource_group}/"
            f"workspaces/{s.workspace_name}/datastores/{datastore}/paths/{path.lstrip('/')}"
        )


def _system_data(created: CreationContext | None) -> dict[str, Any]:
    """Azure's ``systemData`` of a resource made as ``created`` says (nulls when unknown)."""
    when = created.created_at.isoformat() if created else None
    created_by = created.created_by if created else None
    return {
        "createdAt": when,
        "createdBy": created_by,
        "createdByType": "User",
        "lastModifiedAt": when,
        "lastModifiedBy": created_by,
        "lastModifiedByType": "User",
    }


def _resource(rid: str, name: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": rid, "name": name, "type": f"{PROVIDER}/workspaces/{kind}", **extra}


def operation_id(route: APIRoute) -> str:
    """Operation ids of the Azure ML dialect: its function names, kept apart from the REST
    face's (which has its own ``get_endpoint``)."""
    return f"azureml_{route.name}"


def cloud_metadata(base_url: str) -> list[dict[str, Any]]:
    """``ARM_CLOUD_METADATA_URL``'s answer: one cloud whose resource manager is this server."""
    root = f"{base_url}/"
    return [
        {
            "name": cloud_name(base_url),
            "portal": PORTAL,
            "resourceManager": root,
            "authentication": {
                "loginEndpoint": root,
                "audiences": [root],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "suffixes": {"storage": STORAGE_SUFFIX},
        }
    ]


def cloud_name(base_url: str) -> str:
    """A cloud name per server URL: the SDK registers a name once per process."""
    netloc = urlsplit(base_url).netloc
    return "Sluiceway-" + re.sub(r"[^A-Za-z0-9]+", "-", netloc).strip("-")


def workspace(ctx: ArmContext) -> dict[str, Any]:
    s = ctx.scope
    return {
        "id": ctx.workspace_id,
        "name": s.workspace_name,
        "type": f"{PROVIDER}/workspaces",
        "location": LOCATION,
        "kind": "Default",
        "tags": {},
        "sku": {"name": "Basic", "tier": "Basic"},
        "properties": {
            "friendlyName": s.workspace_name,
            "discoveryUrl": f"{ctx.api_url}/discovery",
            "provisioningState": "Succeeded",
            "publicNetworkAccess": "Enabled",
            "storageAccount": (
                f"/subscriptions/{s.subscription_id}/resourceGroups/{s.resource_group}"
                f"/providers/Microsoft.Storage/storageAccounts/{s.workspace_name}"
            ),
        },
    }


def datastore(ctx: ArmContext, out: DatastoreOut, *, direct: str | None) -> dict[str, Any]:
    """A datastore: an Azure one the SDK reaches itself at ``direct`` (its https blob service
    URL), any other (local, S3, plain-http Azure) as a blob container of this server's blob
    face, named as the datastore."""
    props: dict[str, Any] = {
        "description": out.description,
        "tags": out.tags,
        "properties": {},
        "isDefault": out.is_default,
    }
    if direct is None:
        props.update(
            datastoreType="AzureBlob",
            accountName=ctx.blob_account,
            containerName=out.name,
            endpoint=STORAGE_SUFFIX,
            protocol="https",
            credentials={"credentialsType": "Sas"},
        )
    else:
        kind = _DATASTORE_TYPES.get(out.type, out.type)
        keyed = kind == "AzureBlob" and out.credentials.get("type") == "account_key"
        if kind == "AzureDataLakeGen2":  # the SDK reaches ADLS Gen2 over its dfs endpoint
            direct = direct.replace(".blob.", ".dfs.", 1)
        props.update(
            datastoreType=kind,
            accountName=sdk_account_name(direct),
            endpoint=out.endpoint or "core.windows.net",
            protocol=out.protocol or "https",
            # With an account key, listSecrets answers a SAS of the caller's rights; otherwise
            # the SDK uses its own credential against Azure.
            credentials={"credentialsType": "Sas" if keyed else "None"},
        )
        if kind == "AzureBlob":
            props["containerName"] = out.container_name
        else:
            props["filesystem"] = out.filesystem
    return _resource(out.id, out.name, "datastores", properties=props)


def sdk_account_name(service_url: str) -> str:
    """The ``accountName`` that makes the SDK's blob URL, ``https://{accountName}.blob.
    {suffix}``, the blob service at ``service_url``: its host, port and path, then ``#``, which
    moves the cloud's suffix into the URL's fragment (``127.0.0.1:10000/devstoreaccount1#``,
    ``acct.blob.core.windows.net#``)."""
    parts = urlsplit(service_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}#"


def data_container(
    ctx: ArmContext, name: str, latest: DataOut | ModelOut, kind: str
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "latestVersion": latest.version,
        "nextVersion": next_version(latest.version),
        "isArchived": False,
        "description": None,
        "tags": {},
        "properties": {},
    }
    if isinstance(latest, DataOut):
        props["dataType"] = latest.type
    return _resource(f"{ctx.workspace_id}/{kind}/{name}", name, kind, properties=props)


def next_version(latest: str) -> str:
    return str(int(latest) + 1) if latest.isdigit() else "1"


def data_version(out: DataOut) -> dict[str, Any]:
    return _resource(
        out.id,
        out.version,
        "data/versions",
        systemData=_system_data(out.creation_context),
        properties={
            "dataType": out.type,
            "dataUri": out.path,
            "description": out.description,
            "tags": out.tags,
            "properties": out.properties,
            "isAnonymous": False,
            "isArchived": False,
        },
    )


def asset_version(out: DataOut | ModelOut) -> dict[str, Any]:
    """A data or model version, by what ``out`` is."""
    return data_version(out) if isinstance(out, DataOut) else model_version(out)


def model_version(out: ModelOut) -> dict[str, Any]:
    return _resource(
        out.id,
        out.version,
        "models/versions",
        properties={
            "modelType": out.type,
            "modelUri": out.path,
            "description": out.description,
            "tags": out.tags,
            "properties": out.properties,
            "isAnonymous": False,
            "isArchived": False,
            "flavors": {},
        },
    )


def endpoint(out: BatchEndpointOut) -> dict[str, Any]:
    return _resource(
        out.id,
        out.name,
        "batchEndpoints",
        location=LOCATION,
        tags=out.tags,
        properties={
            "authMode": "AADToken",
            "description": out.description,
            "properties": out.properties,
            "scoringUri": out.scoring_uri,
            "swaggerUri": out.openapi_uri,
            "provisioningState": out.provisioning_state,
            "defaults": {"deploymentName": out.defaults.deployment_name},
        },
    )


def _duration(seconds: int) -> str:
    return f"PT{seconds}S"


def deployment(ctx: ArmContext, out: BatchDeploymentOut) -> dict[str, Any]:
    props: dict[str, Any] = {
        "description": out.description,
        "properties": out.properties,
        "provisioningState": out.provisioning_state,
        "compute": out.compute,
        "resources": {"instanceCount": out.resources.instance_count},
    }
    settings = out.settings.model_dump()
    if out.type == "model":
        if out.model:
            props["model"] = {"referenceType": "Id", "assetId": _asset_id(ctx, out.model)}
        retry = settings.get("retry_settings") or {}
        props.update(
            miniBatchSize=settings.get("mini_batch_size"),
            maxConcurrencyPerInstance=settings.get("max_concurrency_per_instance"),
            outputAction="AppendRow"
            if settings.get("output_action") == "append_row"
            else "SummaryOnly",
            outputFileName=settings.get("output_file_name"),
            errorThreshold=settings.get("error_threshold"),
            loggingLevel=str(settings.get("logging_level") or "info").capitalize(),
            retrySettings={
                "maxRetries": retry.get("max_retries"),
                "timeout": _duration(int(retry.get("timeout") or 30)),
            },
        )
        if out.code_configuration is not None:
            props["codeConfiguration"] = {
                "codeId": out.code_configuration.code,
                "scoringScript": out.code_configuration.scoring_script,
            }
    else:
        props["deploymentConfiguration"] = {
            "deploymentConfigurationType": "PipelineComponent",
            "componentId": {"referenceType": "Id", "assetId": out.component},
        }
    return _resource(
        out.id,
        out.name,
        "batchEndpoints/deployments",
        location=LOCATION,
        tags=out.tags,
        properties=props,
    )


def _asset_id(ctx: ArmContext, reference: str) -> str:
    """An ``azureml:name:version`` reference as the ARM id the SDK parses."""
    text = reference.removeprefix("azureml:")
    if text.startswith("/subscriptions/"):
        return text
    name, _, version = text.partition(":")
    return ctx.scope.model_id(name, version) if version else reference


def job_status(status: JobStatus) -> str:
    return _STATUS.get(status, status.value)


def _io(io: JobIO, output: bool) -> dict[str, Any]:
    if io.type == "literal":
        return {"jobInputType": "literal", "value": str(io.value)}
    key = "jobOutputType" if output else "jobInputType"
    mode = "ReadWriteMount" if output else "ReadOnlyMount"
    return {key: io.type, "uri": io.path, "mode": io.mode or mode}


def job(out: JobOut) -> dict[str, Any]:
    """A batch job as a pipeline job tagged ``azureml.batchrun``, as Azure shows one."""
    batch = {
        "azureml.batchrun": "true",
        "azureml.endpointname": out.endpoint_name,
        "azureml.deploymentname": out.deployment_name,
        "azureml.jobtype": "azureml.batchjob",
    }
    return _resource(
        out.id,
        out.name,
        "jobs",
        systemData=_system_data(out.creation_context),
        properties={
            "jobType": "Pipeline",
            "status": job_status(out.status),
            "displayName": out.display_name or out.name,
            "experimentName": out.experiment_name or out.endpoint_name,
            "description": out.status_detail,
            "isArchived": False,
            "tags": batch,
            "properties": dict(batch),
            "services": {},
            "inputs": {k: _io(v, False) for k, v in out.inputs.items()},
            "outputs": {k: _io(v, True) for k, v in out.outputs.items()},
            "jobs": {},
            "settings": {},
            "computeId": None,
        },
    )


def batch_job(out: JobOut) -> dict[str, Any]:
    """A job as ``batch_endpoints.list_jobs`` reads it (the MFE data-plane shape)."""
    return {
        "id": f"{out.id}",
        "name": out.name,
        "type": f"{PROVIDER}/workspaces/batchEndpoints/jobs",
        "properties": {
            "status": job_status(out.status),
            "experimentName": out.experiment_name or out.endpoint_name,
            "description": out.status_detail,
            "tags": {},
            "properties": {},
        },
    }


def output_asset_id(ctx: ArmContext, job_name: str, output: str) -> str:
    return (
        f"azureml://locations/{LOCATION}/workspaces/{ctx.scope.workspace_name}/data/"
        f"azureml_{job_name}_output_data_{output}/versions/1"
    )


_OUTPUT_ASSET = re.compile(r"/data/azureml_(?P<job>.+?)_output_data_(?P<output>[^/]+)/versions/1$")


def parse_output_asset(asset_id: str) -> tuple[str, str] | None:
    found = _OUTPUT_ASSET.search(asset_id)
    return (found["job"], found["output"]) if found else None


def output_datastore_path(uri: str | None) -> tuple[str, str] | None:
    """``(datastore, path)`` of an output's short datastore URI."""
    found = _SHORT_URI.match(uri or "")
    return (found["ds"], found["path"]) if found else None


def run(
    out: JobOut,
    run_id: str,
    *,
    child: bool,
    ctx: ArmContext,
    log_files: dict[str, str],
    status: str | None = None,
) -> dict[str, Any]:
    """A run of the run-history data plane: the job, or its one batch-scoring child (with
    ``status`` in place of the job's, when given)."""
    body: dict[str, Any] = {
        "runId": run_id,
        "runUuid": None,
        "status": status or job_status(out.status),
        "displayName": run_id,
        "name": run_id,
        "rootRunId": out.name,
        "parentRunId": out.name if child else None,
        "runType": "azureml.StepRun" if child else "azureml.PipelineRun",
        "experimentId": None,
        "startTimeUtc": out.start_time.isoformat() if out.start_time else None,
        "endTimeUtc": out.end_time.isoformat() if out.end_time else None,
        "tags": {"azureml.batchrun": "true"},
        "properties": {},
        "hidden": False,
        "warnings": [],
        "logFiles": log_files,
        "outputs": {},
    }
    if child:
        body["outputs"] = {
            name: {"assetId": output_asset_id(ctx, out.name, name), "type": io.type}
            for name, io in out.outputs.items()
        }
    if out.error is not None:
        body["error"] = {"error": {"code": out.error.code, "message": out.error.message}}
    return body
