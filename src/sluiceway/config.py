"""Server settings, from ``SLUICEWAY_*`` environment variables and ``sluice server start`` flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluiceway.home import WorkspaceHome, default_home
from sluiceway.schemas.common import WorkspaceScope


class Settings(BaseSettings):
    """Everything the server reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="SLUICEWAY_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None  # default: sqlite:///<home>/workspace.db
    host: str = "127.0.0.1"
    port: int = 8765
    public_url: str | None = None  # the URL clients use, when it differs from host:port

    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    resource_group: str = "sluiceway"
    workspace_name: str = "default"

    executor: str = "local"
    scheduler_enabled: bool = True
    scheduler_poll_seconds: float = 0.5
    lease_seconds: float = 30.0
    max_concurrent_jobs: int = 2

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
    def effective_staging_dir(self) -> Path:
        return self.staging_dir or self.home / "staging"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workspace.database}"
