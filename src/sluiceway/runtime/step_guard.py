"""``python -m sluiceway.runtime.step_guard <program> [args...]``: a pipeline step's command on a
Ray node, kept to the life of the actor that started it.

The guard starts the command (without a shell) in a process group of its own and waits for it.
SIGTERM and SIGINT are passed on to the group. When the command exits, whatever it left running
in its group is killed, and the guard exits as it did (by the same signal, if one killed it).
When the actor that started the guard is gone (``ray.kill``, or its node's raylet stopped), the
guard sees its parent change and kills the group, so nothing of a canceled step keeps running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from types import FrameType

PARENT_CHECK_SECONDS = 0.5
NOT_STARTED = 127  # as a shell says of a program it cannot start


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def main(argv: list[str]) -> int:
    if not argv:
        print("step_guard: no command given", file=sys.stderr)
        return NOT_STARTED
    parent = os.getppid()
    try:
        process = subprocess.Popen(argv, start_new_session=True)
    except OSError as exc:
        print(f"the step's program {argv[0]!r} could not be started: {exc}", file=sys.stderr)
        return NOT_STARTED

    def forward(signum: int, frame: FrameType | None) -> None:
        _kill_group(process.pid, signal.Signals(signum))

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            code = process.wait(PARENT_CHECK_SECONDS)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent:  # the actor is gone
                _kill_group(process.pid, signal.SIGKILL)
                process.wait()
                return 128 + signal.SIGKILL
            continue
        _kill_group(process.pid, signal.SIGKILL)  # what it left running in its group
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
            return 128 - code
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
