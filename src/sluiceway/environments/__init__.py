"""Environments: the packages a deployment's code runs with, built once with uv.

:mod:`~sluiceway.environments.spec` reads Azure's environment YAML (a conda file, or
requirements) into the content a build depends on; :mod:`~sluiceway.environments.cache`
builds that content into a virtual environment, once per content hash, and finds it again;
:mod:`~sluiceway.environments.uv` finds uv and the interpreters it can build on.
"""

from sluiceway.environments.cache import BuildFailed, BuildState, BuildStatus, EnvironmentCache
from sluiceway.environments.spec import EnvironmentContent, content_of

__all__ = [
    "BuildFailed",
    "BuildState",
    "BuildStatus",
    "EnvironmentCache",
    "EnvironmentContent",
    "content_of",
]
