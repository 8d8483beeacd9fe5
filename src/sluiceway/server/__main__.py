"""``python -m sluiceway.server [--host H] [--port P] [--home DIR] [--tls] [--role R]``:
``sluice server start``."""

from __future__ import annotations

import argparse

from sluiceway.server.run import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sluiceway.server")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--home", default=None)
    parser.add_argument("--tls", action="store_true", default=None)
    parser.add_argument("--role", choices=["all", "api", "scheduler"], default=None)
    args = parser.parse_args()
    run(host=args.host, port=args.port, home=args.home, tls=args.tls, role=args.role)


if __name__ == "__main__":
    main()
