"""A workspace shared by several server processes: a PostgreSQL database of its own, one key
file, and the S3 server as the default datastore."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.databases import postgres_database
from tests.integration.storage_services import S3_KEY, S3_SECRET, make_bucket, s3_url


@dataclass(frozen=True)
class SharedWorkspace:
    """What every process of the workspace is given."""

    database_url: str
    key_file: Path
    bucket: str | None

    def env(self, **more: str) -> dict[str, str]:
        env = {
            "SLUICEWAY_DATABASE_URL": self.database_url,
            "SLUICEWAY_SECRET_KEY_FILE": str(self.key_file),
            "SLUICEWAY_SPARE_WORKERS": "0",
            "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "127.0.0.1",
        }
        if self.bucket is not None:
            env["SLUICEWAY_DEFAULT_DATASTORE"] = json.dumps(
                {
                    "type": "s3",
                    "bucket": self.bucket,
                    "endpoint_url": s3_url(),
                    "credentials": {"access_key_id": S3_KEY, "secret_access_key": S3_SECRET},
                }
            )
        return {**env, **more}


@contextmanager
def shared_workspace(folder: Path, *, s3: bool = True) -> Iterator[SharedWorkspace]:
    """A new database, a key file and (with ``s3``) a new bucket for the default datastore."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "workspace.key"
    key_file.write_text(secrets.token_hex(32) + "\n")
    key_file.chmod(0o600)
    bucket = make_bucket("shared") if s3 else None
    with postgres_database() as url:
        yield SharedWorkspace(url, key_file, bucket)
