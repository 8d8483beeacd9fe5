"""Service principal secrets: random, stored as salted scrypt hashes, compared safely."""

from __future__ import annotations

import uuid

import pytest

from sluiceway.auth.client_secrets import (
    decoy_hash,
    hash_secret,
    new_client_id,
    new_client_secret,
    verify_secret,
)


def test_a_secret_matches_its_hash_only() -> None:
    secret = new_client_secret()
    stored = hash_secret(secret)
    assert verify_secret(secret, stored)
    assert not verify_secret(secret + "x", stored)
    assert not verify_secret(secret[:-1], stored)
    assert not verify_secret("", stored)
    assert secret not in stored


def test_each_hash_has_its_own_salt() -> None:
    first, second = hash_secret("same"), hash_secret("same")
    assert first != second
    assert first.split("$")[:4] == ["scrypt", "16384", "8", "1"]
    assert verify_secret("same", first) and verify_secret("same", second)


def test_secrets_and_client_ids_are_random() -> None:
    secrets = {new_client_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 40 for s in secrets)
    uuid.UUID(new_client_id())


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "pbkdf2$1$2$3$AAAA$AAAA",
        "scrypt$16384$8$1$not base64!$AAAA",
        "scrypt$x$8$1$AA==$AA==",
    ],
)
def test_a_malformed_stored_hash_matches_nothing(stored: str) -> None:
    assert not verify_secret("anything", stored)


def test_the_decoy_matches_no_guess() -> None:
    assert decoy_hash() == decoy_hash()
    assert not verify_secret("", decoy_hash())
