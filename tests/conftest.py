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
