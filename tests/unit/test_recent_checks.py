"""Storage checks of inputs remembered for a few seconds (``services.resolver.RecentChecks``)."""

from __future__ import annotations

import time

from sluiceway.services.resolver import RecentChecks


def test_a_check_is_remembered_for_its_seconds_only() -> None:
    checks = RecentChecks(0.2)
    key = ("reader-1", "workspaceblobstore", None, "data/x", "uri_folder")
    assert not checks.holds(key)
    checks.add(key)
    assert checks.holds(key)
    time.sleep(0.3)
    assert not checks.holds(key)


def test_each_reader_location_and_type_is_its_own() -> None:
    checks = RecentChecks(60)
    checks.add(("reader-1", "workspaceblobstore", None, "data/x", "uri_folder"))
    for other in (
        ("reader-2", "workspaceblobstore", None, "data/x", "uri_folder"),
        ("reader-1", "other", None, "data/x", "uri_folder"),
        ("reader-1", "workspaceblobstore", None, "data/y", "uri_folder"),
        ("reader-1", "workspaceblobstore", None, "data/x", "uri_file"),
        ("reader-1", "workspaceblobstore", "https://a/b?sig=1", "data/x", "uri_folder"),
    ):
        assert not checks.holds(other), other


def test_the_oldest_checks_go_first_when_full() -> None:
    checks = RecentChecks(60, most=2)
    keys = [(None, "ds", None, f"p{i}", "uri_file") for i in range(3)]
    for key in keys:
        checks.add(key)
    assert [checks.holds(k) for k in keys] == [False, True, True]
