"""Log lines of a server process name its pid and role, as text or as JSON."""

from __future__ import annotations

import json
import logging
import os
import sys

from sluiceway.config import ServerRole
from sluiceway.server.logs import JsonFormatter, TextFormatter


def record(message: str, *, error: bool = False) -> logging.LogRecord:
    exc_info = None
    if error:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("sluiceway.scheduler", logging.INFO, "x", 1, message, (), exc_info)


def test_text_lines_name_the_pid_and_role() -> None:
    line = TextFormatter(ServerRole.SCHEDULER).format(record("job j claimed"))
    assert f" INFO sluiceway.scheduler pid={os.getpid()} role=scheduler job j claimed" in line


def test_json_lines_are_one_object_each_and_hide_secrets() -> None:
    formatter = JsonFormatter(ServerRole.API)
    line = formatter.format(
        record("reading https://a.blob.core.windows.net/c?sig=SECRET", error=True)
    )
    entry = json.loads(line)
    assert "\n" not in line
    assert (entry["pid"], entry["role"], entry["level"]) == (os.getpid(), "api", "INFO")
    assert "SECRET" not in line
    assert "ValueError: boom" in entry["error"]
