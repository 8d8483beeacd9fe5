"""Which scope governs reading a location: its datastore, or the workspace for a bare URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.auth.principals import Principal
from sluiceway.errors import PermissionDeniedError
from sluiceway.services.data_access import location_scope, require_read, require_write
from sluiceway.storage.datastores.local import LocalDatastore
from sluiceway.storage.locations import Location

ALICE = Principal("id-a", "alice", "user", (("datastore:team-a", "invoker"),))


def test_a_datastore_location_is_governed_by_its_datastore(tmp_path: Path) -> None:
    location = Location("team-a", "in/data.csv", LocalDatastore(tmp_path))
    assert location_scope(location) == "datastore:team-a"
    require_read(ALICE, location, "input 'x'")
    require_write(ALICE, "team-a", "output 'y'")
    with pytest.raises(PermissionDeniedError, match=r"write data on datastore:team-b \(output"):
        require_write(ALICE, "team-b", "output 'y'")


def test_a_storage_url_of_no_datastore_needs_the_workspace(tmp_path: Path) -> None:
    url = "https://acct.blob.core.windows.net/public/data/"
    location = Location("", "data", LocalDatastore(tmp_path), url=url)
    assert location_scope(location) == "workspace"
    with pytest.raises(PermissionDeniedError) as denied:
        require_read(ALICE, location, "input 'x'")
    assert "may not read data on the workspace (input 'x')" in denied.value.message
    reader = Principal("id-r", "rita", "user", (("workspace", "reader"),))
    require_read(reader, location, "input 'x'")
