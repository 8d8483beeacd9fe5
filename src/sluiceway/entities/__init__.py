"""The SDK's entities, named as in ``azure.ai.ml.entities`` (plus ``Input`` and ``Output``).

Entities are plain objects: building one talks to no server. Those the server returns keep its
JSON, which ``_to_dict()`` gives back unchanged.
"""

from __future__ import annotations

from sluiceway.entities._resource import SystemData
from sluiceway.entities.assets import Data, Model
from sluiceway.entities.component import (
    CommandComponent,
    Component,
    PipelineComponent,
    PipelineComponentBatchDeployment,
)
from sluiceway.entities.compute import AmlCompute, Compute
from sluiceway.entities.datastore import (
    AccessKeyConfiguration,
    AccountKeyConfiguration,
    AzureBlobDatastore,
    AzureDataLakeGen2Datastore,
    Datastore,
    LocalDatastore,
    S3Datastore,
    SasTokenConfiguration,
)
from sluiceway.entities.deployment import (
    BatchDeployment,
    BatchRetrySettings,
    CodeConfiguration,
    Environment,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    ResourceConfiguration,
)
from sluiceway.entities.endpoint import BatchEndpoint, EndpointDefaults
from sluiceway.entities.io import Input, Output
from sluiceway.entities.job import BatchJob, JobError, JobProgress, JobStep

__all__ = [
    "AccessKeyConfiguration",
    "AccountKeyConfiguration",
    "AmlCompute",
    "AzureBlobDatastore",
    "AzureDataLakeGen2Datastore",
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
    "EndpointDefaults",
    "Environment",
    "Input",
    "JobError",
    "JobProgress",
    "JobStep",
    "LocalDatastore",
    "Model",
    "ModelBatchDeployment",
    "ModelBatchDeploymentSettings",
    "Output",
    "PipelineComponent",
    "PipelineComponentBatchDeployment",
    "ResourceConfiguration",
    "S3Datastore",
    "SasTokenConfiguration",
    "SystemData",
]
