"""The SDK's entities, named as in ``azure.ai.ml.entities`` (plus ``Input`` and ``Output``).

Entities are plain objects: building one talks to no server. Those the server returns keep its
JSON, which ``_to_dict()`` gives back unchanged.
"""

from __future__ import annotations

from sluiceway.entities._resource import SystemData
from sluiceway.entities.assets import Data, Datastore, Model
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
from sluiceway.entities.job import BatchJob, JobError, JobProgress

__all__ = [
    "BatchDeployment",
    "BatchEndpoint",
    "BatchJob",
    "BatchRetrySettings",
    "CodeConfiguration",
    "Data",
    "Datastore",
    "EndpointDefaults",
    "Environment",
    "Input",
    "JobError",
    "JobProgress",
    "Model",
    "ModelBatchDeployment",
    "ModelBatchDeploymentSettings",
    "Output",
    "ResourceConfiguration",
    "SystemData",
]
