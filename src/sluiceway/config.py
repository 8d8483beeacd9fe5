"""Server settings, from ``SLUICEWAY_*`` environment variables and ``sluice server start`` flags."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluiceway.home import WorkspaceHome, default_home
from sluiceway.schemas.common import WorkspaceScope
from sluiceway.storage.network import PrivateNetworkPolicy


class ServerRole(StrEnum):
    """What a server process runs: the API, the scheduler (with its workers), or both."""

    ALL = "all"
    API = "api"
    SCHEDULER = "scheduler"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """Everything the server reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="SLUICEWAY_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None  # default: sqlite:///<home>/workspace.db
    host: str = "127.0.0.1"
    port: int = 8765
    public_url: str | None = None  # the URL clients use, when it differs from host:port
    # HTTPS: a certificate and key (PEM files), or ``tls`` for a self-signed certificate made
    # in <home>/tls/ with SANs for loopback, this machine, the host and ``tls_hosts``
    # (comma-separated). The azure-ai-ml SDK needs HTTPS; Sluiceway's own clients do not.
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_hosts: str = ""

    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "sluiceway"
    workspace_name: str = "default"

    # What this process runs (README, "Running several servers"): ``all`` (the API and a
    # scheduler), ``api`` or ``scheduler``. Every role answers /healthz, /readyz and /metrics.
    role: ServerRole = ServerRole.ALL
    # The workspace's key (signs tokens, encrypts stored credentials): a file holding it, or
    # the key itself, as hex; else <home>/secret.key, made on first start for a SQLite
    # workspace only. Every process of a workspace must have the same one.
    secret_key_file: Path | None = None
    secret_key: SecretStr | None = None
    # How the process logs: ``text`` or ``json`` (one object a line); both name the pid and role.
    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"

    executor: str = "local"
    scheduler_enabled: bool = True
    scheduler_poll_seconds: float = 0.5
    lease_seconds: float = 30.0
    max_concurrent_jobs: int = 2
    # Worker processes: at most this many for one job (an invocation's Compute.InstanceCount
    # times the deployment's max_concurrency_per_instance; more is refused), and in all for the
    # jobs running at once (each of max_concurrent_jobs jobs gets its share).
    max_workers_per_job: int = Field(
        default_factory=lambda: max(4, 2 * (os.cpu_count() or 1)), ge=1
    )
    max_workers: int = Field(default_factory=lambda: max(8, 4 * (os.cpu_count() or 1)), ge=1)
    # Workers a job is done with stay up (model loaded) this long for the next job of the same
    # deployment, model, code and settings; 0 stops them with their job. At most this many
    # pools are kept at once.
    worker_idle_seconds: float = Field(default=300.0, ge=0)
    max_idle_worker_pools: int = Field(default=4, ge=0)
    # Processes started ahead, with the MLflow scorer's modules (NumPy, pandas) imported, that
    # jobs of MLflow deployments take instead of starting workers; 0 starts none. More modules
    # for them to import, comma-separated; those not installed are skipped. scikit-learn (in
    # the mlflow extra) is what most MLflow models load.
    spare_workers: int = Field(default=2, ge=0)
    # The CPUs each Ray actor of a job asks its cluster for (a ray compute's workers).
    ray_actor_cpus: float = Field(default=0.5, gt=0)
    # Send this server's Sluiceway code to a ray compute's actors (Ray's py_modules) rather
    # than use the Sluiceway installed on the nodes, which then need only Ray and Sluiceway's
    # dependencies.
    ray_ship_code: bool = False
    # Where a ray compute's nodes build deployments' environments: a folder on each node
    # (environment_build_offline applies there too; uv is each node's own). Unset:
    # <the node's temp dir>/sluiceway-ray-environments.
    ray_environments_dir: str | None = None
    worker_preload: str = "sklearn"
    # The OS user (name or uid) workers and pipeline steps run as. A server running as root
    # uses "nobody" when unset; a server not running as root refuses to start when it is set.
    worker_user: str | None = None

    # Where workspaceblobstore lives: unset for <home>/blobstore, else a datastore in the YAML
    # shape as JSON, e.g. {"type": "s3", "bucket": "b", "endpoint_url": "http://...",
    # "credentials": {"access_key_id": "...", "secret_access_key": "..."}}.
    default_datastore: dict[str, Any] | None = None
    # Blob emulators (Azurite) whose path-style URLs <endpoint>/<account>/<container>/<path> are
    # read as Azure Blob URLs; comma-separated, e.g. http://127.0.0.1:10000.
    blob_emulator_endpoints: str = ""
    # Remote input files are fetched into <staging_dir> (default <home>/staging) ahead of the
    # mini-batch that reads them; this bounds what the cache holds at once.
    staging_dir: Path | None = None
    staging_cache_bytes: int = 2 << 30
    # Deployments' environments are built with uv into <environments_dir> (default
    # <home>/environments); environments no deployment uses are evicted beyond this size.
    # Offline builds use no package index (local wheels and uv's cache only). uv is found on
    # PATH, next to the server's interpreter or as the uv package, unless named here.
    environments_dir: Path | None = None
    environment_cache_bytes: int = Field(default=20 << 30, ge=0)
    environment_build_offline: bool = False
    uv: str | None = None
    # Checks made while a caller waits (an input or a data asset's path exists): each storage
    # request gives up after this many seconds and is not retried. At most this many requests
    # check storage at once, on threads of their own, so that a slow store cannot hold the
    # threads every other request needs.
    storage_check_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    storage_check_threads: int = Field(default=8, ge=1, le=256)

    # Security (README, "Security settings"). Hosts a caller's URLs and datastore endpoints may
    # resolve to besides public ones: false, true, or hosts and networks, comma-separated.
    allow_private_network: str = "false"
    # Folders that local datastores' roots must lie in, comma-separated; default: the home.
    local_datastore_roots: str = ""
    # The largest request body: JSON bodies, and files written by PUT /datastores/.../files/.
    max_body_bytes: int = Field(default=1 << 20, ge=0)
    max_upload_bytes: int = Field(default=5 << 30, ge=0)
    # Requests a minute to POST /oauth2/token, per client id and per client address (each
    # server process counts its own); 0 turns the limit off.
    token_requests_per_client: int = Field(default=20, ge=0)
    token_requests_per_address: int = Field(default=60, ge=0)

    @field_validator("allow_private_network")
    @classmethod
    def _private_network_parses(cls, value: str) -> str:
        PrivateNetworkPolicy.parse(value)
        return value

    # An external OpenID Connect issuer whose tokens are accepted besides the workspace's own:
    # its exact ``iss``, the ``aud`` its tokens must carry, and where its keys are (default:
    # the jwks_uri of <issuer>/.well-known/openid-configuration). A token's ``oid`` (else its
    # ``sub``) names the identity whose external_id it is.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None

    @model_validator(mode="after")
    def _oidc_needs_an_audience(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError(
                "SLUICEWAY_OIDC_ISSUER is set but SLUICEWAY_OIDC_AUDIENCE is not: set the "
                "audience (aud) that the issuer's tokens for this service carry."
            )
        return self

    @model_validator(mode="after")
    def _cert_needs_a_key(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "SLUICEWAY_TLS_CERT and SLUICEWAY_TLS_KEY go together: give both files, or "
                "neither (SLUICEWAY_TLS=true makes a self-signed certificate)."
            )
        return self

    @property
    def serves_tls(self) -> bool:
        return self.tls or self.tls_cert is not None

    @property
    def extra_tls_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.tls_hosts.split(",") if h.strip())

    @property
    def job_worker_share(self) -> int:
        """The most workers one job runs, so that the jobs running at once stay within
        ``max_workers``."""
        share = self.max_workers // max(1, self.max_concurrent_jobs)
        return max(1, min(self.max_workers_per_job, share))

    @property
    def runs_api(self) -> bool:
        return self.role in (ServerRole.ALL, ServerRole.API)

    @property
    def runs_scheduler(self) -> bool:
        return self.scheduler_enabled and self.role in (ServerRole.ALL, ServerRole.SCHEDULER)

    @property
    def shared_database(self) -> bool:
        """Whether the database may be shared with other processes (anything but SQLite)."""
        return not self.effective_database_url.startswith("sqlite")

    @property
    def workspace(self) -> WorkspaceHome:
        return WorkspaceHome(self.home)

    @property
    def scope(self) -> WorkspaceScope:
        return WorkspaceScope(self.subscription_id, self.resource_group, self.workspace_name)

    @property
    def emulator_endpoints(self) -> tuple[str, ...]:
        return tuple(
            e.strip().rstrip("/") for e in self.blob_emulator_endpoints.split(",") if e.strip()
        )

    @property
    def private_network(self) -> PrivateNetworkPolicy:
        """Private hosts the server may reach for callers: the setting, plus blob emulators."""
        policy = PrivateNetworkPolicy.parse(self.allow_private_network)
        return policy.with_endpoints(self.emulator_endpoints)

    @property
    def local_roots(self) -> tuple[Path, ...]:
        """Folders local datastores may be in (the workspace home unless set)."""
        roots = [r.strip() for r in self.local_datastore_roots.split(",") if r.strip()]
        return tuple(Path(r).expanduser() for r in roots) or (self.home,)

    @property
    def effective_staging_dir(self) -> Path:
        return self.staging_dir or self.home / "staging"

    @property
    def effective_environments_dir(self) -> Path:
        return self.environments_dir or self.home / "environments"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workspace.database}"
