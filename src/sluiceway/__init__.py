"""Sluiceway: self-hosted batch endpoints with Azure ML's resource model, YAML, CLI and SDK.

Code written for ``azure.ai.ml`` runs with only the import changed::

    from sluiceway import MLClient, Input
    from sluiceway.constants import AssetTypes

    ml_client = MLClient()
    job = ml_client.batch_endpoints.invoke(
        endpoint_name="heart-classifier",
        input=Input(type=AssetTypes.URI_FOLDER, path="data/"),
    )
    ml_client.jobs.stream(job.name)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluiceway.entities import (
        AmlCompute,
        BatchDeployment,
        BatchEndpoint,
        BatchJob,
        BatchRetrySettings,
        CodeConfiguration,
        CommandComponent,
        Component,
        Compute,
        Data,
        Datastore,
        Environment,
        Input,
        Model,
        ModelBatchDeployment,
        ModelBatchDeploymentSettings,
        Output,
        PipelineComponent,
        PipelineComponentBatchDeployment,
        ResourceConfiguration,
    )
    from sluiceway.sdk import (
        MLClient,
        load_batch_deployment,
        load_batch_endpoint,
        load_component,
        load_data,
        load_environment,
        load_model,
    )

__version__ = "0.1.0"

# Imported on first use, so that worker processes and the server, which import submodules of
# this package, do not pay for the SDK.
_LAZY = {
    **dict.fromkeys(
        (
            "BatchDeployment",
            "BatchEndpoint",
            "BatchJob",
            "BatchRetrySettings",
            "CodeConfiguration",
            "AmlCompute",
            "CommandComponent",
            "Component",
            "Compute",
            "Data",
            "Datastore",
            "Environment",
            "Input",
            "Model",
            "ModelBatchDeployment",
            "ModelBatchDeploymentSettings",
            "Output",
            "PipelineComponent",
            "PipelineComponentBatchDeployment",
            "ResourceConfiguration",
        ),
        "sluiceway.entities",
    ),
    **dict.fromkeys(
        (
            "MLClient",
            "load_batch_deployment",
            "load_batch_endpoint",
            "load_component",
            "load_data",
            "load_environment",
            "load_model",
        ),
        "sluiceway.sdk",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sluiceway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AmlCompute",
    "BatchDeployment",
    "BatchEndpoint",
    "BatchJob",
    "BatchRetrySettings",
    "CodeConfiguration",
    "CommandComponent",
    "Component",
    "Compute",
    "Data",
    "Datastore",
    "Environment",
    "Input",
    "MLClient",
    "Model",
    "ModelBatchDeployment",
    "ModelBatchDeploymentSettings",
    "Output",
    "PipelineComponent",
    "PipelineComponentBatchDeployment",
    "ResourceConfiguration",
    "load_batch_deployment",
    "load_batch_endpoint",
    "load_component",
    "load_data",
    "load_environment",
    "load_model",
]
