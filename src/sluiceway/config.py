"""Server settings, from ``SLUICEWAY_*`` environment variables and ``sluice server start`` flags."""

from __future__ import annotations

from pathlib import Path

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

    @property
    def workspace(self) -> WorkspaceHome:
        return WorkspaceHome(self.home)

    @property
    def scope(self) -> WorkspaceScope:
        return WorkspaceScope(self.subscription_id, self.resource_group, self.workspace_name)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workspace.database}"
