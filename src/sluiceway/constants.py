"""Constants with Azure ML's names: ``from azure.ai.ml.constants import ...`` code ports as is."""

from __future__ import annotations

from enum import StrEnum

from sluiceway.schemas.common import AssetType
from sluiceway.schemas.endpoints import OutputAction

#: Asset and input types: ``uri_file``, ``uri_folder``, ``mltable``, ``custom_model``,
#: ``mlflow_model``. Members are strings, so ``AssetTypes.URI_FOLDER == "uri_folder"``.
AssetTypes = AssetType

#: What a model deployment does with ``run()`` results: ``append_row`` or ``summary_only``.
BatchDeploymentOutputAction = OutputAction


class InputOutputModes(StrEnum):
    """How a job reaches an input or writes an output (Azure's names)."""

    MOUNT = "mount"
    DOWNLOAD = "download"
    UPLOAD = "upload"
    RO_MOUNT = "ro_mount"
    RW_MOUNT = "rw_mount"
    EVAL_MOUNT = "eval_mount"
    EVAL_DOWNLOAD = "eval_download"
    DIRECT = "direct"


__all__ = ["AssetTypes", "BatchDeploymentOutputAction", "InputOutputModes"]
