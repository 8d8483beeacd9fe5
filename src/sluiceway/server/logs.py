"""The server process's own log: one line per record on stderr, naming the process's id and
role, so the lines of several processes read together stay apart.

``text``: ``2026-12-10T12:00:00.123Z INFO sluiceway.scheduler pid=4242 role=scheduler job ...``;
``json``: one object a line with ``time``, ``level``, ``logger``, ``pid``, ``role``, ``message``
(and ``error`` with the traceback, when there is one).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from sluiceway.config import LogFormat, ServerRole
from sluiceway.storage.redaction import redact_text


def _time(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self, role: ServerRole) -> None:
        super().__init__()
        self._role = role.value

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_time(record)} {record.levelname} {record.name} pid={os.getpid()} "
            f"role={self._role} {redact_text(record.getMessage())}"
        )
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self, role: ServerRole) -> None:
        super().__init__()
        self._role = role.value

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": os.getpid(),
            "role": self._role,
            "message": redact_text(record.getMessage()),
        }
        if record.exc_info:
            entry["error"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_logging(role: ServerRole, log_format: LogFormat, level: str) -> None:
    """Send the process's log records (Sluiceway's and uvicorn's) to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter(role) if log_format is LogFormat.JSON else TextFormatter(role)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Alembic announces each of its plugins at INFO; the migrations it runs are worth a line.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
