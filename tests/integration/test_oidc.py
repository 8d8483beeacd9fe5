"""Tokens of an external OpenID Connect issuer, whose keys this test serves itself."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sluiceway.auth.oidc import ExternalIssuer
from sluiceway.errors import AuthenticationError
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.helpers import unique

AUDIENCE = "api://sluiceway-test"


@dataclass
class Issuer:
    """An OpenID Connect issuer: its URL, its keys, and a counter of key-set fetches."""

    url: str
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    jwks_fetches: int = 0

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/keys"

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key()))
        return {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "use": "sig", "alg": "RS256"},
                {**ec_jwk, "kid": "ec-1", "use": "sig", "alg": "ES256"},
            ]
        }

    def token(
        self, *, kid: str = "rsa-1", key: Any = None, algorithm: str = "RS256", **claims: Any
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "sub": "pairwise-sub",
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        signing = key if key is not None else self.rsa_key
        return jwt.encode(body, signing, algorithm=algorithm, headers={"kid": kid})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    state: dict[str, Issuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = state["issuer"]
            if self.path == "/keys":
                found.jwks_fetches += 1
                body = found.jwks()
            elif self.path == "/.well-known/openid-configuration":
                body = {"issuer": found.url, "jwks_uri": found.jwks_url}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["issuer"] = Issuer(
        url=f"http://127.0.0.1:{http.server_address[1]}",
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
    )
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield state["issuer"]
    http.shutdown()
    http.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def oidc_server(
    issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("oidc-home"),
        extra_env={
            "SLUICEWAY_OIDC_ISSUER": issuer.url,
            "SLUICEWAY_OIDC_AUDIENCE": AUDIENCE,
            "SLUICEWAY_OIDC_JWKS_URL": issuer.jwks_url,
            "SLUICEWAY_SCHEDULER_ENABLED": "false",
        },
    )
    yield running
    stop_server(running)


def whoami(server: RunningServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/whoami", headers={"Authorization": f"Bearer {token}"})


def test_an_unmapped_subject_is_401(oidc_server: RunningServer, issuer: Issuer) -> None:
    oid = unique("oid")
    response = whoami(oidc_server, issuer.token(oid=oid))
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "No identity is mapped" in message and oid in message


def test_the_oid_claim_names_the_identity(oidc_server: RunningServer, issuer: Issuer) -> None:
    oid, name = unique("oid"), unique("ana")
    with oidc_server.client() as owner:
        created = owner.post("/identities", json={"name": name, "kind": "user", "external_id": oid})
        assert created.status_code == 201, created.text
        owner.post("/roles", json={"identity": name, "role": "reader", "scope": "workspace"})
    response = whoami(oidc_server, issuer.token(oid=oid, sub="something-else"))
    assert response.status_code == 200, response.text
    assert response.json()["name"] == name
    assert response.json()["roles"] == [{"scope": "workspace", "role": "reader"}]
    # The identity's roles apply: a reader lists datastores but may not manage identities.
    headers = {"Authorization": f"Bearer {issuer.token(oid=oid)}"}
    assert httpx.get(f"{oidc_server.url}/identities", headers=headers).status_code == 403


def test_sub_names_the_identity_without_oid_and_es256_is_accepted(
    oidc_server: RunningServer, issuer: Issuer
) -> None:
    sub, name = unique("sub"), unique("svc")
    with oidc_server.client() as owner:
        owner.post(
            "/identities", json={"name": name, "kind": "service_principal", "external_id": sub}
        )
    token = issuer.token(sub=sub, kid="ec-1", key=issuer.ec_key, algorithm="ES256")
    response = whoami(oidc_server, token)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == name


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("audience", "audience"),
        ("expired", "expired"),
        ("foreign key", "signature"),
        ("unknown kid", "not among the keys"),
        ("no exp", "'exp'"),
        ("hs256", "not among the keys"),
    ],
)
def test_bad_external_tokens_are_401(
    oidc_server: RunningServer, issuer: Issuer, case: str, words: str
) -> None:
    oid = unique("oid")
    with oidc_server.client() as owner:
        owner.post("/identities", json={"name": unique("u"), "kind": "user", "external_id": oid})
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = {
        "audience": lambda: issuer.token(oid=oid, aud="api://another"),
        "expired": lambda: issuer.token(oid=oid, iat=1, nbf=1, exp=2),
        "foreign key": lambda: issuer.token(oid=oid, key=other),
        "unknown kid": lambda: issuer.token(oid=oid, kid="rotated-away", key=other),
        "no exp": lambda: issuer.token(oid=oid, exp=None),
        "hs256": lambda: jwt.encode(
            {"iss": issuer.url, "aud": AUDIENCE, "oid": oid, "exp": 4_000_000_000, "iat": 1},
            "k" * 32,
            algorithm="HS256",
        ),
    }[case]()
    response = whoami(oidc_server, token)
    assert response.status_code == 401, response.text
    message = response.json()["error"]["message"]
    assert words in message, message
    assert token not in response.text


def test_workspace_tokens_still_work(oidc_server: RunningServer) -> None:
    assert whoami(oidc_server, oidc_server.token).json()["name"] == "owner"


def test_the_key_set_is_cached(oidc_server: RunningServer, issuer: Issuer) -> None:
    oid = unique("oid")
    with oidc_server.client() as owner:
        owner.post("/identities", json={"name": unique("c"), "kind": "user", "external_id": oid})
    assert whoami(oidc_server, issuer.token(oid=oid)).status_code == 200
    before = issuer.jwks_fetches
    for _ in range(3):
        assert whoami(oidc_server, issuer.token(oid=oid)).status_code == 200
    assert issuer.jwks_fetches == before


def test_discovery_finds_the_keys(issuer: Issuer) -> None:
    external = ExternalIssuer(issuer.url, AUDIENCE)
    assert external.subject(issuer.token(oid="abc")) == "abc"
    assert external.subject(issuer.token(oid=None, sub="only-sub")) == "only-sub"
    with pytest.raises(AuthenticationError, match="audience"):
        external.subject(issuer.token(aud="other"))


def test_discovery_that_fails_says_so() -> None:
    external = ExternalIssuer("http://127.0.0.1:9/nowhere", AUDIENCE, timeout=2)
    token = jwt.encode({"iss": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "a"})
    with pytest.raises(AuthenticationError, match="SLUICEWAY_OIDC_JWKS_URL"):
        external.subject(token)
