"""The access policy: which role grants which action, on which scope, and what a refusal says."""

from __future__ import annotations

import pytest

from sluiceway.auth.policy import (
    GRANTS,
    WORKSPACE,
    Action,
    Grants,
    Role,
    allowing_roles,
    datastore_scope,
    endpoint_scope,
    parse_role,
    parse_scope,
)
from sluiceway.auth.principals import Principal
from sluiceway.errors import PermissionDeniedError, ValidationError

EVERY_ACTION = frozenset(Action)


def test_each_role_grants_what_the_roles_promise() -> None:
    assert GRANTS[Role.OWNER] == EVERY_ACTION
    assert GRANTS[Role.CONTRIBUTOR] == EVERY_ACTION - {Action.ADMINISTER}
    assert GRANTS[Role.INVOKER] == {
        Action.READ,
        Action.INVOKE,
        Action.READ_DATA,
        Action.WRITE_DATA,
    }
    assert GRANTS[Role.READER] == {Action.READ, Action.READ_DATA, Action.READ_JOBS}
    # Only an owner administers; only owners and contributors manage; readers change nothing.
    assert allowing_roles(Action.ADMINISTER) == [Role.OWNER]
    assert allowing_roles(Action.MANAGE) == [Role.OWNER, Role.CONTRIBUTOR]
    assert not GRANTS[Role.READER] & {
        Action.MANAGE,
        Action.INVOKE,
        Action.WRITE_DATA,
        Action.CANCEL_JOBS,
    }
    # An invoker sees only its own jobs; cancelling others' needs more than invoking.
    assert Action.READ_JOBS not in GRANTS[Role.INVOKER]
    assert Action.CANCEL_JOBS not in GRANTS[Role.INVOKER]


@pytest.mark.parametrize("role", list(Role))
def test_a_workspace_role_covers_every_endpoint_and_datastore(role: Role) -> None:
    grants = Grants("someone", ((WORKSPACE, role.value),))
    for action in Action:
        expected = action in GRANTS[role]
        assert grants.allows(action, WORKSPACE) is expected
        assert grants.allows(action, endpoint_scope("any")) is expected
        assert grants.allows(action, datastore_scope("any")) is expected


def test_a_scoped_role_covers_only_its_scope() -> None:
    grants = Grants(
        "alice", ((endpoint_scope("churn"), "invoker"), (datastore_scope("team-a"), "invoker"))
    )
    assert grants.allows(Action.INVOKE, endpoint_scope("churn"))
    assert not grants.allows(Action.INVOKE, endpoint_scope("fraud"))
    assert not grants.allows(Action.INVOKE, WORKSPACE)
    assert grants.allows(Action.READ_DATA, datastore_scope("team-a"))
    assert grants.allows(Action.WRITE_DATA, datastore_scope("team-a"))
    assert not grants.allows(Action.READ_DATA, datastore_scope("team-b"))
    # A role on an endpoint is no role on a datastore of the same name.
    assert not grants.allows(Action.READ_DATA, datastore_scope("churn"))
    assert not grants.allows(Action.MANAGE, endpoint_scope("churn"))
    assert not grants.allows(Action.READ, WORKSPACE)


def test_roles_add_up_and_unknown_roles_grant_nothing() -> None:
    grants = Grants(
        "bob",
        (
            (endpoint_scope("churn"), "reader"),
            (endpoint_scope("churn"), "invoker"),
            (endpoint_scope("fraud"), "superuser"),
        ),
    )
    assert grants.allows(Action.READ_JOBS, endpoint_scope("churn"))
    assert grants.allows(Action.INVOKE, endpoint_scope("churn"))
    assert not grants.allows(Action.READ, endpoint_scope("fraud"))
    assert not Grants("nobody", ()).allows(Action.READ, WORKSPACE)


def test_scopes_allowing_lists_names_or_none_for_all() -> None:
    scoped = Grants(
        "alice",
        (
            (endpoint_scope("churn"), "invoker"),
            (endpoint_scope("fraud"), "reader"),
            (datastore_scope("team-a"), "reader"),
        ),
    )
    assert scoped.scopes_allowing(Action.READ, "endpoint") == {"churn", "fraud"}
    assert scoped.scopes_allowing(Action.INVOKE, "endpoint") == {"churn"}
    assert scoped.scopes_allowing(Action.READ_JOBS, "endpoint") == {"fraud"}
    assert scoped.scopes_allowing(Action.READ, "datastore") == {"team-a"}
    assert scoped.scopes_allowing(Action.WRITE_DATA, "datastore") == set()
    everywhere = Grants("carol", ((WORKSPACE, "reader"), (endpoint_scope("churn"), "owner")))
    assert everywhere.scopes_allowing(Action.READ, "endpoint") is None
    assert everywhere.scopes_allowing(Action.MANAGE, "endpoint") == {"churn"}


def test_a_refusal_names_identity_action_scope_what_and_roles() -> None:
    alice = Principal("id-a", "alice", "user", ((endpoint_scope("churn"), "invoker"),))
    alice.require(Action.INVOKE, endpoint_scope("churn"))
    with pytest.raises(PermissionDeniedError) as denied:
        alice.require(Action.READ_DATA, datastore_scope("team-b"), what="input 'heart_data'")
    error = denied.value
    assert error.status_code == 403
    assert error.target == "input 'heart_data'"
    assert error.message == (
        "Identity 'alice' may not read data on datastore:team-b (input 'heart_data'): it needs "
        "the role owner, contributor, invoker or reader on datastore:team-b (or on the "
        "workspace)."
    )
    with pytest.raises(PermissionDeniedError) as denied:
        alice.require(Action.MANAGE)
    assert denied.value.message == (
        "Identity 'alice' may not manage on the workspace: it needs the role owner or "
        "contributor on the workspace."
    )
    assert denied.value.target == WORKSPACE
    with pytest.raises(PermissionDeniedError, match="role owner on the workspace"):
        alice.require(Action.ADMINISTER)


def test_scopes_and_roles_are_parsed_or_refused_clearly() -> None:
    assert parse_scope(" workspace ") == WORKSPACE
    assert parse_scope("endpoint:churn") == "endpoint:churn"
    assert parse_scope("datastore:team_a.v2") == "datastore:team_a.v2"
    for bad in ("endpoints:churn", "endpoint:", "datastore:../x", "everything"):
        with pytest.raises(ValidationError, match="accepted: 'workspace'") as refused:
            parse_scope(bad)
        assert refused.value.target == "scope"
    assert parse_role(" Invoker ") is Role.INVOKER
    with pytest.raises(ValidationError, match="accepted: owner, contributor, invoker, reader"):
        parse_role("admin")
