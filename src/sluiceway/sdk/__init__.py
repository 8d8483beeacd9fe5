"""The Python SDK: ``MLClient`` and its operation groups, talking to a server over HTTP.

It imports only the core dependencies (httpx, pydantic, PyYAML, rich), never the server's.
"""

from __future__ import annotations

from sluiceway.sdk.client import MLClient
from sluiceway.sdk.component_loader import load_component
from sluiceway.sdk.connection import Connection, resolve_connection
from sluiceway.sdk.job_operations import JobFailedError
from sluiceway.sdk.loaders import (
    load_batch_deployment,
    load_batch_endpoint,
    load_data,
    load_environment,
    load_model,
)
from sluiceway.sdk.poller import LROPoller

__all__ = [
    "Connection",
    "JobFailedError",
    "LROPoller",
    "MLClient",
    "load_batch_deployment",
    "load_batch_endpoint",
    "load_component",
    "load_data",
    "load_environment",
    "load_model",
    "resolve_connection",
]
