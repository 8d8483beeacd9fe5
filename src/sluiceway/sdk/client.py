"""``MLClient``: the SDK's entry point, shaped like ``azure.ai.ml.MLClient``."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx

from sluiceway.home import WorkspaceHome
from sluiceway.sdk.asset_operations import DataOperations, ModelOperations
from sluiceway.sdk.batch_deployment_operations import BatchDeploymentOperations
from sluiceway.sdk.batch_endpoint_operations import BatchEndpointOperations
from sluiceway.sdk.component_operations import ComponentOperations
from sluiceway.sdk.compute_operations import ComputeOperations
from sluiceway.sdk.connection import (
    Connection,
    Credential,
    find_config_file,
    is_azure_identity,
    resolve_settings,
    token_from_credential,
)
from sluiceway.sdk.credentials import SluicewayCredential
from sluiceway.sdk.datastore_operations import DatastoreOperations
from sluiceway.sdk.environment_operations import EnvironmentOperations
from sluiceway.sdk.identity_operations import IdentityOperations, RoleAssignmentOperations
from sluiceway.sdk.job_operations import JobOperations
from sluiceway.sdk.uploads import Uploader


class MLClient:
    """A client for one Sluiceway server.

    Code written for Azure runs with only the import changed::

        ml_client = MLClient(DefaultAzureCredential(), subscription_id, resource_group, workspace)
        job = ml_client.batch_endpoints.invoke(endpoint_name="heart", input=Input(path="data/"))

    The server is found as :func:`sluiceway.sdk.connection.resolve_connection` describes
    (``endpoint=``, ``$SLUICEWAY_ENDPOINT``, ``config.json``, then the local server in the
    workspace home). The token comes from ``token=``, then ``credential`` (a token string, a
    credential of :mod:`sluiceway.identity` such as ``ClientSecretCredential``, or any object
    with ``get_token(*scopes)``), then ``$SLUICEWAY_TOKEN``, ``config.json``, the credential
    ``sluice login`` stored for the server, and the workspace home's ``token`` file.
    ``sluiceway.identity.DefaultAzureCredential()`` means exactly that order. Each token
    goes only to the server it belongs to (:mod:`sluiceway.sdk.server_address`). An Azure
    credential (``azure.identity``) is asked only when none of those has a token, since Azure
    AD tokens are not Sluiceway tokens.

    The subscription, resource group and workspace names are kept (``config.json`` may give
    them) and otherwise unused: a server serves one workspace.

    Args:
        credential: None, a token string, a :mod:`sluiceway.identity` credential, or an
            object with ``get_token(*scopes)``.
        subscription_id: Kept for compatibility.
        resource_group_name: Kept for compatibility.
        workspace_name: Kept for compatibility.
        endpoint: The server's URL.
        token: The bearer token.
        home: The workspace home to find a local server in.
        connection: A ready connection, used as is (the CLI passes its own).
        transport: An httpx transport instead of the network (tests).
        report: Called with a line of text about uploads (default: silent).
        ca_bundle: The PEM bundle that verifies an https server; default:
            ``$SLUICEWAY_CA_BUNDLE``, the workspace home's bundle for its own server, then
            ``$REQUESTS_CA_BUNDLE`` or ``$SSL_CERT_FILE`` (:mod:`sluiceway.sdk.trust`).

    Raises:
        ServerUnavailableError: no server was found.
        AuthenticationError: no token was found, or the credential failed.
    """

    def __init__(
        self,
        credential: Credential | None = None,
        subscription_id: str | None = None,
        resource_group_name: str | None = None,
        workspace_name: str | None = None,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        home: WorkspaceHome | str | os.PathLike[str] | None = None,
        connection: Connection | None = None,
        transport: httpx.BaseTransport | None = None,
        report: Callable[[str], None] | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._credential = credential
        if connection is None:
            ours = credential if isinstance(credential, SluicewayCredential) else None
            ambient = credential is not None and is_azure_identity(credential)
            explicit = token
            if explicit is None and ours is None and not ambient:
                explicit = token_from_credential(credential)
            settings = resolve_settings(
                endpoint,
                explicit,
                home,
                config_path,
                fallback_credential=credential if ambient else None,
                credential=ours,
                transport=transport,
                ca_bundle=ca_bundle,
            )
            connection = Connection(
                settings.endpoint,
                settings.provider or settings.token,
                transport=transport,
                verify=settings.verify,
            )
            config = settings.config
            subscription_id = subscription_id or config.subscription_id
            resource_group_name = resource_group_name or config.resource_group
            workspace_name = workspace_name or config.workspace_name
        self._connection = connection
        self._subscription_id = subscription_id
        self._resource_group_name = resource_group_name
        self._workspace_name = workspace_name

        uploader = Uploader(connection, report=report)
        self.data = DataOperations(connection, uploader)
        self.models = ModelOperations(connection, uploader)
        self.datastores = DatastoreOperations(connection)
        self.compute = ComputeOperations(connection)
        self.batch_endpoints = BatchEndpointOperations(connection, uploader)
        self.batch_deployments = BatchDeploymentOperations(connection, uploader, self.models)
        self.components = ComponentOperations(connection, uploader)
        self.environments = EnvironmentOperations(connection, uploader)
        self.jobs = JobOperations(connection)
        self.identities = IdentityOperations(connection)
        self.role_assignments = RoleAssignmentOperations(connection)

    @classmethod
    def from_config(
        cls,
        credential: Credential | None = None,
        path: str | os.PathLike[str] | None = None,
        file_name: str | None = None,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        home: WorkspaceHome | str | os.PathLike[str] | None = None,
    ) -> MLClient:
        """A client configured by a ``config.json``, as Azure's ``MLClient.from_config``.

        ``path`` is the file or the folder holding it (also ``.azureml/config.json``);
        without it the current folder is searched, and without a file there the other
        sources apply (environment, local server). ``endpoint`` and ``token`` win over the
        file.

        Raises:
            ValidationError: ``path`` names no config file, or the file is not valid.
        """
        found = find_config_file(path, file_name)
        return cls(credential, endpoint=endpoint, token=token, home=home, config_path=found)

    @property
    def connection(self) -> Connection:
        return self._connection

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return self._connection.endpoint

    @property
    def subscription_id(self) -> str | None:
        return self._subscription_id

    @property
    def resource_group_name(self) -> str | None:
        return self._resource_group_name

    @property
    def workspace_name(self) -> str | None:
        return self._workspace_name

    def studio_sign_in_url(self, page: str = "/ui") -> str:
        """A one-time link that opens the studio's ``page`` in a browser signed in as this
        client's identity (usable once, for two minutes)."""
        answer = self._connection.request("POST", "/ui/sign-in-links", params={"next": page})
        return f"{self.endpoint.rstrip('/')}{answer['path']}"

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> MLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MLClient(endpoint={self.endpoint!r})"
