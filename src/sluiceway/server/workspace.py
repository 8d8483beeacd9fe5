"""One workspace's services, wired once per server process."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import text

from sluiceway.auth.oidc import ExternalIssuer
from sluiceway.auth.principals import Principal, authenticate, authenticate_token, ensure_owner
from sluiceway.auth.signed_urls import UrlSigner
from sluiceway.auth.tokens import TokenIssuer
from sluiceway.auth.workspace_key import load_workspace_key
from sluiceway.config import Settings
from sluiceway.environments.cache import EnvironmentCache, JobEnvironments
from sluiceway.executors.base import Executor
from sluiceway.executors.computes import ComputeExecutors
from sluiceway.executors.isolation import WorkerIsolation
from sluiceway.executors.ray_cluster import RayConnection
from sluiceway.scheduler.loop import Scheduler
from sluiceway.schemas.common import DEFAULT_DATASTORE
from sluiceway.server.metrics import ServerMetrics
from sluiceway.services.assets import AssetService
from sluiceway.services.components import ComponentService
from sluiceway.services.computes import ComputeService
from sluiceway.services.data_access import InvokerAccess
from sluiceway.services.datastores import DatastoreService
from sluiceway.services.endpoints import EndpointService
from sluiceway.services.environments import EnvironmentService
from sluiceway.services.files import FileService
from sluiceway.services.identities import IdentityService
from sluiceway.services.invoke import InvokeService
from sluiceway.services.jobs import JobService
from sluiceway.services.pipeline_invoke import PipelineInvoker
from sluiceway.services.registry import Registry
from sluiceway.services.resolver import InputResolver
from sluiceway.services.role_assignments import RoleAssignmentService
from sluiceway.services.signed_access import SignedAccess
from sluiceway.storage.credentials import CredentialCipher
from sluiceway.storage.redaction import describe_error
from sluiceway.store.assets import AssetStore, DatastoreStore
from sluiceway.store.components import ComponentStore
from sluiceway.store.computes import ComputeStore
from sluiceway.store.db import Database
from sluiceway.store.endpoints import EndpointStore
from sluiceway.store.environments import EnvironmentStore
from sluiceway.store.files import FileWriterStore, SnapshotStore
from sluiceway.store.identities import IdentityStore
from sluiceway.store.jobs import JobStore
from sluiceway.store.notifications import JobNotifications
from sluiceway.store.startup import prepare, startup_lock
from sluiceway.store.steps import StepStore

logger = logging.getLogger("sluiceway.server")
_T = TypeVar("_T")


def make_executor(
    name: str, settings: Settings, isolation: WorkerIsolation | None = None
) -> Executor:
    if name == "local":
        from sluiceway.executors.local import LocalExecutor
        from sluiceway.runtime.scoring import MLFLOW_SCORER_MODULE

        listed = (m.strip() for m in settings.worker_preload.split(","))
        extra = tuple(m for m in listed if m and importlib.util.find_spec(m) is not None)
        # Spares serve MLflow deployments, which need the mlflow extra (pandas) installed.
        spares = settings.spare_workers if importlib.util.find_spec("pandas") else 0
        return LocalExecutor(
            idle_seconds=settings.worker_idle_seconds,
            max_idle_pools=settings.max_idle_worker_pools,
            run_dir=settings.effective_staging_dir / "pools",
            spare_workers=spares,
            preload=(MLFLOW_SCORER_MODULE, *extra),
            isolation=isolation,
        )
    from sluiceway.errors import UnsupportedError

    raise UnsupportedError(
        f"Executor {name!r} is not supported; accepted: local. Jobs run on a Ray cluster "
        "through a registered compute of type ray (sluice compute create), named by the "
        "deployment's compute.",
        target="executor",
    )


def make_ray_executor(settings: Settings) -> Callable[[str, str], Executor]:
    """Makes the executor of a Ray compute, from its name and address."""

    def make(name: str, address: str) -> Executor:
        from sluiceway.executors.ray import RayExecutor

        return RayExecutor(
            name,
            address,
            actor_cpus=settings.ray_actor_cpus,
            idle_seconds=settings.worker_idle_seconds,
            max_idle_pools=settings.max_idle_worker_pools,
            environments_root=settings.ray_environments_dir,
            offline_builds=settings.environment_build_offline,
        )

    return make


def worker_isolation(settings: Settings) -> WorkerIsolation:
    """How this server's workers run: checked by starting one (see ``executors/isolation``).

    Raises:
        ValidationError: the ``worker_user`` setting cannot be honoured.
    """
    home = settings.workspace
    secrets = [home.secret_key, home.token]
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///"))
        secrets += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    shared = [settings.effective_staging_dir]
    if settings.default_datastore is None:
        shared.append(home.blobstore)
    shared += [root for root in settings.local_roots if root.resolve() != home.root.resolve()]
    for folder in shared:
        folder.mkdir(parents=True, exist_ok=True)
    return WorkerIsolation.for_server(
        worker_user=settings.worker_user, home=home.root, secrets=secrets, shared=shared
    )


def external_issuer(settings: Settings) -> ExternalIssuer | None:
    """The OpenID Connect issuer the settings name, if any."""
    if not settings.oidc_issuer or not settings.oidc_audience:
        return None
    return ExternalIssuer(
        settings.oidc_issuer, settings.oidc_audience, jwks_url=settings.oidc_jwks_url
    )


@dataclass
class Workspace:
    settings: Settings
    base_url: str
    db: Database = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        home = settings.workspace
        home.root.mkdir(parents=True, exist_ok=True)
        self.home = home
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        key = load_workspace_key(
            home,
            key=secret,
            key_file=settings.secret_key_file,
            may_create=not settings.shared_database,
        )
        self.db = Database(settings.effective_database_url)
        try:
            # One process at a time checks, migrates and creates the owner and the default
            # datastore, however many start together.
            with startup_lock(self.db):
                prepare(self.db, key.fingerprint)
                self._wire(key.secret)
        except BaseException:
            self.db.dispose()
            raise
        if settings.shared_database and settings.default_datastore is None:
            logger.warning(
                "The database is shared but the default datastore is the home's folder %s: "
                "processes with another home will not see its files; set "
                "SLUICEWAY_DEFAULT_DATASTORE to an object store.",
                home.blobstore,
            )

    def _wire(self, workspace_key: bytes) -> None:
        settings = self.settings
        home = self.home
        scope = settings.scope
        self.issuer = TokenIssuer(workspace_key, issuer=f"sluiceway:{scope.workspace_name}")
        self.identities = IdentityStore(self.db)
        self.signed = SignedAccess(UrlSigner(workspace_key), self.identities)
        self.external_issuer = external_issuer(settings)
        self.owner = ensure_owner(home, self.issuer, self.identities)
        self.identity_service = IdentityService(self.identities, self.issuer)
        self.datastores = DatastoreService(
            DatastoreStore(self.db),
            home,
            scope,
            CredentialCipher(workspace_key),
            default=settings.default_datastore,
            blob_emulator_endpoints=settings.emulator_endpoints,
            staging_dir=settings.effective_staging_dir,
            staging_cache_bytes=settings.staging_cache_bytes,
            network=settings.private_network,
            local_roots=settings.local_roots,
            check_timeout=settings.storage_check_timeout_seconds,
        )
        self.datastores.ensure_default(self.owner.name)
        registry = Registry(SnapshotStore(self.db), self.datastores)
        asset_store = AssetStore(self.db)
        self.assets = AssetService(asset_store, self.datastores, scope, registry)
        self.files = FileService(self.datastores, FileWriterStore(self.db), asset_store)
        self.components = ComponentService(
            ComponentStore(self.db), self.datastores, scope, registry
        )
        cache = EnvironmentCache(
            settings.effective_environments_dir,
            uv=[settings.uv] if settings.uv else None,
            max_bytes=settings.environment_cache_bytes,
            offline=settings.environment_build_offline,
            in_use=lambda: self.endpoints.environment_hashes(),
        )
        self.environments = EnvironmentService(
            EnvironmentStore(self.db), cache, self.datastores, registry, scope
        )
        RayConnection.ship_code(settings.ray_ship_code)  # before any connection
        self.computes = ComputeService(ComputeStore(self.db), scope)
        self.endpoints = EndpointService(
            EndpointStore(self.db),
            self.assets,
            self.datastores,
            scope,
            self.base_url,
            registry,
            components=self.components,
            max_workers_per_job=settings.max_workers_per_job,
            environments=self.environments,
            computes=self.computes,
        )
        self.role_assignments = RoleAssignmentService(
            self.identities,
            self.identity_service,
            {
                "endpoint": lambda name: getattr(EndpointStore(self.db).get(name), "id", None),
                "datastore": lambda name: getattr(DatastoreStore(self.db).get(name), "id", None),
            },
        )
        self.job_store = JobStore(self.db)
        self.step_store = StepStore(self.db)
        self.jobs = JobService(
            self.job_store, self.datastores, scope, self.base_url, steps=self.step_store
        )
        resolver = InputResolver(self.datastores, self.assets, scope)
        self.invocations = InvokeService(
            self.endpoints,
            self.assets,
            resolver,
            self.job_store,
            scope,
            pipelines=PipelineInvoker(
                self.components, resolver, self.assets, scope, environments=self.environments
            ),
            computes=self.computes,
            max_workers_per_job=settings.max_workers_per_job,
            environments=self.environments,
        )
        self.metrics = ServerMetrics(self.job_store.counts_by_status)
        self.scheduler: Scheduler | None = None
        #: Threads for requests that check storage while the caller waits (invoking, registering
        #: data and models): apart from the threads every other request runs on.
        self.storage_checks = anyio.CapacityLimiter(settings.storage_check_threads)
        self.notifications: JobNotifications | None = None

    async def checking_storage(self, call: Callable[[], _T]) -> _T:
        """Run ``call``, which checks storage, on a storage-check thread."""
        return await anyio.to_thread.run_sync(call, limiter=self.storage_checks)

    def authenticate(self, authorization: str | None) -> Principal:
        return authenticate(
            authorization, self.issuer, self.identities, external=self.external_issuer
        )

    def authenticate_token(self, token: str) -> Principal:
        return authenticate_token(
            token, self.issuer, self.identities, external=self.external_issuer
        )

    def renew_home_token(self) -> None:
        """Write a new owner token to ``<home>/token`` if the one there no longer works (its
        tokens were revoked, say)."""
        ensure_owner(self.home, self.issuer, self.identities)

    def start(self) -> None:
        self.environments.build_missing(self.endpoints.environment_contents())
        if self.settings.runs_scheduler:
            isolation = worker_isolation(self.settings)
            local = make_executor(self.settings.executor, self.settings, isolation)
            self.scheduler = Scheduler(
                store=self.job_store,
                datastores=self.datastores,
                executor=local,
                computes=ComputeExecutors(local, make_ray_executor(self.settings)),
                lease_seconds=self.settings.lease_seconds,
                poll_seconds=self.settings.scheduler_poll_seconds,
                max_jobs=self.settings.max_concurrent_jobs,
                max_job_workers=self.settings.job_worker_share,
                steps=self.step_store,
                access=InvokerAccess(self.identities),
                observer=self.metrics,
                environments=JobEnvironments(self.environments.cache, self.environments.fetch_file),
            )
            self.scheduler.start()
            if self.db.is_postgres:
                scheduler = self.scheduler
                self.notifications = JobNotifications(
                    self.db.url, on_queued=scheduler.wake, on_cancel=scheduler.cancel_requested
                )
                self.notifications.start()

    def readiness(self) -> dict[str, str]:
        """Whether the database and the default datastore answer: "ok", or why not."""
        checks: dict[str, str] = {}
        try:
            with self.db.read_connection() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = describe_error(exc)
        try:
            root = self.datastores.location(DEFAULT_DATASTORE, "")
            fs = root.backend.fs
            fs.invalidate_cache()
            if not fs.exists(root.full_path.rstrip("/") or "/"):
                raise FileNotFoundError(f"{root.uri} does not exist")
            checks["default_datastore"] = "ok"
        except Exception as exc:
            checks["default_datastore"] = describe_error(exc)
        return checks

    def job_queued(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    def close(self) -> None:
        if self.notifications is not None:
            self.notifications.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.environments.close()
        self.db.dispose()
