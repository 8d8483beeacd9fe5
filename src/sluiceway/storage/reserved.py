"""Places in the default datastore that the server alone writes.

- ``azureml/<job>/``: a job's folder (its default outputs, logs, parts), written by the
  scheduler.
- ``azureml-registry/``: registered models and code (:mod:`sluiceway.storage.snapshots`).

No caller writes there, neither through the files API nor by naming it as a job's output.
"""

from __future__ import annotations

from sluiceway.storage.uris import DEFAULT_DATASTORE

JOBS_FOLDER = "azureml"
REGISTRY_FOLDER = "azureml-registry"
UPLOAD_FOLDER = "LocalUpload"

_OWNERS = {
    JOBS_FOLDER: "a job's folder, written by the scheduler alone",
    REGISTRY_FOLDER: "the registry of models and code, written by the server alone",
}


def server_owned(datastore: str, path: str) -> str | None:
    """Why ``path`` (normalised, relative) of ``datastore`` belongs to the server, or None.

    Compared without case: a local datastore may be on a file system that ignores it.
    """
    if datastore != DEFAULT_DATASTORE:
        return None
    top = path.strip("/").split("/", 1)[0].lower()
    return _OWNERS.get(top)


def upload_of(datastore: str, path: str) -> tuple[str, str] | None:
    """The content hash and name of the upload a path under ``LocalUpload/<hash>/<name>`` of
    the default datastore is in."""
    parts = path.strip("/").split("/")
    if datastore != DEFAULT_DATASTORE or len(parts) < 3:
        return None
    if parts[0].lower() != UPLOAD_FOLDER.lower():
        return None
    return parts[1].lower(), parts[2]
