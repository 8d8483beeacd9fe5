"""A pipeline's command step dies with the scheduler that started it: a SIGKILLed scheduler's
step does not run on beside the one its job's next scheduler starts (``runtime/sandbox.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sluiceway.runtime import sandbox


def _state(pid: int) -> str | None:
    """The process's state letter (``Z`` for a zombie), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0]


def test_a_step_is_killed_when_its_scheduler_is_killed() -> None:
    plan = sandbox.Plan(uid=os.getuid() if os.getuid() == 0 else None).to_json()
    step = [sys.executable, "-I", "-S", os.path.abspath(sandbox.__file__), plan, "--"]
    step += ["sleep", "120"]
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"step = subprocess.Popen({step!r})\n"
            "print(step.pid, flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
    )
    assert scheduler.stdout is not None
    pid = int(scheduler.stdout.readline())
    scheduler.stdout.close()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] != b"sleep":
        assert time.monotonic() < deadline, "the step did not start"
        time.sleep(0.05)
    scheduler.kill()
    scheduler.wait()
    while _state(pid) not in (None, "Z"):
        assert time.monotonic() < deadline, "the step ran on after its scheduler died"
        time.sleep(0.05)
