"""References to a registered version of a component or an environment.

Both take ``azureml:<name>:<version>``, ``azureml:<name>@latest``, ``<name>:<version>`` and the
version's id in this workspace; the only label is ``latest``.
"""

from __future__ import annotations

import re

from sluiceway.errors import ValidationError
from sluiceway.schemas.common import WorkspaceScope

_SHORT = re.compile(
    r"(?:azureml:/?)?(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))"
)


def id_pattern(collection: str, *, labels: bool = False) -> re.Pattern[str]:
    """The id form of a version in ``collection`` (``components``, ``environments``); with
    ``labels``, ``.../versions/labels/<label>`` too."""
    version = r"(?:labels/(?P<label>[^/]+)|(?P<version>[^/]+))" if labels else r"(?P<version>[^/]+)"
    return re.compile(
        r"(?:azureml:/?/?)?/?subscriptions/[^/]+/resourcegroups/[^/]+"
        r"(?:/providers/microsoft\.machinelearningservices)?/workspaces/(?P<workspace>[^/]+)"
        rf"/{collection}/(?P<name>[^/]+)/versions/{version}/?",
        re.IGNORECASE,
    )


def parse_version_reference(
    value: str,
    ids: re.Pattern[str],
    scope: WorkspaceScope,
    where: str,
    *,
    what: str,
    accepted: str,
) -> tuple[str, str | None]:
    """The name and version (``None``: the latest) that ``value`` names.

    Args:
        ids: The id form (from ``id_pattern``).
        what: What a reference is, for the error: ``a component reference``.
        accepted: The forms accepted, for the error.

    Raises:
        ValidationError: the value is no such reference, names another workspace or a label
            other than ``latest``.
    """
    text = value.strip()
    match = ids.fullmatch(text) or _SHORT.fullmatch(text)
    if match is None:
        raise ValidationError(
            f"{where}: {value!r} is not {what}; accepted: {accepted}", target=where
        )
    groups = match.groupdict()
    workspace = groups.get("workspace")
    if workspace is not None and workspace != scope.workspace_name:
        raise ValidationError(
            f"{where}: {value!r} names workspace {workspace!r}; this server serves "
            f"{scope.workspace_name!r}.",
            target=where,
        )
    label = groups.get("label")
    if label is not None and label != "latest":
        raise ValidationError(
            f"{where}: label {label!r} is not supported; accepted: latest", target=where
        )
    return match["name"], groups.get("version")
