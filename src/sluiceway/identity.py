"""Credentials for Sluiceway, named as ``azure.identity``'s.

Code written for Azure changes only its import::

    from sluiceway.identity import ClientSecretCredential, DefaultAzureCredential
    from sluiceway import MLClient

    ml_client = MLClient(DefaultAzureCredential())  # $SLUICEWAY_TOKEN, `sluice login`, or the
                                                    # workspace home's owner token
    ml_client = MLClient(ClientSecretCredential(tenant_id, client_id, client_secret))

``ClientSecretCredential`` gets its tokens from the server's ``POST /oauth2/token`` and renews
them before they expire; ``AzureCliCredential`` is what ``sluice login`` stored.
"""

from __future__ import annotations

from sluiceway.sdk.credentials import (
    AccessToken,
    AzureCliCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
)

__all__ = [
    "AccessToken",
    "AzureCliCredential",
    "ClientSecretCredential",
    "DefaultAzureCredential",
]
