"""``sluice azure env``: the environment that points the unmodified azure-ai-ml SDK here.

It prints ``export`` lines: the cloud metadata URL (``ARM_CLOUD_METADATA_URL``), the CA bundle
of a self-signed server (``REQUESTS_CA_BUNDLE``), the workspace's coordinates, and credential
variables azure-identity uses offline. By default those are the managed-identity form
(``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``, the header being the caller's own token, a secret
of that identity); with ``--service-principal`` the ADFS-style client-secret form
(``AZURE_TENANT_ID=adfs``, ``AZURE_AUTHORITY_HOST``, ``AZURE_CLIENT_ID`` and the secret from
``$SLUICEWAY_CLIENT_SECRET``). Then ``MLClient(DefaultAzureCredential(), $AZURE_SUBSCRIPTION_ID,
$AZURE_RESOURCE_GROUP, $AZUREML_WORKSPACE_NAME)`` reaches this server.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import ssl
from pathlib import Path

from sluiceway.cli.arguments import Subcommands, add_command, add_group, workspace_home
from sluiceway.cli.context import CommandContext, owner_token
from sluiceway.errors import ServerUnavailableError, ValidationError, error_from_response
from sluiceway.home import WorkspaceHome
from sluiceway.sdk.server_address import ServerAddress

SECRET_ENV = "SLUICEWAY_CLIENT_SECRET"
_WORKSPACE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)$"
)


def _token(context: CommandContext, address: ServerAddress, home: WorkspaceHome) -> str:
    """The current identity's token, only for the server it may be sent to (as every command):
    ``--token`` for the endpoint given with it or the home's server, else the owner's."""
    if context.token:
        if not (address.chosen or address.is_home_server):
            raise address.refuse("--token")
        return context.token
    return owner_token(address, home)


def env(args: argparse.Namespace, context: CommandContext) -> int:
    import httpx

    from sluiceway.sdk.connection import locate_server

    home = workspace_home(args.home)
    address = locate_server(context.endpoint, home=home)
    url = address.url.rstrip("/")
    if not url.startswith("https://"):
        raise ValidationError(
            f"The server at {url} serves plain HTTP; azure-ai-ml sends tokens only over HTTPS. "
            "Start it with `sluice server start --tls` (or SLUICEWAY_TLS_CERT/_KEY).",
            target="endpoint",
        )
    # Before any request: the token goes only to the server it belongs to.
    token = _token(context, address, home)
    given = getattr(args, "ca_bundle", None)  # the common --ca-bundle: printed for clients too
    bundle = Path(given) if given else home.ca_bundle
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(bundle)) if bundle.exists() else True
    )
    try:
        discovery = httpx.get(f"{url}/azureml/discovery", timeout=10, verify=verify).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServerUnavailableError(f"Could not read {url}/azureml/discovery: {exc}") from None
    found = _WORKSPACE.match(str(discovery.get("workspaceId", "")))
    if found is None:
        raise ServerUnavailableError(f"{url} did not say which workspace it serves.")
    lines = {
        "ARM_CLOUD_METADATA_URL": f"{url}/metadata/endpoints?api-version=2019-05-01",
        "AZURE_SUBSCRIPTION_ID": found["sub"],
        "AZURE_RESOURCE_GROUP": found["rg"],
        "AZUREML_WORKSPACE_NAME": found["ws"],
    }
    if bundle.exists():
        lines["REQUESTS_CA_BUNDLE"] = str(bundle)
    if args.service_principal:
        secret = os.environ.get(SECRET_ENV)
        if not secret:
            raise ValidationError(
                f"--service-principal needs the principal's client secret in ${SECRET_ENV} "
                "(it is shown once, by `sluice identity create` or `rotate-secret`).",
                target="service-principal",
            )
        answer = httpx.get(
            f"{url}/identities/{args.service_principal}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            verify=verify,
        )
        if answer.status_code != 200:
            raise error_from_response(answer.status_code, answer.json())
        client_id = answer.json().get("client_id")
        if not client_id:
            raise ValidationError(
                f"Identity {args.service_principal!r} is not a service principal.",
                target="service-principal",
            )
        lines.update(
            AZURE_TENANT_ID="adfs",
            AZURE_AUTHORITY_HOST=url,
            AZURE_CLIENT_ID=str(client_id),
            AZURE_CLIENT_SECRET=secret,
        )
    else:
        lines.update(IDENTITY_ENDPOINT=f"{url}/msi/token", IDENTITY_HEADER=token)
    for key, value in lines.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def register(subcommands: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add the ``azure`` group."""
    commands = add_group(subcommands, "azure", "Use the azure-ai-ml SDK with this server.")
    parser = add_command(
        commands,
        "env",
        "Print the export lines that point azure-ai-ml and azure-identity at this server.",
        env,
        common,
    )
    parser.add_argument(
        "--home", metavar="DIR", help="the workspace home of the server (default: $SLUICEWAY_HOME)"
    )
    parser.add_argument(
        "--service-principal",
        metavar="NAME",
        help=f"credentials of this service principal (its secret from ${SECRET_ENV}) instead "
        "of the current identity's managed-identity form",
    )
