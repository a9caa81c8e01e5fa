"""`python -m proliferate.sandbox_mcp supervise --home HOME --tmp TMP [--socket RUN/mcp.sock]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from proliferate.sandbox_mcp.layout import Layout
from proliferate.sandbox_mcp.supervisor import Supervisor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proliferate.sandbox_mcp")
    sub = parser.add_subparsers(dest="command", required=True)
    sup = sub.add_parser("supervise", help="run the sandbox's supervisor (its root process)")
    sup.add_argument("--home", required=True, type=Path)
    sup.add_argument("--tmp", required=True, type=Path)
    sup.add_argument("--socket", type=Path, default=None, help="unix socket for exec (local provider)")
    args = parser.parse_args(argv)
    supervisor = Supervisor(Layout(args.home, args.tmp), args.socket)
    asyncio.run(supervisor.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
