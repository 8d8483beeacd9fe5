"""Identities and role assignments in the store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from sluiceway.auth.client_secrets import hash_secret, verify_secret
from sluiceway.errors import ConflictError
from sluiceway.store.db import Database
from sluiceway.store.identities import IdentityStore

OWNER = ("workspace", "owner")


def test_the_migration_adds_the_identity_columns(db: Database) -> None:
    columns = {c["name"] for c in inspect(db.engine).get_columns("identities")}
    assert {"description", "client_id", "secret_hash", "external_id"} <= columns


def test_lookups_by_name_client_id_and_external_id(db: Database) -> None:
    store = IdentityStore(db)
    sp = store.create(
        "robot",
        "service_principal",
        [],
        description="nightly scoring",
        client_id="c-1",
        secret_hash=hash_secret("s3cret"),
    )
    user = store.create("ana", "user", [("endpoint:e", "invoker")], external_id="oid-ana")
    assert store.get_by_name("robot") == sp
    found = store.get_client("c-1")
    assert found is not None and found.identity.name == "robot"
    assert found.secret_hash is not None and verify_secret("s3cret", found.secret_hash)
    assert store.get_client("c-2") is None
    by_subject = store.get_by_external_id("oid-ana")
    assert by_subject is not None and by_subject.id == user.id
    assert by_subject.roles == (("endpoint:e", "invoker"),)
    assert [i.name for i in store.list_all()] == ["ana", "robot"]


def test_names_client_ids_and_external_ids_are_unique(db: Database) -> None:
    store = IdentityStore(db)
    store.create("a", "service_principal", [], client_id="c-1", external_id="x")
    with pytest.raises(ConflictError):
        store.create("a", "user", [])
    with pytest.raises(ConflictError):
        store.create("b", "user", [], external_id="x")
    with pytest.raises(ConflictError):
        store.create("c", "service_principal", [], client_id="c-1")
    # Several identities without a client id or external id are fine.
    store.create("d", "user", [])
    store.create("e", "user", [])
    assert len(store.list_all()) == 3


def test_assign_is_idempotent_and_lists_by_identity_or_scope(db: Database) -> None:
    store = IdentityStore(db)
    ana = store.create("ana", "user", [])
    bob = store.create("bob", "user", [])
    first, created = store.assign(ana.id, "endpoint:e", "invoker")
    again, created_again = store.assign(ana.id, "endpoint:e", "invoker")
    assert created and not created_again
    assert again.created_at == first.created_at
    store.assign(bob.id, "endpoint:e", "reader")
    store.assign(bob.id, "workspace", "reader")
    on_e = store.assignments(scope="endpoint:e")
    assert [(a.identity, a.role) for a in on_e] == [("ana", "invoker"), ("bob", "reader")]
    assert [a.scope for a in store.assignments(identity_id=bob.id)] == ["endpoint:e", "workspace"]
    assert store.unassign(bob.id, "endpoint:e", "reader")
    assert not store.unassign(bob.id, "endpoint:e", "reader")


def test_delete_takes_the_roles_with_it(db: Database) -> None:
    store = IdentityStore(db)
    ana = store.create("ana", "user", [("endpoint:e", "invoker")])
    assert store.delete(ana.id)
    assert store.get(ana.id) is None
    assert store.assignments(scope="endpoint:e") == []
    assert not store.delete(ana.id)


def test_the_last_workspace_owner_stays(db: Database) -> None:
    store = IdentityStore(db)
    owner = store.create("owner", "user", [OWNER])
    with pytest.raises(ConflictError, match="last identity with the 'owner' role"):
        store.unassign(owner.id, *OWNER)
    with pytest.raises(ConflictError, match="last identity with the 'owner' role"):
        store.delete(owner.id)
    # An owner of an endpoint is not an owner of the workspace.
    other = store.create("other", "user", [("endpoint:e", "owner")])
    with pytest.raises(ConflictError):
        store.delete(owner.id)
    store.assign(other.id, *OWNER)
    assert store.unassign(owner.id, *OWNER)
    with pytest.raises(ConflictError):
        store.unassign(other.id, *OWNER)
    assert store.get(other.id) is not None


def test_two_owners_removing_each_other_at_once_leave_one(db: Database) -> None:
    store = IdentityStore(db)
    a = store.create("a", "user", [OWNER])
    b = store.create("b", "user", [OWNER])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def remove(identity_id: str) -> None:
        barrier.wait()
        try:
            store.unassign(identity_id, *OWNER)
            outcomes.append("removed")
        except ConflictError:
            outcomes.append("refused")

    threads = [threading.Thread(target=remove, args=(i,)) for i in (a.id, b.id)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused", "removed"]
    assert len(store.assignments(scope="workspace")) == 1
