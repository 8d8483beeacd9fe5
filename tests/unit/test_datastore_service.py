"""Registering datastores and resolving storage URLs, on a real SQLite store (no storage is
reached: opening a backend only checks its settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.auth.principals import Principal
from sluiceway.errors import ConflictError, ResourceNotFoundError, SluicewayError, ValidationError
from sluiceway.home import WorkspaceHome
from sluiceway.schemas.common import WorkspaceScope
from sluiceway.schemas.datastores import DatastoreCreate
from sluiceway.services.datastores import DatastoreService
from sluiceway.storage.credentials import CredentialCipher
from sluiceway.storage.datastores.azure import AzureContainerDatastore
from sluiceway.storage.datastores.s3 import S3Datastore
from sluiceway.storage.network import PrivateNetworkPolicy
from sluiceway.storage.references import StorageUrlRef
from sluiceway.store.assets import DatastoreStore
from sluiceway.store.db import Database, upgrade

OWNER = Principal("id-1", "owner", "user", (("workspace", "owner"),))
KEY = "c2VjcmV0LWtleS1ub3QtcmVhbA=="
EMULATOR = "http://127.0.0.1:10000"


@pytest.fixture
def service(tmp_path: Path) -> DatastoreService:
    db = Database(f"sqlite:///{tmp_path / 'ws.db'}")
    upgrade(db.engine)
    home = WorkspaceHome(tmp_path / "home")
    home.root.mkdir()
    ds = DatastoreService(
        DatastoreStore(db),
        home,
        WorkspaceScope(),
        CredentialCipher(b"k" * 32),
        blob_emulator_endpoints=(EMULATOR,),
        network=PrivateNetworkPolicy.parse("127.0.0.1"),
        local_roots=(tmp_path,),
    )
    ds.ensure_default("owner")
    return ds


def blob(name: str = "blob_ds", **extra: object) -> DatastoreCreate:
    return DatastoreCreate.model_validate(
        {
            "name": name,
            "type": "azure_blob",
            "account_name": "acct",
            "container_name": "data",
            "credentials": {"account_key": KEY},
            **extra,
        }
    )


def test_credentials_are_sealed_and_never_shown(service: DatastoreService) -> None:
    out, created = service.create_or_update("blob_ds", blob(), OWNER)
    assert created and out.credentials == {"type": "account_key"}
    assert KEY not in out.model_dump_json()
    record = service.record("blob_ds")
    assert record.secret is not None and KEY not in record.secret
    assert KEY not in str(record.config)
    backend = service.backend("blob_ds")
    assert isinstance(backend, AzureContainerDatastore)
    assert backend.credentials == {"account_key": KEY}
    _, created = service.create_or_update("blob_ds", blob(description="again"), OWNER)
    assert not created and service.get("blob_ds").description == "again"


def test_a_tampered_secret_does_not_open() -> None:
    cipher = CredentialCipher(b"k" * 32)
    sealed = cipher.seal({"sas_token": "sv=1&sig=x"})
    assert cipher.open(sealed) == {"sas_token": "sv=1&sig=x"}
    with pytest.raises(SluicewayError, match="cannot be decrypted"):
        CredentialCipher(b"o" * 32).open(sealed)
    with pytest.raises(SluicewayError):
        cipher.open(sealed[:-4] + "AAAA")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "azure_blob", "account_name": "a"}, "container_name"),
        ({"type": "azure_blob", "account_name": "a", "container_name": "c", "bucket": "b"},
         "bucket is not a setting of a azure_blob"),
        ({"type": "s3"}, "bucket"),
        ({"type": "s3", "bucket": "b", "credentials": {"access_key_id": "x"}}, "go together"),
        ({"type": "s3", "bucket": "b", "credentials": {"account_key": "x"}}, "account_key"),
        ({"type": "azure_blob", "account_name": "a", "container_name": "c",
          "credentials": {"account_key": "k", "sas_token": "s"}}, "not both"),
        ({"type": "gcs", "bucket": "b"}, "'gcs' is not known"),
        ({"type": "local", "root": "relative/path"}, "absolute folder"),
        ({"type": "azure_blob", "account_name": "a", "container_name": "c",
          "protocol": "ftp"}, "protocol"),
    ],
)  # fmt: skip
def test_bad_bodies_name_the_field(
    service: DatastoreService, body: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        service.create_or_update(
            "bad", DatastoreCreate.model_validate({"name": "bad", **body}), OWNER
        )
    with pytest.raises(ResourceNotFoundError):
        service.record("bad")


def test_local_roots_may_not_reach_the_workspace_home(
    service: DatastoreService, tmp_path: Path
) -> None:
    for root in (tmp_path, tmp_path / "home", tmp_path / "home" / "blobstore"):
        body = DatastoreCreate(name="near", type="local", root=str(root))
        with pytest.raises(ValidationError, match="workspace home"):
            service.create_or_update("near", body, OWNER)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out, _ = service.create_or_update(
        "elsewhere", DatastoreCreate(name="elsewhere", type="local", root=str(elsewhere)), OWNER
    )
    assert out.root == str(elsewhere)


def test_local_roots_lie_in_the_allowed_folders(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ws.db'}")
    upgrade(db.engine)
    home = WorkspaceHome(tmp_path / "home")
    service = DatastoreService(DatastoreStore(db), home, WorkspaceScope())
    service.ensure_default("owner")
    (home.root / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (home.root / "escape").symlink_to(tmp_path / "elsewhere")
    # By default local datastores lie in the workspace home (never in its own folders).
    out, _ = service.create_or_update("inside", local("inside", home.root / "data"), OWNER)
    assert out.root == str(home.root / "data")
    for root in (tmp_path / "elsewhere", home.root / "escape", Path("/usr")):
        with pytest.raises(ValidationError, match="SLUICEWAY_LOCAL_DATASTORE_ROOTS") as info:
            service.create_or_update("outside", local("outside", root), OWNER)
        assert repr(str(root)) in info.value.message and info.value.target == "root"
    (home.root / "staging").mkdir()
    with pytest.raises(ValidationError, match="keeps for itself"):
        service.create_or_update("staged", local("staged", home.root / "staging"), OWNER)
    with pytest.raises(ResourceNotFoundError):
        service.record("outside")
    # A setting that no longer allows a registered root closes it.
    narrower = DatastoreService(
        DatastoreStore(db), home, WorkspaceScope(), local_roots=(tmp_path / "elsewhere",)
    )
    with pytest.raises(ValidationError, match="SLUICEWAY_LOCAL_DATASTORE_ROOTS"):
        narrower.backend("inside")


def local(name: str, root: Path) -> DatastoreCreate:
    return DatastoreCreate(name=name, type="local", root=str(root))


@pytest.mark.parametrize(
    ("body", "host"),
    [
        ({"type": "s3", "bucket": "b", "endpoint_url": "http://169.254.169.254/"}, "169.254"),
        ({"type": "s3", "bucket": "b", "endpoint_url": "http://localhost:9000"}, "localhost"),
        ({"type": "s3", "bucket": "b", "endpoint_url": "http://[::1]:9000"}, "::1"),
        ({"type": "azure_blob", "account_name": "a", "container_name": "c",
          "endpoint": "http://10.1.2.3:10000/a"}, "10.1.2.3"),
        ({"type": "azure_data_lake_gen2", "account_name": "a", "filesystem": "f",
          "endpoint": "http://0.0.0.0:10000"}, "0.0.0.0"),
    ],
)  # fmt: skip
def test_private_endpoints_are_refused_unless_allowed(
    tmp_path: Path, body: dict[str, object], host: str
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ws.db'}")
    upgrade(db.engine)
    home = WorkspaceHome(tmp_path / "home")
    strict = DatastoreService(DatastoreStore(db), home, WorkspaceScope())
    create = DatastoreCreate.model_validate({"name": "near", **body})
    with pytest.raises(ValidationError, match="SLUICEWAY_ALLOW_PRIVATE_NETWORK") as info:
        strict.create_or_update("near", create, OWNER)
    assert host in info.value.message and info.value.target in ("endpoint", "endpoint_url")
    with pytest.raises(ResourceNotFoundError):
        strict.record("near")
    lenient = DatastoreService(
        DatastoreStore(db), home, WorkspaceScope(), network=PrivateNetworkPolicy.parse("true")
    )
    if host != "169.254":  # a metadata address needs naming, not just "true"
        lenient.create_or_update("near", create, OWNER)
        # ... and is refused again where the settings no longer allow it.
        with pytest.raises(ValidationError, match="SLUICEWAY_ALLOW_PRIVATE_NETWORK"):
            strict.backend("near")


def test_private_storage_urls_are_refused(service: DatastoreService) -> None:
    for url in (
        "http://10.0.0.1/c/a.csv",
        "http://127.0.0.2/c/a.csv",
        "https://169.254.169.254/latest/meta-data",
        "http://[::1]:10000/devstoreaccount1/c/a.csv?sv=1&sig=SECRETSIG",
    ):
        ref = service.parse_reference(url)
        assert isinstance(ref, StorageUrlRef)
        with pytest.raises(ValidationError, match="SLUICEWAY_ALLOW_PRIVATE_NETWORK") as info:
            service.url_location(ref)
        assert "SECRETSIG" not in info.value.message
    # The blob emulator is the operator's own setting: always allowed.
    emulated = service.parse_reference(f"{EMULATOR}/devstoreaccount1/pub/d/f.csv")
    assert isinstance(emulated, StorageUrlRef)
    service.url_location(emulated)


def test_the_default_cannot_be_replaced_or_deleted(service: DatastoreService) -> None:
    with pytest.raises(ConflictError):
        service.create_or_update("workspaceblobstore", blob("workspaceblobstore"), OWNER)
    with pytest.raises(ConflictError):
        service.delete("workspaceblobstore")
    service.create_or_update("blob_ds", blob(), OWNER)
    service.delete("blob_ds")
    with pytest.raises(ResourceNotFoundError):
        service.delete("blob_ds")


def test_the_default_follows_the_settings(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ws.db'}")
    upgrade(db.engine)
    home = WorkspaceHome(tmp_path / "home")
    cipher = CredentialCipher(b"k" * 32)
    settings = {
        "type": "s3",
        "bucket": "shared",
        "endpoint_url": "http://127.0.0.1:9",
        "credentials": {"access_key_id": "a", "secret_access_key": "b"},
    }
    s3 = DatastoreService(DatastoreStore(db), home, WorkspaceScope(), cipher, default=settings)
    s3.ensure_default("owner")
    out = s3.get("workspaceblobstore")
    assert (out.type, out.bucket, out.is_default) == ("s3", "shared", True)
    assert isinstance(s3.backend("workspaceblobstore"), S3Datastore)
    local = DatastoreService(DatastoreStore(db), home, WorkspaceScope(), cipher)
    local.ensure_default("owner")
    assert local.get("workspaceblobstore").type == "local"


def test_storage_urls_go_through_a_matching_datastore(service: DatastoreService) -> None:
    service.create_or_update("blob_ds", blob(), OWNER)
    s3 = DatastoreCreate(name="s3_ds", type="s3", bucket="bkt", endpoint_url="http://127.0.0.1:9")
    service.create_or_update("s3_ds", s3, OWNER)

    def location(url: str) -> tuple[str, str, str | None]:
        ref = service.parse_reference(url)
        assert isinstance(ref, StorageUrlRef)
        loc = service.url_location(ref)
        return loc.datastore, loc.path, loc.url

    assert location("wasbs://data@acct.blob.core.windows.net/a/b.csv") == (
        "blob_ds",
        "a/b.csv",
        None,
    )
    assert location("abfss://data@acct.dfs.core.windows.net/a/") == ("blob_ds", "a", None)
    assert location("https://acct.blob.core.windows.net/data/x%20y.csv") == (
        "blob_ds",
        "x y.csv",
        None,
    )
    assert location("s3://bkt/k/") == ("s3_ds", "k", None)
    # No datastore for the container, or a SAS in the URL: read as given.
    url = "https://acct.blob.core.windows.net/other/a.csv?sv=1&sig=x"
    assert location(url) == ("", "a.csv", url)
    ref = service.parse_reference(url)
    assert isinstance(ref, StorageUrlRef)
    backend = service.url_location(ref).backend
    assert isinstance(backend, AzureContainerDatastore)
    assert backend.url == "https://acct.blob.core.windows.net"
    assert backend.credentials == {"sas_token": "sv=1&sig=x"}
    emulated = service.parse_reference(f"{EMULATOR}/devstoreaccount1/pub/d/f.csv")
    assert isinstance(emulated, StorageUrlRef)
    backend = service.url_location(emulated).backend
    assert isinstance(backend, AzureContainerDatastore)
    assert backend.url == f"{EMULATOR}/devstoreaccount1" and backend.credentials is None
    with pytest.raises(ValidationError, match="leaves the datastore"):
        location("s3://bkt/a/../../b")
    with pytest.raises(ValidationError, match="plain https URL"):
        location("https://example.com/data.csv")


def test_stored_locations_come_back_from_a_job_spec(service: DatastoreService) -> None:
    by_path = service.stored_location({"datastore": "workspaceblobstore", "path": "a/b"})
    assert (by_path.datastore, by_path.path) == ("workspaceblobstore", "a/b")
    url = "s3://anywhere/k/f.csv"
    by_url = service.stored_location({"datastore": "", "path": "k/f.csv", "url": url})
    assert by_url.url == url and isinstance(by_url.backend, S3Datastore)
