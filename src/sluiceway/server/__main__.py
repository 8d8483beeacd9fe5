"""``python -m sluiceway.server [--host H] [--port P] [--home DIR] [--role R]``: ``sluice
server start``."""

from __future__ import annotations

import argparse

from sluiceway.server.run import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sluiceway.server")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--home", default=None)
    parser.add_argument("--role", choices=["all", "api", "scheduler"], default=None)
    args = parser.parse_args()
    run(host=args.host, port=args.port, home=args.home, role=args.role)


if __name__ == "__main__":
    main()
