"""Shared test helpers: a missing test service skips locally and fails in CI (``CI=true``)."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(what: str) -> None:
    """Skip the test, or fail it when running in CI, where every service must be there."""
    if in_ci():
        pytest.fail(f"{what} is not available, and CI must run every test", pytrace=False)
    pytest.skip(f"{what} is not available")


@pytest.fixture(autouse=True)
def _own_login_file(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test away from the user's ``sluice login`` credentials."""
    monkeypatch.setenv("SLUICEWAY_CONFIG_DIR", str(tmp_path_factory.mktemp("sluice-config")))
