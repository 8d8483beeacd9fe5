"""``python -m sluiceway.runtime.launch <socket-fd> <sentinel-fd> [<sandbox plan>]``.

How the local executor starts a worker: the process enters its sandbox first (its own user
and view; see :mod:`sluiceway.runtime.sandbox`), before any deployment code is imported, then
serves the pool over the socket it was given (:func:`sluiceway.runtime.worker.main`).
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection

from sluiceway.runtime.sandbox import Plan, SandboxError, enter


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: launch <socket-fd> <sentinel-fd> [<sandbox plan>]", file=sys.stderr)
        return 2
    conn_fd, sentinel_fd = int(argv[0]), int(argv[1])
    # Nothing the worker runs inherits them: the pool sees the worker itself exit.
    os.set_inheritable(conn_fd, False)
    os.set_inheritable(sentinel_fd, False)
    if len(argv) == 3:
        try:
            enter(Plan.from_json(argv[2]))
        except SandboxError as exc:
            print(f"sluiceway worker: cannot enter its sandbox: {exc}", file=sys.stderr)
            return 1
    from sluiceway.runtime import worker

    conn: Connection[object, object] = Connection(conn_fd)
    worker.main(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
