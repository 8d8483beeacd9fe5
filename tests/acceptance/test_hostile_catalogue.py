"""The hostile catalogue: each attack, sent by a test identity of each role it names, against a
real server, is refused with the right 4xx and changes nothing.

Identities (owner, contributor, invoker, reader and one with no role) are made over REST as
in ``test_access``. The catalogue is a table, :data:`CATALOGUE`: an :class:`Attack` names the
roles that send it, the request and the status each gets. A regression test of another
finding adds a row. Rows whose fix is not in this branch are ``xfail(strict=True)`` with the
finding's number, so that they fail loudly (XPASS) once the fix is merged and the mark can go.

What "changes nothing" means is :func:`snapshot`: jobs, identities, role assignments,
endpoints, datastores, data assets and the files of the default datastore, as the owner sees
them, are the same after the attack as before it.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jwt
import pytest

from sluiceway.sdk.uploads import scan
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import (
    DS,
    create_script_deployment,
    invoke_body,
    new_user,
    upload_folder,
    write_numbered_files,
)
from tests.integration.test_hostile_inputs import PRIVATE_URLS, TRAVERSALS

pytestmark = pytest.mark.slow

ROLES = ("owner", "contributor", "invoker", "reader", "none")
ALPHA, BETA = "alpha", "beta"
MAX_BODY = 64 << 10


@dataclass(frozen=True)
class Attack:
    """One row of the catalogue: ``method`` ``target`` (sent exactly as written, with no
    normalisation of dot segments) with ``body``, by each identity of ``statuses``, which gets
    the status given for it. ``target`` and ``body`` may hold ``{job}`` and ``{upload}``."""

    name: str
    method: str
    target: str
    statuses: dict[str, int]
    body: Any = None  # JSON, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # a forged token (``{invoker}`` etc.) instead of the identity's
    xfail: str | None = None  # the finding whose fix this needs, when not in this branch


def each(statuses: dict[str, int], default: int | None = None) -> dict[str, int]:
    """Statuses for every role: ``statuses`` where given, else ``default``."""
    if default is None:
        return statuses
    return {role: statuses.get(role, default) for role in ROLES}


# Who may write into the default datastore: owner and contributor on the workspace, and the
# invoker, which holds the invoker role on it (the CLI needs it to upload local inputs).
WRITERS = {"owner": 400, "contributor": 400, "invoker": 400, "reader": 403, "none": 403}
# Creating assets or datastores: owner and contributor.
MANAGERS = {"owner": 400, "contributor": 400, "invoker": 403, "reader": 403, "none": 403}


def _invoke(uri: str) -> dict[str, Any]:
    return invoke_body({"d": {"JobInputType": "UriFolder", "Uri": uri}})


def _catalogue() -> list[Any]:
    rows: list[Attack] = []
    # -- path traversal in datastore paths ----------------------------------------------------
    for i, path in enumerate(TRAVERSALS):
        rows.append(
            Attack(f"traversal-put-{i}", "PUT", f"/datastores/workspaceblobstore/files/{path}",
                   WRITERS, body=b"planted")
        )  # fmt: skip
        rows.append(
            Attack(f"traversal-get-{i}", "GET", f"/datastores/workspaceblobstore/files/{path}",
                   {**WRITERS, "reader": 400})
        )  # fmt: skip
    for i, uri in enumerate([f"{DS}/../secret.key", f"{DS}/a\\..\\..\\secret.key",
                             f"{DS}/%2e%2e/%2e%2e/token", f"{DS}//etc/passwd"]):  # fmt: skip
        rows.append(Attack(f"traversal-data-{i}", "POST", "/data", MANAGERS,
                           body={"name": f"trav{i}", "path": uri}))  # fmt: skip
    # -- SSRF: private addresses as inputs and as datastore endpoints -------------------------
    for i, url in enumerate(PRIVATE_URLS):
        rows.append(Attack(f"ssrf-data-{i}", "POST", "/data", MANAGERS,
                           body={"name": f"ssrf{i}", "path": url}))  # fmt: skip
        rows.append(Attack(f"ssrf-datastore-{i}", "PUT", f"/datastores/ssrf{i}", MANAGERS,
                           body={"name": f"ssrf{i}", "type": "s3", "bucket": "b",
                                 "endpoint_url": url}))  # fmt: skip
        # Refused for the address before anyone's roles are looked at.
        rows.append(Attack(f"ssrf-invoke-{i}", "POST", f"/endpoints/{ALPHA}/jobs",
                           {"owner": 400, "contributor": 400, "invoker": 400},
                           body=_invoke(url)))  # fmt: skip
    # -- raw local paths in REST bodies -------------------------------------------------------
    for i, path in enumerate(["/etc/passwd", "file:///etc/passwd", "../home/secret.key",
                              "~/.ssh/id_rsa", "C:\\Windows\\win.ini"]):  # fmt: skip
        rows.append(Attack(f"local-path-data-{i}", "POST", "/data", MANAGERS,
                           body={"name": f"local{i}", "path": path}))  # fmt: skip
        rows.append(Attack(f"local-path-invoke-{i}", "POST", f"/endpoints/{ALPHA}/jobs",
                           {"owner": 400, "contributor": 400, "invoker": 400},
                           body=_invoke(path)))  # fmt: skip
    # -- tampered tokens ----------------------------------------------------------------------
    for forged in ("alg-none", "other-key", "expired", "resigned-claims", "garbage"):
        for method, target, body in (("GET", "/whoami", None),
                                     ("POST", "/roles", {"identity": "invoker", "role": "owner",
                                                         "scope": "workspace"})):  # fmt: skip
            rows.append(Attack(f"token-{forged}-{method}", method, target, {"invoker": 401},
                               body=body, token=forged))  # fmt: skip
    # -- oversized bodies ---------------------------------------------------------------------
    big = {"name": "big", "description": "x" * (MAX_BODY + 1)}
    for target in ("/data", "/batch-endpoints/big", "/roles", "/identities"):
        method = "PUT" if target.startswith("/batch") else "POST"
        rows.append(Attack(f"oversized{target.replace('/', '-')}", method, target,
                           each({}, 413), body=big))  # fmt: skip
    # -- role escalation ----------------------------------------------------------------------
    grant = {"identity": "invoker", "role": "owner", "scope": "workspace"}
    not_owner = {"contributor": 403, "invoker": 403, "reader": 403, "none": 403}
    rows += [
        Attack("grant-self-owner", "POST", "/roles", not_owner, body=grant),
        Attack("revoke-owner", "DELETE", "/roles?identity=owner&role=owner&scope=workspace",
               not_owner),
        Attack("mint-owner-token", "POST", "/identities/owner/tokens", not_owner,
               body={"expires_in": 3600}),
        Attack("mint-others-token", "POST", "/identities/reader/tokens",
               {"contributor": 403, "invoker": 403, "none": 403}),
        Attack("create-identity", "POST", "/identities", not_owner,
               body={"name": "mallory", "kind": "service_principal"}),
        Attack("rotate-others-secret", "POST", "/identities/robot/secret", not_owner),
        Attack("delete-owner", "DELETE", "/identities/owner", not_owner),
        Attack("list-identities", "GET", "/identities", not_owner),
    ]  # fmt: skip
    # -- cross-endpoint access: the invoker holds a role on alpha only ------------------------
    rows += [
        Attack("invoke-other-endpoint", "POST", f"/endpoints/{BETA}/jobs", {"invoker": 403},
               body=_invoke(f"{DS}/catalogue/data/")),
        Attack("read-other-endpoint", "GET", f"/batch-endpoints/{BETA}", {"invoker": 403}),
        Attack("list-other-jobs", "GET", f"/batch-endpoints/{BETA}/jobs", {"invoker": 403}),
        Attack("read-others-job", "GET", "/jobs/{job}", {"invoker": 403, "none": 403}),
        Attack("cancel-others-job", "POST", "/jobs/{job}/cancel",
               {"invoker": 403, "reader": 403, "none": 403}),
        Attack("change-own-endpoint", "PATCH", f"/batch-endpoints/{ALPHA}",
               {"invoker": 403, "reader": 403}, body={"description": "taken"}),
        Attack("delete-other-deployment", "DELETE", f"/batch-endpoints/{BETA}/deployments/blue",
               {"invoker": 403, "reader": 403, "none": 403}),
    ]  # fmt: skip
    # -- the trust findings: code, outputs, upload records, numbers, names, heads ---------------
    rows += [
        Attack("replace-others-code", "PUT", "/datastores/workspaceblobstore/files/{code}",
               {"invoker": 403}, body=b"def init():\n    raise SystemExit\n"),
        Attack("forge-job-output", "PUT",
               "/datastores/workspaceblobstore/files/azureml/{job}/score/predictions.csv",
               {"invoker": 403}, body=b"forged\n"),
        Attack("repoint-upload", "PUT", "/uploads/{upload}", {"invoker": 400},
               body={"name": "in", "path": f"{DS}/catalogue/mine/"}),
        Attack("infinite-override", "POST", f"/endpoints/{ALPHA}/jobs", {"owner": 400},
               body=b'{"properties": {"InputData": {"d": {"JobInputType": "UriFolder", "Uri": "'
                    + f"{DS}/catalogue/data/".encode() + b'"}}, "MiniBatchSize": 1e999}}'),
        Attack("newline-name", "POST", "/identities", {"owner": 400},
               body={"name": "owner\n", "kind": "user"}),
        Attack("huge-header", "GET", "/whoami", {"owner": 431},
               headers={"X-Padding": "x" * (1 << 20)}),
    ]  # fmt: skip
    return [
        pytest.param(row, role, id=f"{row.name}-{role}",
                     marks=[pytest.mark.xfail(strict=True, reason=row.xfail)] if row.xfail else [])
        for row in rows
        for role in row.statuses
    ]  # fmt: skip


CATALOGUE = _catalogue()


@dataclass
class World:
    server: RunningServer
    owner: httpx.Client
    tokens: dict[str, str]
    values: dict[str, str]  # what {job}, {code} and {upload} stand for

    def forged(self, kind: str) -> str:
        """A token of the invoker's, tampered with as ``kind`` says."""
        token = self.tokens["invoker"]
        claims = jwt.decode(token, options={"verify_signature": False})
        key = bytes.fromhex((self.server.home / "secret.key").read_text().strip())
        if kind == "alg-none":
            header = _b64({"alg": "none", "typ": "JWT"})
            return f"{header}.{token.split('.')[1]}."
        if kind == "other-key":
            return jwt.encode(claims, "another-key-" * 4, algorithm="HS256")
        if kind == "expired":  # signed with the workspace's key, but an hour too old
            now = int(time.time())
            return jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, key, "HS256")
        if kind == "resigned-claims":  # the owner's id in the invoker's signature
            owner = jwt.decode(self.server.token, options={"verify_signature": False})
            head, _, sig = token.split(".")
            return f"{head}.{_b64({**claims, 'sub': owner['sub']})}.{sig}"
        return "not-a-token"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("catalogue")
    env = {
        "SLUICEWAY_SCHEDULER_ENABLED": "false",  # jobs stay queued: nothing runs
        "SLUICEWAY_ALLOW_PRIVATE_NETWORK": "false",
        "SLUICEWAY_BLOB_EMULATOR_ENDPOINTS": "",
        "SLUICEWAY_LOCAL_DATASTORE_ROOTS": str(root),
        "SLUICEWAY_MAX_BODY_BYTES": str(MAX_BODY),
    }
    server = start_server(root / "home", extra_env=env)
    owner = server.client()
    try:
        for endpoint in (ALPHA, BETA):
            (root / endpoint).mkdir()
            create_script_deployment(owner, root / endpoint, endpoint, "blue")
            r = owner.patch(f"/batch-endpoints/{endpoint}",
                            json={"defaults": {"deployment_name": "blue"}})  # fmt: skip
            assert r.status_code == 200, r.text
        write_numbered_files(root / "data", 2)
        data = upload_folder(owner, root / "data", "catalogue/data")
        r = owner.post(f"/endpoints/{ALPHA}/jobs", json=_invoke(data))
        assert r.status_code == 201, r.text
        job = r.json()["name"]
        upload = scan(root / "data").digest
        recorded = upload_folder(owner, root / "data", f"LocalUpload/{upload}/data")
        r = owner.put(f"/uploads/{upload}", json={"name": "data", "path": recorded})
        assert r.status_code == 200, r.text
        code = owner.get(f"/batch-endpoints/{ALPHA}/deployments/blue").json()
        code_path = code["code_configuration"]["code"].removeprefix(f"{DS}/").rstrip("/")
        r = owner.post("/identities", json={"name": "robot", "kind": "service_principal"})
        assert r.status_code == 201, r.text
        invoker_roles = [
            ("invoker", f"endpoint:{ALPHA}"),
            ("invoker", "datastore:workspaceblobstore"),
        ]
        tokens = {
            "owner": new_user(owner, "owner2", [("owner", "workspace")]),
            "contributor": new_user(owner, "contributor", [("contributor", "workspace")]),
            "invoker": new_user(owner, "invoker", invoker_roles),
            "reader": new_user(owner, "reader", [("reader", "workspace")]),
            "none": new_user(owner, "nobody", []),
        }
        values = {"job": job, "upload": upload, "code": f"{code_path}/score.py"}
        yield World(server, owner, tokens, values)
    finally:
        owner.close()
        stop_server(server)


def snapshot(world: World) -> dict[str, Any]:
    """What an attack must not change, as the owner sees it."""
    owner = world.owner
    files = owner.get("/datastores/workspaceblobstore/list").raise_for_status().json()
    job = owner.get(f"/jobs/{world.values['job']}").raise_for_status().json()
    return {
        "jobs": sorted(j["name"] for j in owner.get("/jobs", params={"limit": 1000}).json()),
        "job status": job["status"],
        "identities": sorted(i["name"] for i in owner.get("/identities").json()),
        "roles": sorted((r["identity"], r["role"], r["scope"]) for r in owner.get("/roles").json()),
        "endpoints": sorted(
            (e["name"], e.get("description")) for e in owner.get("/batch-endpoints").json()
        ),
        "deployments": [
            d["name"] for d in owner.get(f"/batch-endpoints/{BETA}/deployments").json()
        ],
        "datastores": sorted(d["name"] for d in owner.get("/datastores").json()),
        "data": sorted(d["name"] for d in owner.get("/data").json()),
        "files": sorted((f["path"], f["size"]) for f in files),
        "upload": owner.get(f"/uploads/{world.values['upload']}").json(),
        "secret.key": (world.server.home / "secret.key").read_text(),
    }


def _send(world: World, attack: Attack, token: str) -> tuple[int, str]:
    """Send the attack exactly as written (httpx would remove dot segments)."""
    target = attack.target.format(**world.values)
    body = attack.body
    headers = {"Authorization": f"Bearer {token}", **attack.headers}
    if isinstance(body, dict):
        body = json.dumps(body).replace("{job}", world.values["job"]).encode()
        headers["Content-Type"] = "application/json"
    elif isinstance(body, bytes) and body.startswith(b"{"):
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(urlsplit(world.server.url).netloc, timeout=60)
    try:
        conn.request(attack.method, quote(target, safe="/%?&=:\\~"), body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    except (ConnectionError, http.client.HTTPException) as exc:
        return 0, repr(exc)
    finally:
        conn.close()


def test_catalogue_covers_every_role() -> None:
    covered = {param.values[1] for param in CATALOGUE}
    assert covered == set(ROLES)
    assert len(CATALOGUE) > 150


@pytest.mark.parametrize(("attack", "role"), CATALOGUE)
def test_attack_is_refused_and_changes_nothing(world: World, attack: Attack, role: str) -> None:
    token = world.forged(attack.token) if attack.token else world.tokens[role]
    before = snapshot(world)
    status, text = _send(world, attack, token)
    expected = attack.statuses[role]
    assert status == expected, f"{attack.method} {attack.target} as {role}: {status} {text[:300]}"
    if status != 431:
        error = json.loads(text)["error"]
        assert error["message"], text
    assert snapshot(world) == before
