"""The default datastore's name and the short datastore URI: plain strings, so what runs on a
Ray node (the actors' runtime) reads them without the server's dependencies."""

from __future__ import annotations

DEFAULT_DATASTORE = "workspaceblobstore"


def datastore_uri(datastore: str, path: str) -> str:
    """The short ``azureml://datastores/<ds>/paths/<p>`` form."""
    return f"azureml://datastores/{datastore}/paths/{path.lstrip('/')}"


__all__ = ["DEFAULT_DATASTORE", "datastore_uri"]
