"""Cloud discovery and the credentials azure-identity can use offline.

- ``GET /metadata/endpoints``: the cloud ``ARM_CLOUD_METADATA_URL`` names (this server as its
  resource manager and login endpoint).
- ``GET /msi/token``: the managed-identity form (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``).
  The header is a secret of the identity: one of its Sluiceway tokens (``sluice azure env``
  prints the caller's). The answer is a token for that identity that never outlives it.
- ``GET /adfs/.well-known/openid-configuration`` and ``POST /adfs/oauth2/token``: client
  secrets through an ADFS-style authority (``AZURE_TENANT_ID=adfs``,
  ``AZURE_AUTHORITY_HOST``), which MSAL reaches without Azure's instance discovery. The token
  route is ``POST /oauth2/token`` itself: the same grant, limits and checks.

Tokens are Sluiceway tokens whatever audience is asked for, but only the audiences this server
answers for are accepted: its resource manager, the invoke audience, and storage.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from sluiceway.errors import AuthenticationError, ValidationError
from sluiceway.server.access import ANY_IDENTITY
from sluiceway.server.arm import shapes
from sluiceway.server.deps import WorkspaceDep
from sluiceway.server.routers import oauth2

public = APIRouter(tags=["azure ml"], generate_unique_id_function=shapes.operation_id)

# The managed-identity endpoint's own credential, declared as its OpenAPI ``security``; read
# without FastAPI's error, so that a missing one gets the server's own message.
IDENTITY_HEADER = APIKeyHeader(
    name="X-IDENTITY-HEADER",
    scheme_name="IdentityHeader",
    description="A Sluiceway token of the identity (`IDENTITY_HEADER` of `sluice azure env`).",
    auto_error=False,
)

STORAGE_AUDIENCE = "https://storage.azure.com"
MSI_API_VERSIONS = ("2019-08-01",)


def audiences(base_url: str) -> tuple[str, ...]:
    return (base_url, shapes.AML_AUDIENCE, STORAGE_AUDIENCE)


def check_audience(resource: str, base_url: str) -> str:
    """Raises: ValidationError for an audience this server does not answer for."""
    wanted = resource.removesuffix("/.default").rstrip("/")
    accepted = audiences(base_url)
    if wanted not in accepted:
        raise ValidationError(
            f"resource {resource!r} is not an audience of this server; accepted: "
            + ", ".join(accepted),
            target="resource",
        )
    return wanted


@public.get("/metadata/endpoints")
def cloud_metadata(ws: WorkspaceDep) -> JSONResponse:
    """The cloud for ``ARM_CLOUD_METADATA_URL``: this server is its resource manager."""
    return JSONResponse(shapes.cloud_metadata(ws.base_url))


@public.get("/msi/token", openapi_extra=ANY_IDENTITY)
def managed_identity_token(
    request: Request,
    ws: WorkspaceDep,
    resource: str = "",
    x_identity_header: Annotated[str | None, Security(IDENTITY_HEADER)] = None,
) -> JSONResponse:
    """A token for the identity whose token ``X-IDENTITY-HEADER`` carries (App Service's
    managed-identity protocol, api-version 2019-08-01)."""
    version = request.query_params.get("api-version", "")
    if version not in MSI_API_VERSIONS:
        raise ValidationError(
            f"api-version {version!r} is not accepted; accepted: {', '.join(MSI_API_VERSIONS)}.",
            target="api-version",
        )
    if not x_identity_header:
        raise AuthenticationError(
            "The managed-identity endpoint needs the X-IDENTITY-HEADER header: set "
            "IDENTITY_HEADER to a token of the identity (see `sluice azure env`).",
            target="X-IDENTITY-HEADER",
        )
    audience = check_audience(resource, ws.base_url)
    caller = ws.authenticate_token(x_identity_header)
    issued = ws.identity_service.create_token(caller.name, not_after=caller.token_expires_on)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "expires_on": str(issued.expires_on),
            "resource": audience,
            "token_type": "Bearer",
            "client_id": caller.id,
        },
        headers={"Cache-Control": "no-store"},
    )


@public.get("/adfs/.well-known/openid-configuration")
def adfs_configuration(ws: WorkspaceDep) -> JSONResponse:
    """What MSAL reads of an ADFS authority: where its token endpoint is."""
    base = ws.base_url
    return JSONResponse(
        {
            "issuer": f"{base}/adfs",
            "authorization_endpoint": f"{base}/adfs/oauth2/authorize",
            "token_endpoint": f"{base}/adfs/oauth2/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": [oauth2.GRANT_TYPE],
            "response_types_supported": ["token"],
            "scopes_supported": ["openid"],
        }
    )


public.post("/adfs/oauth2/token", include_in_schema=False)(oauth2.token)
