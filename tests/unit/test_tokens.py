"""Workspace tokens: what is issued, and every way a token is refused."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sluiceway.auth.principals import OWNER_NAME, authenticate, ensure_owner
from sluiceway.auth.tokens import AUDIENCE, TokenIssuer, check_lifetime
from sluiceway.clock import utcnow
from sluiceway.errors import AuthenticationError, ValidationError
from sluiceway.home import WorkspaceHome
from sluiceway.store.db import Database, upgrade
from sluiceway.store.identities import IdentityStore

KEY = b"k" * 32
ISSUER = "sluiceway:test"


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(KEY, issuer=ISSUER)


def claims(**overrides: object) -> dict[str, object]:
    now = int(utcnow().timestamp())
    base: dict[str, object] = {
        "sub": "someone",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refused(issuer: TokenIssuer, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        issuer.verify(token)
    message = caught.value.message
    assert token not in message
    assert caught.value.status_code == 401
    return message


def test_an_issued_token_names_its_identity_and_expires(issuer: TokenIssuer) -> None:
    issued = issuer.issue_token("abc", expires_in=timedelta(minutes=30))
    found = issuer.claims(issued.access_token)
    assert found.subject == "abc"
    assert found.expires_on == issued.expires_on
    assert issued.expires_in == 1800
    assert timedelta(minutes=29) < found.expires_on - utcnow() <= timedelta(minutes=30)
    decoded = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert {"exp", "iat", "sub", "iss", "aud"} <= set(decoded)


def test_default_lifetime_is_an_hour(issuer: TokenIssuer) -> None:
    found = issuer.claims(issuer.issue("abc"))
    assert found.expires_on - found.issued_at == timedelta(hours=1)


def test_expired(issuer: TokenIssuer) -> None:
    token = issuer.issue("abc", expires_in=timedelta(seconds=-5))
    assert "expired" in refused(issuer, token)


def test_tampered_signature(issuer: TokenIssuer) -> None:
    head, body, signature = issuer.issue("abc").split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert "signature" in refused(issuer, f"{head}.{body}.{flipped}")


def test_tampered_claims(issuer: TokenIssuer) -> None:
    head, _, signature = issuer.issue("abc").split(".")
    forged = b64(claims(sub="owner-id"))
    assert "signature" in refused(issuer, f"{head}.{forged}.{signature}")


def test_another_key(issuer: TokenIssuer) -> None:
    token = TokenIssuer(b"x" * 32, issuer=ISSUER).issue("abc")
    assert "signature" in refused(issuer, token)


def test_wrong_audience(issuer: TokenIssuer) -> None:
    token = jwt.encode(claims(aud="https://management.azure.com"), KEY, algorithm="HS256")
    message = refused(issuer, token)
    assert "audience" in message and repr(AUDIENCE) in message


def test_wrong_issuer(issuer: TokenIssuer) -> None:
    token = jwt.encode(claims(iss="sluiceway:other"), KEY, algorithm="HS256")
    message = refused(issuer, token)
    assert "issuer" in message and repr(ISSUER) in message


def test_unsigned_alg_none_token(issuer: TokenIssuer) -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    message = refused(issuer, token)
    assert "algorithm" in message and "HS256" in message


def test_a_token_signed_with_rs256_is_refused(issuer: TokenIssuer) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), private, algorithm="RS256")
    assert "HS256" in refused(issuer, token)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud"])
def test_every_claim_is_required(issuer: TokenIssuer, missing: str) -> None:
    token = jwt.encode(claims(**{missing: None}), KEY, algorithm="HS256")
    assert f"no {missing!r} claim" in refused(issuer, token)


@pytest.mark.parametrize("text", ["not-a-token", "a.b.c", ""])
def test_malformed(issuer: TokenIssuer, text: str) -> None:
    with pytest.raises(AuthenticationError, match="well-formed"):
        issuer.verify(text)


def test_lifetime_bounds() -> None:
    assert check_lifetime(60) == timedelta(minutes=1)
    assert check_lifetime(365 * 86400) == timedelta(days=365)
    for seconds in (59, 365 * 86400 + 1, -1):
        with pytest.raises(ValidationError, match="expires_in"):
            check_lifetime(seconds)


# -- the owner's home token -----------------------------------------------------------------


@pytest.fixture
def identities(tmp_path: Path) -> IdentityStore:
    db = Database(f"sqlite:///{tmp_path / 'workspace.db'}")
    upgrade(db.engine)
    return IdentityStore(db)


def test_owner_token_lives_a_year_and_is_kept_while_fresh(
    tmp_path: Path, issuer: TokenIssuer, identities: IdentityStore
) -> None:
    home = WorkspaceHome(tmp_path / "home")
    owner = ensure_owner(home, issuer, identities)
    first = home.read_token()
    assert first is not None
    found = issuer.claims(first)
    assert found.subject == owner.id
    assert found.expires_on - utcnow() > timedelta(days=364)
    assert home.token.stat().st_mode & 0o777 == 0o600
    ensure_owner(home, issuer, identities)
    assert home.read_token() == first
    assert authenticate(f"Bearer {first}", issuer, identities).name == OWNER_NAME


@pytest.mark.parametrize(
    "stale",
    [
        "near expiry",
        "no exp",
        "another key",
    ],
)
def test_owner_token_is_issued_anew_when_stale(
    tmp_path: Path, issuer: TokenIssuer, identities: IdentityStore, stale: str
) -> None:
    home = WorkspaceHome(tmp_path / "home")
    owner = ensure_owner(home, issuer, identities)
    if stale == "near expiry":
        old = issuer.issue(owner.id, expires_in=timedelta(days=29))
    elif stale == "no exp":
        old = jwt.encode(claims(sub=owner.id, exp=None), KEY, algorithm="HS256")
    else:
        old = TokenIssuer(b"x" * 32, issuer=ISSUER).issue(owner.id, expires_in=timedelta(days=300))
    home.write_private(home.token, old + "\n")
    ensure_owner(home, issuer, identities)
    renewed = home.read_token()
    assert renewed is not None and renewed != old
    assert issuer.claims(renewed).expires_on - utcnow() > timedelta(days=364)
