"""Who may do what, where: roles, the actions they grant, and the scopes they are granted on.

A role is granted on a scope: the whole ``workspace``, one ``endpoint:<name>`` or one
``datastore:<name>``. A grant on the workspace covers every endpoint and datastore in it. The
check is one method, :meth:`Grants.require` (``Principal.require``), which every route and the
invoke path call; a refusal is a 403 that names the identity, the action, the scope and what
was asked for, and the roles that would allow it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sluiceway.errors import PermissionDeniedError, ValidationError

WORKSPACE = "workspace"
SCOPE_KINDS = ("endpoint", "datastore")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


class Role(StrEnum):
    OWNER = "owner"
    CONTRIBUTOR = "contributor"
    INVOKER = "invoker"
    READER = "reader"


class Action(StrEnum):
    """What a caller does. Reading a job the caller created needs no grant."""

    READ = "read"  # show and list resources: datastores, data, models, components, endpoints
    MANAGE = "manage"  # create, update and delete those resources
    INVOKE = "invoke"  # start a job on an endpoint
    READ_DATA = "read data"  # read files in a datastore: job inputs, downloads
    WRITE_DATA = "write data"  # write files into a datastore: job outputs, uploads
    READ_JOBS = "read jobs"  # read any job of an endpoint, not only one's own
    CANCEL_JOBS = "cancel jobs"  # cancel any job of an endpoint, not only one's own
    ADMINISTER = "administer"  # identities, tokens for others and role assignments


GRANTS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.CONTRIBUTOR: frozenset(Action) - {Action.ADMINISTER},
    Role.INVOKER: frozenset({Action.READ, Action.INVOKE, Action.READ_DATA, Action.WRITE_DATA}),
    Role.READER: frozenset({Action.READ, Action.READ_DATA, Action.READ_JOBS}),
}


def endpoint_scope(name: str) -> str:
    return f"endpoint:{name}"


def datastore_scope(name: str) -> str:
    return f"datastore:{name}"


def parse_scope(scope: str) -> str:
    """A scope in its canonical form.

    Raises:
        ValidationError: not ``workspace``, ``endpoint:<name>`` or ``datastore:<name>``.
    """
    text = scope.strip()
    if text == WORKSPACE:
        return text
    kind, sep, name = text.partition(":")
    if sep and kind in SCOPE_KINDS and _NAME.fullmatch(name):
        return f"{kind}:{name}"
    raise ValidationError(
        f"Scope {scope!r} is not accepted; accepted: 'workspace', 'endpoint:<name>' or "
        "'datastore:<name>'.",
        target="scope",
    )


def parse_role(role: str) -> Role:
    """Raises: ValidationError naming the accepted roles."""
    try:
        return Role(role.strip().lower())
    except ValueError:
        accepted = ", ".join(r.value for r in Role)
        raise ValidationError(
            f"Role {role!r} is not accepted; accepted: {accepted}.", target="role"
        ) from None


@dataclass(frozen=True)
class Grants:
    """The roles an identity holds, as ``(scope, role)`` pairs, and what they allow."""

    identity: str
    roles: tuple[tuple[str, str], ...]

    def allows(self, action: Action, scope: str) -> bool:
        """Whether a role on ``scope`` or on the workspace grants ``action``."""
        for held_scope, role in self.roles:
            if held_scope not in (scope, WORKSPACE):
                continue
            try:
                if action in GRANTS[Role(role)]:
                    return True
            except ValueError:
                continue
        return False

    def scopes_allowing(self, action: Action, kind: str) -> set[str] | None:
        """Names of the ``kind`` resources (``endpoint`` or ``datastore``) on which ``action`` is
        allowed; None means all of them (a workspace grant)."""
        if self.allows(action, WORKSPACE):
            return None
        names = set()
        for held_scope, _role in self.roles:
            held_kind, _, name = held_scope.partition(":")
            if held_kind == kind and self.allows(action, held_scope):
                names.add(name)
        return names

    def require(self, action: Action, scope: str = WORKSPACE, *, what: str | None = None) -> None:
        """Raises: PermissionDeniedError naming the action, scope, ``what`` and allowing roles."""
        if self.allows(action, scope):
            return
        raise PermissionDeniedError(
            refusal(self.identity, action, scope, what), target=what or scope
        )


def allowing_roles(action: Action) -> list[Role]:
    """The roles that grant ``action``, the most powerful first."""
    return [role for role, actions in GRANTS.items() if action in actions]


def refusal(identity: str, action: Action, scope: str, what: str | None = None) -> str:
    """The message of a 403: who may not do what, where, and which roles would allow it."""
    names = [role.value for role in allowing_roles(action)]
    roles = " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))
    place = "the workspace" if scope == WORKSPACE else scope
    where = place if scope == WORKSPACE else f"{scope} (or on the workspace)"
    subject = f" ({what})" if what else ""
    return (
        f"Identity {identity!r} may not {action.value} on {place}{subject}: it needs the role "
        f"{roles} on {where}."
    )
